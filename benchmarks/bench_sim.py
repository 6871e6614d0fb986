"""Simulator and scheduler speed. Prints its figures; compare ratios measured in one run.

  python benchmarks/bench_sim.py            # full: 1-hour 10 req/s ShareGPT-like workload
  python benchmarks/bench_sim.py --quick    # 10 simulated minutes
  python benchmarks/bench_sim.py --whole    # the whole `equinox replay` process, 5 runs (median)

Targets (issue 2): simulated/wall ≥ 300× on one core; a scheduling decision with 1,000 clients and
10,000 waiting requests < 20 µs; wall time linear in the number of requests. Issue 11: the whole
`equinox replay` process (imports, workload, simulation, metrics, Parquet) on the 36,000-request
list (ShareGPT-like, Poisson 10 req/s for 3,600 s, a100, VTC) ≥ 1,000× real time (3,600 s of
arrivals / wall), prefix caching off, and the cost with it on. Every figure is for the build that
runs: the step loop compiled by `pip install` (mypyc, equinox_cli/native.py) or plain Python
(EQUINOX_PURE_PYTHON=1); `--whole` times both in one run.
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

import equinox_cli
from equinox_cli.core.types import ClientStepService, Progress, Request
from equinox_cli.engines.sim.engine import SimEngine
from equinox_cli.engines.sim.profiles import get_profile
from equinox_cli.policies import make_policy
from equinox_cli.predict.baselines import MovingAveragePredictor
from equinox_cli.workload.build import WorkloadSpec, build_workload


def sim_speed(duration_s: float, policy: str) -> tuple[int, float, float]:
    workload, _ = build_workload(WorkloadSpec(source="sharegpt-like", duration_s=duration_s))
    engine = SimEngine(get_profile("a100-llama2-7b"))
    start = time.perf_counter()
    result = engine.run(workload, make_policy(policy, {}, MovingAveragePredictor()))
    wall = time.perf_counter() - start
    simulated = max(result.requests["finish_s"])  # type: ignore[type-var]
    return len(workload), float(simulated), wall


def decision_cost(policy_name: str, clients: int = 1000, waiting: int = 10_000) -> float:
    rng = np.random.default_rng(0)
    policy = make_policy(policy_name, {}, MovingAveragePredictor())
    owners = rng.integers(0, clients, waiting * 2).tolist()
    # built before the clock starts: the figure is the scheduler's, not the benchmark's object making
    requests = [Request(f"r{i}", f"c{c}", float(i >= waiting), 200, 200) for i, c in enumerate(owners)]
    for request in requests[:waiting]:
        policy.on_arrival(request, 0.0)
    charge = {f"c{k}": ClientStepService(0, 1, 300) for k in range(0, clients, 10)}
    step = Progress(1.0, 0.02, 0.8, charge)
    n = waiting
    start = time.perf_counter()
    for i in range(n):  # one decision, one arrival, and a step's charges every 10 decisions
        policy.pick_next(1.0)
        policy.on_arrival(requests[waiting + i], 1.0)
        if i % 10 == 0:
            policy.on_progress(step)
    return (time.perf_counter() - start) / n * 1e6


def compile_package() -> None:
    """Bytecode for the package, as `pip install` writes it: with PYTHONDONTWRITEBYTECODE set (this
    workplace sets it) an editable checkout would otherwise recompile ~100 modules every run."""
    compileall.compile_dir(str(Path(equinox_cli.__file__).parent), quiet=1)


def whole_process_once(extra: tuple[str, ...] = (), pure: bool = False) -> float:
    """Wall seconds of one `equinox replay` on the 36,000-request list, report written; `pure`:
    with the step loop as plain Python (EQUINOX_PURE_PYTHON, equinox_cli/native.py)."""
    env = {k: v for k, v in os.environ.items() if k != "EQUINOX_PURE_PYTHON"}
    if pure:
        env["EQUINOX_PURE_PYTHON"] = "1"
    out = Path(tempfile.mkdtemp()) / "run"
    command = ["equinox", "replay", "sharegpt-like", "--rate", "10", "--duration", "3600"]
    start = time.perf_counter()
    subprocess.run(
        [*command, "--policy", "vtc", "--out", str(out), "--json", *extra],
        check=True,
        capture_output=True,
        env=env,
    )
    wall = time.perf_counter() - start
    shutil.rmtree(out.parent)
    return wall


def whole_process(configs: dict[str, tuple[tuple[str, ...], bool]], rounds: int = 5) -> dict[str, float]:
    """Median wall seconds per configuration, the configurations taking turns round by round (run
    one after the other, the first came out up to 20 % slower on this machine: order, not code)."""
    compile_package()
    walls: dict[str, list[float]] = {label: [] for label in configs}
    for _ in range(rounds):
        for label, (extra, pure) in configs.items():
            walls[label].append(whole_process_once(extra, pure))
    return {label: statistics.median(w) for label, w in walls.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--whole", action="store_true")
    args = parser.parse_args()
    print(f"step loop compiled (mypyc, equinox_cli/native.py): {'yes' if equinox_cli.NATIVE else 'NO'}")
    if args.whole:
        print("== whole `equinox replay`, 36,000 requests, 3,600 s (a100, vtc), median of 5 interleaved ==")
        off = ("-E", "prefix_caching=false")
        configs = {
            "prefix caching off": (off, False),
            "default (on)": ((), False),
            "off, plain Python": (off, True),
        }
        for label, wall in whole_process(configs).items():
            print(f"{label:20s} wall {wall:5.2f} s  speed {3600 / wall:6.0f}x real time")
        return
    hour = 600.0 if args.quick else 3600.0
    print(f"== simulated / wall time, ShareGPT-like 10 req/s for {hour:.0f} s (a100-llama2-7b) ==")
    for policy in ("vtc", "equinox"):
        n, simulated, wall = sim_speed(hour, policy)
        print(
            f"{policy:8s} {n:6d} requests  simulated {simulated:8.0f} s  wall {wall:6.2f} s  "
            f"speed {simulated / wall:7.0f}x real time"
        )
    print("== cost per scheduling decision, 1,000 clients, 10,000 waiting ==")
    for policy in ("fcfs", "vtc", "equinox"):
        print(f"{policy:8s} {decision_cost(policy):6.2f} us per decision (pick + arrival + charges)")
    print("== scaling: wall time by number of requests (vtc) ==")
    base = hour / 6
    walls = []
    for factor in (1, 2, 4):
        n, _, wall = sim_speed(base * factor, "vtc")
        walls.append((n, wall))
        print(f"{n:6d} requests  wall {wall:6.2f} s  {wall / n * 1e6:6.1f} us/request")
    n0, w0 = walls[0]
    print(
        "ratios (wall / requests, relative to the smallest):",
        ", ".join(f"{(w / n) / (w0 / n0):.2f}" for n, w in walls),
    )


if __name__ == "__main__":
    main()
