"""MoPE speed: training time on 100,000 collected rows and prediction cost inside the scheduler.

  python benchmarks/bench_mope.py            # 100,000 training rows
  python benchmarks/bench_mope.py --quick    # 20,000 training rows

Targets (issue 3): training on 100,000 rows < 60 s on this machine (2 cores); prediction < 20 µs per
request in a batch of 64 and < 200 µs for one request. Prediction is measured on Arena-Hard requests
(real prompt text): "cold" includes the text features, "warm" reuses them — the policies call
predictor.prepare() at arrival, so admission (the scheduling path) pays the warm cost.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from equinox_cli import api
from equinox_cli.core.types import Request
from equinox_cli.predict.artifact import load_artifact
from equinox_cli.predict.config import TrainConfig
from equinox_cli.predict.dataset import load_collected
from equinox_cli.predict.online import ArtifactPredictor
from equinox_cli.predict.train import train_mope
from equinox_cli.workload.build import WorkloadSpec, build_workload

ARENA = (
    Path(__file__).resolve().parents[1]
    / ".."
    / "shared"
    / "traces"
    / "arena_hard_auto"
    / "arena_hard_flat.jsonl"
)


def training_time(rows: int, tmp: Path) -> None:
    spec = WorkloadSpec(source="sharegpt-like", duration_s=rows / 10.0 + 60, limit=rows)
    start = time.perf_counter()
    api.collect(api.CollectConfig(workload=spec, out=tmp / "big"))
    collect_s = time.perf_counter() - start
    collected = load_collected([tmp / "big"])
    start = time.perf_counter()
    result = train_mope(collected, TrainConfig())
    train_s = time.perf_counter() - start
    print(
        f"training: {len(collected.requests)} request rows + {len(collected.steps)} step rows "
        f"(steps subsampled to {result.rows['steps']}): collect {collect_s:.1f} s, "
        f"train_mope (3 splits x 5 targets, MoPE + single) {train_s:.1f} s  [target < 60 s]"
    )


def prediction_cost(tmp: Path) -> None:
    spec = WorkloadSpec(source=str(ARENA), rate_rps=3.0)
    api.collect(api.CollectConfig(workload=spec, out=tmp / "arena"))
    api.train_mope_artifact(api.TrainMopeConfig((tmp / "arena",), tmp / "model"))
    artifact = load_artifact(tmp / "model")
    workload, _ = build_workload(spec)
    requests = [it.request for it in workload.items]
    predictor = ArtifactPredictor(artifact)
    for it in workload.items[:2000]:  # realistic history state
        predictor.observe(it.request, it.output_tokens)
    batches = [requests[i : i + 64] for i in range(2000, 2000 + 64 * 60, 64)]
    singles = requests[6000:7000]

    def per_request_us(calls: list[list[Request]], fresh: bool) -> float:
        """Median over 5 repeats; `fresh` drops cached text features first (cold)."""
        times = []
        for _ in range(5):
            if fresh:
                predictor._text.clear()
            start = time.perf_counter()
            for batch in calls:
                if len(batch) == 1:
                    predictor.predict_output_tokens(batch[0])
                else:
                    predictor.predict_batch(batch)
            times.append((time.perf_counter() - start) / sum(len(b) for b in calls) * 1e6)
        return float(np.median(times))

    one_by_one = [[r] for r in singles]
    cold_batch, warm_batch = per_request_us(batches, True), per_request_us(batches, False)
    cold_single, warm_single = per_request_us(one_by_one, True), per_request_us(one_by_one, False)
    trees = artifact.mope["output_tokens"]
    sizes = [trees.base.n_trees, *(e.n_trees for e in trees.experts if e is not None)]
    print(f"prediction (output tokens, MoPE: pooled + {len(sizes) - 1} experts, trees {sizes}):")
    print(
        f"  batch of 64: {cold_batch:.1f} µs/request cold, {warm_batch:.1f} µs/request warm "
        "(median of 5 passes)  [target < 20]"
    )
    print(f"  one request: {cold_single:.1f} µs cold, {warm_single:.1f} µs warm  [target < 200]")
    twin = ArtifactPredictor(load_artifact(tmp / "model"))
    for it in workload.items[:2000]:
        twin.observe(it.request, it.output_tokens)
    same = np.array_equal(predictor.predict_batch(batches[0]), twin.predict_batch(batches[0]))
    print(f"  a second predictor from the reloaded artifact, same history: bit-identical = {same}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="equinox-bench-mope-") as folder:
        tmp = Path(folder)
        prediction_cost(tmp)
        training_time(20_000 if args.quick else 100_000, tmp)


if __name__ == "__main__":
    main()
