"""Speed of the sweep and of the HTML report (issue 12's targets), printed, never asserted.

  sweep:  a 100-cell sweep of 10-minute simulated runs (overload, A10G; 5 policies × 10 seeds ×
          2 time scales) run serially and with --jobs 2 on this machine: parallel efficiency =
          serial wall / (parallel wall × 2). Target ≥ 80 %.
  report: `equinox report` on a 36,000-request run (ShareGPT-like, Poisson 10 req/s for 3,600 s,
          A100, VTC and FCFS): wall seconds of the whole command. Target < 10 s.

Usage: python benchmarks/bench_report.py [--quick]   (--quick: 20 cells, 600 s run)
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

GRID = """
workloads = ["overload"]
policies = ["vtc", "fcfs", "equinox", "lcf", "rpm"]
seeds = {seeds}
time_scales = [0.75, 1.0]
profile = "a10g-llama2-7b"
duration_s = 600
"""


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def sweep_efficiency(root: Path, seeds: int) -> None:
    config = root / "grid.toml"
    config.write_text(GRID.format(seeds=list(range(1, seeds + 1))))
    serial = timed(["equinox", "sweep", str(config), "--out", str(root / "serial"), "--jobs", "1"])
    parallel = timed(["equinox", "sweep", str(config), "--out", str(root / "parallel"), "--jobs", "2"])
    cells = 10 * seeds
    print(
        f"sweep of {cells} cells: serial {serial:.1f} s, --jobs 2 {parallel:.1f} s, "
        f"parallel efficiency {serial / (2 * parallel):.0%} (target ≥ 80 %)"
    )


def report_speed(root: Path, duration_s: int) -> None:
    run = root / "run"
    subprocess.run(
        [
            "equinox",
            "replay",
            "sharegpt-like",
            "--rate",
            "10",
            "--duration",
            str(duration_s),
            "--policy",
            "vtc",
            "--baseline",
            "fcfs",
            "--out",
            str(run),
            "--json",
        ],
        check=True,
        capture_output=True,
    )
    import pandas as pd

    requests = len(pd.read_parquet(run / "vtc" / "requests.parquet"))
    wall = timed(["equinox", "report", str(run)])
    print(f"report of a {requests}-request run (2 policies): {wall:.1f} s wall (target < 10 s)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sweep_efficiency(Path(tmp), 2 if args.quick else 10)
        report_speed(Path(tmp), 600 if args.quick else 3600)


if __name__ == "__main__":
    main()
