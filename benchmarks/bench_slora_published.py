"""The `a10g-llama2-7b` profile against VTC's published S-LoRA runs (Sheng et al., OSDI'24 artifact).

  python benchmarks/bench_slora_published.py fit VTC/all_results_real.jsonl  # the two fitted constants
  python benchmarks/bench_slora_published.py check FILE...  # predict published runs, e.g. the real trace
  python benchmarks/bench_slora_published.py check --scatter 0.2 --seeds 5 FILE...  # with step-time scatter

`fit` sets two constants, each on data the checks below do not use:
- the efficiency, the fraction of the A10G datasheet's bandwidth and compute that the engine
  achieves (every step-time coefficient is the datasheet's divided by it), bisected until VTC's
  total service on the `overload` suite equals the published 677 + 675 = 1,352 weighted tokens/s
  (VTC paper, A10G, Llama-2-7B; the same figure `tests/engines/test_sim.py` holds);
- the cost of each distinct adapter (tenant) in a step, `c_adapter_s`, bisected until VTC's mean
  E2E latency over the real trace's requests that arrive in its first half (before 300 s) equals
  the published one, the efficiency refitted for each candidate. The overload suite has two
  tenants, the real trace 27, so the first constant cannot tell a per-adapter cost from a slower
  engine.
The checks are then the real trace's second half under VTC, and the whole trace under FCFS and
LCF (published E2E means), none of them used by the fit.

`fit` and `check` need the artifact's per-request results, which this project does not ship or
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
import functools
import json
import math
import statistics
from dataclasses import replace
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
HALF_S = 300.0  # the real trace's arrivals span 600 s: the fit sees those before this, never after


def at_constants(efficiency: float, adapter_s: float) -> Profile:
    """The a10g profile with every step-time coefficient at `efficiency` of the datasheet and
    `adapter_s` per distinct adapter in a step."""
    scaled = get_profile("a10g-llama2-7b").step_time_scaled(A10G_EFFICIENCY / efficiency)
    return replace(scaled, c_adapter_s=adapter_s)


@functools.cache
def overload_workload() -> Workload:
    """VTC's overload suite (built once: the fit runs it ~80 times)."""
    return build_workload(WorkloadSpec(source="overload"))[0]


def overload_service(profile: Profile) -> float:
    """VTC's total service on the overload suite, as the VTC paper counts it."""
    workload = overload_workload()
    result = SimEngine(profile).run(workload, make_policy("vtc", {}, MovingAveragePredictor()))
    requests = pd.DataFrame(result.requests)
    done = requests[requests["finish_s"] <= workload.duration_s]
    return float((done["prompt_tokens"] + 2 * done["output_tokens"]).sum() / workload.duration_s)


def fit_efficiency(adapter_s: float, tolerance: float = 0.002) -> float:
    """Bisection: service falls as the efficiency falls (slower steps)."""
    low, high = 0.5, 1.2
    while high - low > tolerance:
        mid = (low + high) / 2
        service = overload_service(at_constants(mid, adapter_s))
        low, high = (low, mid) if service > PUBLISHED_OVERLOAD_VTC else (mid, high)
    return (low + high) / 2


def first_half_e2e(profile: Profile, workload: Workload) -> float:
    """VTC's mean E2E latency over the requests arriving before HALF_S (the whole trace is run)."""
    run = SimEngine(profile).run(workload, make_policy("vtc", {}, MovingAveragePredictor()))
    sim = pd.DataFrame(run.requests)
    first = sim[sim["arrival_s"] < HALF_S]
    return float((first["finish_s"] - first["arrival_s"]).mean())


def fit(vtc_file: Path, tolerance_s: float = 5e-6) -> tuple[float, float]:
    """(efficiency, adapter cost): bisection on the adapter cost, the efficiency refitted on the
    overload suite for each candidate; the first half's latency rises with the cost."""
    responses = read_responses(vtc_file)[1]
    workload = published_workload(responses)
    first = [float(r["request_latency"]) for r in responses if float(r["req_time"]) < HALF_S]  # type: ignore[arg-type]
    target = statistics.fmean(first)
    low, high = 0.0, 1e-3
    while high - low > tolerance_s:
        mid = (low + high) / 2
        efficiency = fit_efficiency(mid)
        e2e = first_half_e2e(at_constants(efficiency, mid), workload)
        print(
            f"adapter {mid * 1e3:.4f} ms, efficiency {efficiency:.4f}: "
            f"first-half E2E {e2e:6.2f} s, published {target:.2f}"
        )
        low, high = (low, mid) if e2e > target else (mid, high)
    adapter_s = (low + high) / 2
    return fit_efficiency(adapter_s), adapter_s


def read_responses(path: Path) -> tuple[dict[str, object], list[dict[str, object]]]:
    """The artifact's result summary and its per-request rows, by arrival."""
    result = json.loads(path.read_text().splitlines()[0])["result"]
    return result, sorted(result["responses"], key=lambda r: r["req_time"])


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


