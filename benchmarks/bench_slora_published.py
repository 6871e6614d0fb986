"""The `a10g-llama2-7b` profile against VTC's published S-LoRA runs (Sheng et al., OSDI'24 artifact).

  python benchmarks/bench_slora_published.py fit          # the efficiency that matches the overload suite
  python benchmarks/bench_slora_published.py check FILE... # predict published runs, e.g. the real trace

`fit` bisects one constant, the fraction of the A10G datasheet's bandwidth and compute that the
engine achieves (every step-time coefficient is the datasheet's divided by it), until VTC's total
service on the `overload` suite equals the published 677 + 675 = 1,352 weighted tokens/s (VTC
paper, A10G, Llama-2-7B; the same figure `tests/engines/test_sim.py` holds). That suite is then
no longer an independent check; the real trace below is.

`check FILE...` needs the artifact's per-request results, which this project does not ship or
download: clone github.com/Ying1123/VTC-artifact and pass its `fair_bench/POLICY/all_results_*.jsonl`
files (POLICY = VTC, FCFS or LCF, read from the folder name), e.g. `all_results_real.jsonl`: 1,500
requests of a Chatbot-Arena-derived trace, 2.5 req/s for 600 s, 27 adapters as tenants, lengths
forced. Each file's requests are replayed as published (arrival, tenant = adapter, prompt, output,
`max_tokens` = the forced output length, as S-LoRA's client sent) on the profile with S-LoRA's
admission under that policy; it prints published vs simulated throughput, mean E2E latency (the
artifact's `avg_latency`), and mean and median TTFT when every row has its first-token latency.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import pandas as pd

from equinox_cli.core.types import Request, Workload, WorkloadItem
from equinox_cli.engines.sim.engine import SimEngine
from equinox_cli.engines.sim.profiles import A10G_EFFICIENCY, Profile, get_profile
from equinox_cli.metrics.fairness import service_difference, windowed_jain
from equinox_cli.metrics.service import ServiceConfig, timeline
from equinox_cli.policies import make_policy
from equinox_cli.predict.baselines import MovingAveragePredictor
from equinox_cli.workload.build import WorkloadSpec, build_workload

PUBLISHED_OVERLOAD_VTC = 677 + 675  # weighted tokens/s, both clients (w_p = 1, w_q = 2)
POLICY_OF_FOLDER = {"VTC": "vtc", "FCFS": "fcfs", "LCF": "lcf"}


def at_efficiency(efficiency: float) -> Profile:
    """The a10g profile with every step-time coefficient at `efficiency` of the datasheet."""
    return get_profile("a10g-llama2-7b").step_time_scaled(A10G_EFFICIENCY / efficiency)


def overload_service(profile: Profile) -> float:
    """VTC's total service on the overload suite, as the VTC paper counts it."""
    workload, _ = build_workload(WorkloadSpec(source="overload"))
    result = SimEngine(profile).run(workload, make_policy("vtc", {}, MovingAveragePredictor()))
    requests = pd.DataFrame(result.requests)
    done = requests[requests["finish_s"] <= workload.duration_s]
    return float((done["prompt_tokens"] + 2 * done["output_tokens"]).sum() / workload.duration_s)


def fit(tolerance: float = 0.002) -> float:
    """Bisection: service falls as the efficiency falls (slower steps)."""
    low, high = 0.5, 1.0
    while high - low > tolerance:
        mid = (low + high) / 2
        service = overload_service(at_efficiency(mid))
        print(f"efficiency {mid:.4f}: VTC service {service:7.1f}, published {PUBLISHED_OVERLOAD_VTC}")
        low, high = (low, mid) if service > PUBLISHED_OVERLOAD_VTC else (mid, high)
    return (low + high) / 2


def tenant(adapter_dir: object) -> str:
    """The artifact's tenant: its adapter's number (dummy-lora-7b-rank-8-13 -> 13)."""
    return str(adapter_dir).rsplit("-", 1)[-1]


