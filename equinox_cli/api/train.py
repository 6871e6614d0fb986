"""`equinox train-mope`: train and evaluate MoPE from collected data; a versioned artifact."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from equinox_cli.api.runs import check_out, versions
from equinox_cli.predict.artifact import save_artifact
from equinox_cli.predict.config import TrainConfig
from equinox_cli.predict.dataset import load_collected
from equinox_cli.predict.evaluate import mae_ratio
from equinox_cli.predict.train import TrainResult, train_mope


@dataclass(frozen=True, slots=True)
class TrainMopeConfig:
    data: tuple[Path, ...]
    out: Path | None = None
    name: str | None = None
    predictors_root: Path = Path("predictors")
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass(frozen=True)
class TrainMopeOutcome:
    out_dir: Path
    result: TrainResult
    mae_ratio: dict[str, float]


def train_mope_artifact(
    config: TrainMopeConfig, progress: Callable[[str], None] | None = None
) -> TrainMopeOutcome:
    """Train and evaluate MoPE from collected data; write predictors/<name>/ atomically. `progress`
    hears each stage."""
    name = config.name or (config.out.name if config.out else f"mope-{time.strftime('%Y%m%d-%H%M%S')}")
    out_dir = config.out or config.predictors_root / name
    check_out(out_dir)
    if progress is not None:
        progress("loading " + ", ".join(map(str, config.data)))
    collected = load_collected(config.data)
    result = train_mope(collected, config.train, progress)
    ratio = {k: float(v) for k, v in mae_ratio(result.metrics).items()}
    manifest = {
        "name": name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seed": config.train.fit.seed,
        "train_config": asdict(config.train),
        "routing": "see equinox_cli/predict/mope.py: expert k serves t[k-1] < value <= t[k]",
        "data": {"sources": list(collected.sources), **result.rows},
        "metrics": result.metrics.to_dict(orient="records"),
        "output_mae_single_over_mope": ratio,
        "step_model": result.step_fit.to_dict() if result.step_fit else None,
        **engine_of(config.data, result.warnings),
        "versions": versions("scikit-learn"),
        "warnings": result.warnings,
    }
    extra = {
        "metrics.parquet": lambda path: result.metrics.to_parquet(path, index=False),
        "predictions.parquet": lambda path: result.predictions.to_parquet(path, index=False),
    }
    save_artifact(out_dir, result.mope, manifest, extra)
    return TrainMopeOutcome(out_dir, result, ratio)


def engine_of(data: tuple[Path, ...], warnings: list[str]) -> dict[str, object]:
    """{"engine_config": ...} when every collected folder recorded the same real engine (its
    collect.json), so that `--profile predictors/NAME` models that engine; else {}."""
    configs = []
    for path in data:
        folder = path if path.is_dir() else path.parent
        try:
            meta = json.loads((folder / "collect.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        config = meta.get("engine_config") if isinstance(meta, dict) else None
        if not isinstance(config, dict):
            return {}
        configs.append(config)
    if any(c != configs[0] for c in configs[1:]):
        warnings.append(
            "the collected folders come from differently configured engines: no engine_config kept"
        )
        return {}
    return {"engine_config": configs[0]} if configs else {}