def check(paths: list[Path], scatter: float = 0.0, seeds: int = 1) -> None:
    """Published vs simulated for each file; with `scatter` > 0, every step time is multiplied by
    a lognormal residual of mean 1 and log-sd `scatter` (not fitted: the published runs have no
    step times), and each row gives the range of the error over `seeds` seeds."""
    profile = with_scatter(get_profile("a10g-llama2-7b"), scatter)
    print(
        f"a10g-llama2-7b (efficiency {A10G_EFFICIENCY}, {profile.c_adapter_s * 1e3:.3f} ms per adapter"
        f"{f', step-time scatter {scatter}, seeds 0-{seeds - 1}' if scatter else ''}), "
        "S-LoRA admission; error = sim/published - 1"
    )
    for path in paths:
        policy = POLICY_OF_FOLDER.get(path.parent.name)
        if policy is None:
            raise SystemExit(f"{path}: expected under a VTC, FCFS or LCF folder (fair_bench/POLICY/...)")
        label = f"{policy} {path.stem.removeprefix('all_results_')}"
        result, responses = read_responses(path)
        runs = [check_rows(profile, policy, result, responses, seed) for seed in range(seeds)]
        for name, (real, simulated) in runs[0].items():
            head = f"{label:16s} {name:26s} published {real:9.3f}"
            if len(runs) == 1:
                print(f"{head}  simulated {simulated:9.3f}  {simulated / real - 1:+7.1%}")
                continue
            errors = [run[name][1] / real - 1 for run in runs]
            print(f"{head}  error over seeds {min(errors):+7.1%} to {max(errors):+7.1%}")


def with_scatter(profile: Profile, scatter: float) -> Profile:
    """The profile with 64 lognormal step-time residuals (mean 1, log-sd `scatter`); 0: none."""
    if scatter <= 0:
        return profile
    normal = statistics.NormalDist()
    residuals = tuple(math.exp(scatter * normal.inv_cdf((k + 0.5) / 64) - scatter**2 / 2) for k in range(64))
    return replace(profile, step_residuals=residuals, step_noise=True)


def check_rows(
    profile: Profile, policy: str, result: dict[str, object], responses: list[dict[str, object]], seed: int
) -> dict[str, tuple[float, float]]:
    """(published, simulated) per metric for one seed."""
    run = SimEngine(profile, seed=seed).run(
        published_workload(responses), make_policy(policy, {}, MovingAveragePredictor())
    )
    sim = pd.DataFrame(run.requests)
    sim["e2e_s"] = sim["finish_s"] - sim["arrival_s"]
    sim["ttft_s"] = sim["first_token_s"] - sim["arrival_s"]
    rows = {
        "throughput (req/s)": (len(responses) / result["total_time"], len(sim) / sim["finish_s"].max()),  # type: ignore[operator]
        # the artifact's avg_latency is the mean request latency (its avg_first_token_latency
        # repeats the same figure, so TTFT comes from the per-request rows)
        "E2E mean (s)": (float(result["avg_latency"]), float(sim["e2e_s"].mean())),  # type: ignore[arg-type]
    }
    if all("first_token_latency" in r and "request_latency" in r for r in responses):
        rows.update(per_request_rows(responses, sim))
    return rows


def per_request_rows(responses: list[dict[str, object]], sim: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """TTFT and E2E by half of the trace (the fit used the first half's E2E under VTC), and VTC's
    fairness metrics, from the published per-request rows."""
    real = published_requests(responses)
    real["e2e_s"] = real["finish_s"] - real["arrival_s"]
    real["ttft_s"] = real["first_token_s"] - real["arrival_s"]
    rows = {
        "TTFT mean (s)": (float(real["ttft_s"].mean()), float(sim["ttft_s"].mean())),
        "TTFT p50 (s)": (float(real["ttft_s"].median()), float(sim["ttft_s"].median())),
    }
    for half, keep in (
        ("first half", lambda f: f["arrival_s"] < HALF_S),
        ("second half", lambda f: f["arrival_s"] >= HALF_S),
    ):
        for metric in ("e2e_s", "ttft_s"):
            name = f"{metric.removesuffix('_s').upper()} mean, {half} (s)"
            rows[name] = (float(real[keep(real)][metric].mean()), float(sim[keep(sim)][metric].mean()))
    sim["weight"] = 1.0
    real_fair, sim_fair = fairness(real), fairness(sim)
    rows.update({k: (real_fair[k], sim_fair[k]) for k in real_fair})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    fitter = sub.add_parser("fit")
    fitter.add_argument("vtc_file", type=Path, help="fair_bench/VTC/all_results_real.jsonl")
    checker = sub.add_parser("check")
    checker.add_argument("files", type=Path, nargs="+")
    checker.add_argument("--scatter", type=float, default=0.0, help="log-sd of step-time residuals (0: none)")
    checker.add_argument("--seeds", type=int, default=1, help="seeds to run with --scatter (ranges printed)")
    args = parser.parse_args()
    if args.command == "fit":
        efficiency, adapter_s = fit(args.vtc_file)
        profile = get_profile("a10g-llama2-7b")
        print(
            f"fitted: efficiency {efficiency:.3f}, {adapter_s * 1e3:.4f} ms per adapter "
            f"(the profile uses {A10G_EFFICIENCY} and {profile.c_adapter_s * 1e3:.4f} ms)"
        )
    else:
        check(args.files, args.scatter, args.seeds if args.scatter > 0 else 1)


if __name__ == "__main__":
    main()
