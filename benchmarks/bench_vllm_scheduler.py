"""Scheduler overhead inside vLLM: time per schedule() (and per update_from_output()) with 1,000
waiting requests from 100 clients, vLLM's own FCFS Scheduler against the Equinox plug-in running
fcfs, vtc and equinox. No model runs (engines/vllm/offline.py feeds fake outputs), so the times
are the scheduler's alone. The waiting queue is topped up to 1,000 before every step.

Needs vllm (the .ci/vllm-venv environment):  .venv-vllm/bin/python benchmarks/bench_vllm_scheduler.py
Prints one row per scheduler and the ratio to vLLM's FCFS, measured in this one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

from vllm.v1.core.sched.scheduler import Scheduler

from equinox_cli.engines.vllm.offline import (
    SchedulerShape,
    build_scheduler,
    fake_output,
    make_request,
)
from equinox_cli.engines.vllm.plugin import EquinoxScheduler
from equinox_cli.engines.vllm.tiny_model import build_tiny_model

WAITING, CLIENTS, PROMPT, OUTPUT = 1000, 100, 64, 128
SHAPE = SchedulerShape(max_num_seqs=128, max_num_batched_tokens=2048, max_model_len=1024, num_blocks=4096)


def measure(cls: type, policy: str | None, steps: int, warmup: int) -> tuple[float, float]:
    """Median µs per schedule() and per update_from_output() over `steps` steps after `warmup`."""
    if policy is not None:
        os.environ["EQUINOX_POLICY"] = policy
    scheduler: Any = build_scheduler(cls, build_tiny_model(), SHAPE)
    serial = 0
    schedule_us, update_us = [], []
    for step in range(warmup + steps):
        while len(scheduler.waiting) < WAITING:
            client = f"c{serial % CLIENTS}"
            scheduler.add_request(make_request(f"r{serial}", client, PROMPT + serial % 7, OUTPUT))
            serial += 1
        t0 = time.perf_counter()
        output = scheduler.schedule()
        t1 = time.perf_counter()
        model_output = fake_output(scheduler, output)
        t2 = time.perf_counter()
        scheduler.update_from_output(output, model_output)
        t3 = time.perf_counter()
        if step >= warmup:
            schedule_us.append((t1 - t0) * 1e6)
            update_us.append((t3 - t2) * 1e6)
    return statistics.median(schedule_us), statistics.median(update_us)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved passes; the median is kept")
    args = parser.parse_args()
    os.environ.pop("EQUINOX_LOG_DIR", None)
    cases: list[tuple[str, type, str | None]] = [
        ("vllm fcfs (no plug-in)", Scheduler, None),
        ("plug-in fcfs", EquinoxScheduler, "fcfs"),
        ("plug-in vtc", EquinoxScheduler, "vtc"),
        ("plug-in equinox", EquinoxScheduler, "equinox"),
    ]
    results: dict[str, list[tuple[float, float]]] = {name: [] for name, _, _ in cases}
    for _ in range(args.repeats):  # interleaved, so drift on a noisy machine hits every case alike
        for name, cls, policy in cases:
            results[name].append(measure(cls, policy, args.steps, args.warmup))
    base = statistics.median(r[0] for r in results[cases[0][0]])
    print(f"{WAITING} waiting from {CLIENTS} clients, batch <= {SHAPE.max_num_seqs}, {args.steps} steps")
    print(f"{'scheduler':<24} {'schedule() µs':>14} {'ratio':>7} {'update() µs':>12}")
    for name, rows in results.items():
        sched = statistics.median(r[0] for r in rows)
        update = statistics.median(r[1] for r in rows)
        print(f"{name:<24} {sched:>14.1f} {sched / base:>7.3f} {update:>12.1f}")


if __name__ == "__main__":
    main()
