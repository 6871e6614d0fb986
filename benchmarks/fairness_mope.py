"""MoPE for the fairness benchmark: one artifact per profile and workload, trained on the tuning seeds.

As a user would make one: `equinox collect` (here `api.collect`) runs the workload under VTC in the
benchmark's engine on each tuning seed, writing per-request and per-step rows; `equinox train-mope`
(`api.train_mope_artifact`) trains on them. The evaluation seeds are never collected, and Arena's
tuning seeds draw from other prompts than its evaluation seeds (bench_fairness._arena), so MoPE
predicts requests it has not seen. Collected rows and artifacts stay under the folder given
(`--train-mope DIR`), never in the repository.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from equinox_cli import api
from equinox_cli.core.errors import UserInputError
from equinox_cli.core.types import Workload
from equinox_cli.workload.build import WorkloadSpec
from equinox_cli.workload.schema import workload_to_frame

ARTIFACT_FILE = "manifest.json"  # written last by save_artifact: its presence means complete


def train(
    folder: Path,
    build: Callable[[int], Workload],
    seeds: Sequence[int],
    profile: str,
    engine_args: Mapping[str, str],
) -> str:
    """Collect `build(seed)` under VTC for each tuning seed and train MoPE into `folder`; an
    artifact already there is kept. Returns a one-line account (rows, MAE against the baselines)."""
    if trained(folder):
        return f"{folder}: kept"
    staging = folder.with_name(folder.name + ".data")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    collected = []
    for seed in seeds:
        trace = staging / f"seed{seed}.parquet"
        workload_to_frame(build(seed)).to_parquet(trace, index=False)
        out = staging / f"collect-seed{seed}"
        config = api.CollectConfig(
            workload=WorkloadSpec(source=str(trace), seed=seed),
            profile=profile,
            policy="vtc",
            engine_params=tuple(f"{k}={v}" for k, v in engine_args.items()),
            out=out,
        )
        api.collect(config)
        collected.append(out)
    try:
        outcome = api.train_mope_artifact(api.TrainMopeConfig(data=tuple(collected), out=folder))
    except UserInputError as exc:  # e.g. too few finished requests to train on
        return f"{folder}: no MoPE ({exc})"
    metrics = outcome.result.metrics
    output = metrics[(metrics["target"] == "output_tokens") & (metrics["split"] == "shift")]
    mae = dict(zip(output["predictor"], output["mae"].round(1), strict=True))
    return f"{folder}: output MAE on the last 20 % of arrivals {mae}"


def trained(folder: Path) -> bool:
    return (folder / ARTIFACT_FILE).exists()
