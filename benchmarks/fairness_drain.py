"""Where Equinox's throughput falls short of VTC's in bench_fairness: output served while requests
still arrive, against the whole run (which ends when the backlog has drained).

  python benchmarks/fairness_drain.py      # the four cells under 1.000x, seeds 2-6 (~1 min)

Shortest-predicted-first within a client leaves each client's long requests for last, so the run's
end (the drain after the last arrival) takes a little longer; throughput over the whole run is
total output over that end. Printed per cell, Equinox/VTC of the means over seeds: output tokens
finished by the last arrival per second of arrivals, output tokens per second of the whole run,
and each policy's drain in seconds.
"""

from __future__ import annotations

import bench_fairness as bench

from equinox_cli.engines.sim.engine import apply_engine_args
from equinox_cli.engines.sim.profiles import get_profile

CELLS = (
    ("a10g-llama2-7b", "poisson-short-long"),
    ("a100-llama2-7b", "azure-code-conv"),
    ("a100-llama2-7b", "sharegpt-like"),
    ("a100-llama2-7b", "servegen"),
)
SEEDS = range(2, 7)  # the evaluation seeds


def main() -> None:
    for profile_name, name in CELLS:
        case = next(c for c in bench.CASES if c.name == name)
        profile = apply_engine_args(get_profile(profile_name), {"admission": "vllm"})
        sums = {p: [0.0, 0.0, 0.0] for p in ("equinox", "vtc")}
        for seed in SEEDS:
            workload = case.build(seed, False, case.scales[profile_name])
            last_s = max(it.request.arrival_s for it in workload.items)
            for policy in sums:
                requests = bench.run_policy(workload, bench.Variant(policy, policy, {}), profile).requests
                done = requests[requests["status"] == "finished"]
                end_s = float(done["finish_s"].max())
                sums[policy][0] += done.loc[done["finish_s"] <= last_s, "output_tokens"].sum() / last_s
                sums[policy][1] += done["output_tokens"].sum() / end_s
                sums[policy][2] += (end_s - last_s) / len(SEEDS)
        e, v = sums["equinox"], sums["vtc"]
        print(
            f"{profile_name} {name}: while arriving {e[0] / v[0]:.4f}x, whole run {e[1] / v[1]:.4f}x; "
            f"drain {e[2]:.1f} s (equinox) vs {v[2]:.1f} s (vtc)"
        )


if __name__ == "__main__":
    main()