def published_workload(responses: list[dict[str, object]]) -> Workload:
    items = []
    for i, r in enumerate(responses):
        output = int(r["output_len"])  # type: ignore[call-overload]
        request = Request(
            f"r{i}",
            tenant(r["adapter_dir"]),
            float(r["req_time"]),  # type: ignore[arg-type]
            int(r["prompt_len"]),  # type: ignore[call-overload]
            output,
        )
        items.append(WorkloadItem(request, output))
    return Workload("vtc-artifact-real", tuple(items))


def fairness(requests: pd.DataFrame) -> dict[str, float]:
    """VTC's service difference (max and mean over ticks) and windowed Jain of a run's requests,
    as `equinox replay` reports them (metrics/service.py, metrics/fairness.py)."""
    line = timeline(requests, ServiceConfig(), float(requests["finish_s"].max()))
    diff = service_difference(line)["diff"]
    jain = windowed_jain(line)
    return {"svc diff max": float(diff.max()), "svc diff mean": float(diff.mean()), "jain 60 s": jain}


def published_requests(responses: list[dict[str, object]]) -> pd.DataFrame:
    """The published run as a requests table (first token and finish from the latencies)."""
    frame = pd.DataFrame(responses)
    arrival = frame["req_time"].astype(float)
    return pd.DataFrame(
        {
            "client_id": frame["adapter_dir"].map(tenant),
            "arrival_s": arrival,
            "prompt_tokens": frame["prompt_len"].astype(int),
            "output_tokens": frame["output_len"].astype(int),
            "first_token_s": arrival + frame["first_token_latency"].astype(float),
            "finish_s": arrival + frame["request_latency"].astype(float),
            "weight": 1.0,
            "status": "finished",
        }
    )


def check(paths: list[Path]) -> None:
    print(f"a10g-llama2-7b (efficiency {A10G_EFFICIENCY}), S-LoRA admission; error = sim/published - 1")
    for path in paths:
        policy = POLICY_OF_FOLDER.get(path.parent.name)
        if policy is None:
            raise SystemExit(f"{path}: expected under a VTC, FCFS or LCF folder (fair_bench/POLICY/...)")
        label = f"{policy} {path.stem.removeprefix('all_results_')}"
        result = json.loads(path.read_text().splitlines()[0])["result"]
        responses = sorted(result["responses"], key=lambda r: r["req_time"])
        workload = published_workload(responses)
        run = SimEngine(get_profile("a10g-llama2-7b")).run(
            workload, make_policy(policy, {}, MovingAveragePredictor())
        )
        sim = pd.DataFrame(run.requests)
        sim["e2e_s"] = sim["finish_s"] - sim["arrival_s"]
        sim["ttft_s"] = sim["first_token_s"] - sim["arrival_s"]
        rows = {
            "throughput (req/s)": (len(responses) / result["total_time"], len(sim) / sim["finish_s"].max()),
            # the artifact's avg_latency is the mean request latency (its avg_first_token_latency
            # repeats the same figure, so TTFT comes from the per-request rows)
            "E2E mean (s)": (float(result["avg_latency"]), float(sim["e2e_s"].mean())),
        }
        if all("first_token_latency" in r for r in responses):
            real_ttft = [float(r["first_token_latency"]) for r in responses]
            rows["TTFT mean (s)"] = (statistics.fmean(real_ttft), float(sim["ttft_s"].mean()))
            rows["TTFT p50 (s)"] = (statistics.median(real_ttft), float(sim["ttft_s"].median()))
            if all("request_latency" in r for r in responses):
                sim["weight"] = 1.0
                real_fair, sim_fair = fairness(published_requests(responses)), fairness(sim)
                rows.update({k: (real_fair[k], sim_fair[k]) for k in real_fair})
        for name, (real, simulated) in rows.items():
            error = simulated / real - 1
            print(f"{label:16s} {name:20s} published {real:8.3f}  simulated {simulated:8.3f}  {error:+7.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("fit")
    checker = sub.add_parser("check")
    checker.add_argument("files", type=Path, nargs="+")
    args = parser.parse_args()
    if args.command == "fit":
        print(f"fitted efficiency: {fit():.3f} (the profile uses {A10G_EFFICIENCY})")
    else:
        check(args.files)


if __name__ == "__main__":
    main()
