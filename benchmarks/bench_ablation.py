"""Ablation in the shape of the paper's Table 1, on the simulator with real prompts and output lengths.

  1. collect the first part of the Arena-Hard trace (Poisson arrivals, tenant = answering model),
  2. train MoPE on it,
  3. replay the *later* part (never seen in training) under
       - the same predictor with different schedulers (Equinox, VTC-pred), and
       - the same scheduler with different predictors (oracle, MoPE, single model, moving average, none),
     plus VTC and FCFS, which use no predictor.
Prints one table: online output-token MAE of the predictor during the run, then the serving metrics.

    python benchmarks/bench_ablation.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from equinox_cli import api
from equinox_cli.core.types import Request
from equinox_cli.predict.config import TrainConfig
from equinox_cli.workload.build import WorkloadSpec

ARENA = (
    Path(__file__).resolve().parents[1]
    / ".."
    / "shared"
    / "traces"
    / "arena_hard_auto"
    / "arena_hard_flat.jsonl"
)
# mope: MoPE guarded by the moving average (registry.py); mope-only: MoPE alone
PREDICTORS = ("oracle", "mope", "mope-only", "single", "moving-average", "none")
COLUMNS = (
    ("output_tokens_per_s", "tok/s", "{:.0f}"),
    ("goodput_requests_per_s", "goodput", "{:.2f}"),
    ("ttft_p50_s", "TTFT p50", "{:.2f}"),
    ("ttft_p99_s", "TTFT p99", "{:.1f}"),
    ("jain_index", "Jain", "{:.4f}"),
    ("jain_windowed_mean", "Jain 60s", "{:.4f}"),
    ("service_diff_mean", "svc diff", "{:.0f}"),
    ("preemptions", "preempt", "{:.0f}"),
)


class Recording:
    """Wraps a predictor and records (prediction, truth) pairs for the online MAE."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.pending: dict[str, float] = {}
        self.errors: list[float] = []

    def __getattr__(self, name: str) -> object:  # forecast, predict_step, name: the inner's
        return getattr(self.inner, name)

    def prepare(self, request: Request) -> None:
        self.inner.prepare(request)  # type: ignore[attr-defined]

    def predict_output_tokens(self, request: Request) -> float:
        value = self.inner.predict_output_tokens(request)  # type: ignore[attr-defined]
        self.pending[request.request_id] = value
        return value

    def observe(self, request: Request, output_tokens: int) -> None:
        predicted = self.pending.pop(request.request_id, None)
        if predicted is not None:
            self.errors.append(abs(predicted - output_tokens))
        self.inner.observe(request, output_tokens)  # type: ignore[attr-defined]


def run(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="equinox-ablation-"))
    train_spec = WorkloadSpec(source=str(ARENA), rate_rps=args.rate, duration_s=args.split_s, seed=args.seed)
    test_spec = WorkloadSpec(
        source=str(ARENA), rate_rps=args.rate, start_s=args.split_s, duration_s=args.test_s, seed=args.seed
    )
    t0 = time.perf_counter()
    api.collect(api.CollectConfig(workload=train_spec, profile=args.profile, out=tmp / "collected"))
    trained = api.train_mope_artifact(
        api.TrainMopeConfig((tmp / "collected",), tmp / "mope", train=TrainConfig())
    )
    print(
        f"collected + trained in {time.perf_counter() - t0:.1f} s; "
        f"offline MAE ratio single/MoPE: {trained.mae_ratio}"
    )
    rows: list[tuple[str, str, float, dict[str, object]]] = []
    for scheduler in ("equinox", "vtc-pred"):
        for predictor in PREDICTORS:
            spec = {
                "mope": f"mope:{tmp / 'mope'}",
                "mope-only": f"mope-only:{tmp / 'mope'}",
                "single": f"single:{tmp / 'mope'}",
            }.get(predictor, predictor)
            recorder: list[Recording] = []
            # the policies' predictor is made in api/params.py (`api.make_predictor` is a re-export)
            params = sys.modules["equinox_cli.api.params"]
            original = params.make_predictor

            def recording(
                spec_: str, workload: object, cache: dict, _orig=original, _rec=recorder
            ) -> Recording:  # type: ignore[type-arg]
                wrapped = Recording(_orig(spec_, workload, cache))  # type: ignore[arg-type]
                _rec.append(wrapped)
                return wrapped

            params.make_predictor = recording
            try:
                outcome = api.replay(
                    api.ReplayConfig(
                        workload=test_spec,
                        profile=args.profile,
                        policy=scheduler,
                        predictor=spec,
                        out=tmp / f"{scheduler}-{predictor}",
                    )
                )
            finally:
                params.make_predictor = original
            mae = float(np.mean(recorder[0].errors)) if recorder and recorder[0].errors else float("nan")
            rows.append((scheduler, predictor, mae, outcome.summary.iloc[0].to_dict()))
    outcome = api.replay(
        api.ReplayConfig(
            workload=test_spec, profile=args.profile, policy="vtc", baselines=("fcfs",), out=tmp / "plain"
        )
    )
    for record in outcome.summary.to_dict("records"):
        rows.append((str(record["policy"]), "—", float("nan"), record))
    print(
        f"workload: arena-hard, rate {args.rate} req/s, trained on [0, {args.split_s}) s, "
        f"replayed from {args.split_s} s "
        f"({len(outcome.workload)} requests), profile {args.profile}"
    )
    header = f"{'scheduler':<10} {'predictor':<15} {'MAE':>7} " + " ".join(
        f"{label:>9}" for _, label, _ in COLUMNS
    )
    print(header)
    for scheduler, predictor, mae, summary in rows:
        cells = " ".join(f"{fmt.format(float(summary[key])):>9}" for key, _, fmt in COLUMNS)  # type: ignore[arg-type]
        print(f"{scheduler:<10} {predictor:<15} {mae:>7.1f} {cells}")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="shorter replay window")
    parser.add_argument("--rate", type=float, default=3.0)
    parser.add_argument("--split-s", type=float, default=1400.0)
    parser.add_argument("--test-s", type=float, default=None)
    parser.add_argument("--profile", default="a100-llama2-7b")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    if args.quick and args.test_s is None:
        args.test_s = 300.0
    run(args)


if __name__ == "__main__":
    main(sys.argv[1:])
