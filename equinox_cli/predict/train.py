"""train_mope(): features, splits, MoPE and single models per target, evaluation, step-time fit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from equinox_cli.core.errors import UserInputError
from equinox_cli.predict.config import TrainConfig
from equinox_cli.predict.dataset import Collected
from equinox_cli.predict.evaluate import SPLITS, metrics_rows, split_masks
from equinox_cli.predict.features import request_feature_frame, step_feature_frame
from equinox_cli.predict.mope import TARGETS, TargetModel, TargetSpec, fit_target
from equinox_cli.predict.step_model import StepFit, fit_step_time

REQUEST_TARGETS = tuple(name for name, spec in TARGETS.items() if spec.table == "requests")
STEP_TARGETS = tuple(name for name, spec in TARGETS.items() if spec.table == "steps")


@dataclass(frozen=True)
class TrainResult:
    mope: dict[str, TargetModel]  # trained on the random split's train rows (what the metrics describe)
    single: dict[str, TargetModel]
    metrics: pd.DataFrame
    predictions: pd.DataFrame  # per held-out request: truth and every predictor's output tokens
    step_fit: StepFit | None
    rows: dict[str, int]
    warnings: list[str]


@dataclass(frozen=True)
class _Table:
    features: pd.DataFrame
    truth: pd.DataFrame
    order_s: np.ndarray
    clients: np.ndarray | None
    ids: np.ndarray


def _request_table(collected: Collected, min_rows: int) -> _Table:
    requests = collected.requests
    finished = requests[requests["status"] == "finished"]
    if len(finished) < min_rows:
        raise UserInputError(
            f"{', '.join(collected.sources)}: {len(finished)} finished requests; "
            f"need at least {min_rows} to train"
        )
    features = request_feature_frame(requests).loc[finished.index].reset_index(drop=True)
    truth = finished[list(REQUEST_TARGETS)].astype(float).reset_index(drop=True)
    clients = finished["client_id"].astype(str).to_numpy()
    ids = (
        finished["request_id"].astype(str).to_numpy()
        if "request_id" in finished
        else np.arange(len(finished)).astype(str)
    )
    return _Table(features, truth, finished["arrival_s"].to_numpy(dtype=float), clients, ids)


def _step_table(collected: Collected, config: TrainConfig, warnings: list[str]) -> _Table | None:
    steps = collected.steps
    if steps.empty:
        warnings.append("no step rows: step_time_s and gpu_util are not trained")
        return None
    if len(steps) < config.min_rows:
        raise UserInputError(f"{len(steps)} step rows; need at least {config.min_rows} to train")
    if len(steps) > config.max_step_rows:  # seeded subsample keeps training time bounded
        keep = np.sort(np.random.default_rng(config.fit.seed).permutation(len(steps))[: config.max_step_rows])
        steps = steps.iloc[keep]
    steps = steps.reset_index(drop=True)
    truth = steps[list(STEP_TARGETS)].astype(float)
    truth["throughput_tokens_per_s"] = (steps["prefill_tokens"] + steps["decode_seqs"]) / steps["step_time_s"]
    order = (
        steps["start_s"].to_numpy(dtype=float) if "start_s" in steps else np.arange(len(steps), dtype=float)
    )
    return _Table(step_feature_frame(steps), truth, order, None, np.arange(len(steps)).astype(str))


def _fit_and_score(
    spec: TargetSpec, table: _Table, train: np.ndarray, test: np.ndarray, config: TrainConfig
) -> tuple[TargetModel, TargetModel, dict[str, np.ndarray], np.ndarray]:
    y = table.truth[spec.name].to_numpy()
    ok = np.isfinite(y) & (y >= 0)
    x = table.features[list(spec.features)].to_numpy(dtype=float)
    route = table.features[spec.route_column].to_numpy(dtype=float)
    tr, te = train & ok, test & ok
    if tr.sum() < config.min_rows:
        raise UserInputError(f"{spec.name}: {int(tr.sum())} training rows; need at least {config.min_rows}")
    mope, single = fit_target(spec, x[tr], y[tr], route[tr], config.fit)
    preds = {
        "mope": mope.predict(x[te], route[te]),
        "single": single.predict(x[te], route[te]),
        "constant": np.full(int(te.sum()), float(y[tr].mean())),
    }
    return mope, single, preds, te


def train_mope(
    collected: Collected, config: TrainConfig, progress: Callable[[str], None] | None = None
) -> TrainResult:
    """`progress` hears what is being fitted (minutes on a large collection)."""
    warnings: list[str] = []
    requests = _request_table(collected, config.min_rows)
    steps = _step_table(collected, config, warnings)
    seed = config.fit.seed
    rows: list[dict[str, object]] = []
    predictions: list[pd.DataFrame] = []
    kept_mope: dict[str, TargetModel] = {}
    kept_single: dict[str, TargetModel] = {}
    for split in SPLITS:
        for table, targets in ((requests, REQUEST_TARGETS), (steps, STEP_TARGETS)):
            if table is None:
                continue
            masks = split_masks(table.order_s, table.clients, split, seed, config.test_fraction)
            if masks is None:
                if table is requests:
                    warnings.append(f"split {split}: not applicable (fewer than two clients)")
                continue
            for name in targets:
                if progress is not None:
                    progress(f"fitting {name} ({split} split, {int(masks[0].sum())} training rows)")
                spec = TARGETS[name]
                mope, single, preds, test = _fit_and_score(spec, table, *masks, config)
                truth = table.truth[name].to_numpy()[test]
                if name == "output_tokens":
                    preds["moving-average"] = table.features["moving_average"].to_numpy()[test]
                    preds["oracle"] = truth.copy()
                    predictions.append(_prediction_frame(split, table, test, truth, preds))
                rows += metrics_rows(split, name, truth, preds)
                if name == "step_time_s":
                    rows += _throughput_rows(split, table, test, preds)
                if split == "random":
                    kept_mope[name], kept_single[name] = mope, single
    if progress is not None:
        progress("fitting the step-time model")
    step_fit = fit_step_time(collected.steps) if not collected.steps.empty else None
    counts = {"requests": len(requests.truth), "steps": len(steps.truth) if steps is not None else 0}
    return TrainResult(
        kept_mope,
        kept_single,
        pd.DataFrame(rows),
        pd.concat(predictions, ignore_index=True),
        step_fit,
        counts,
        warnings,
    )


def _throughput_rows(
    split: str, table: _Table, test: np.ndarray, preds: dict[str, np.ndarray]
) -> list[dict[str, object]]:
    """Throughput follows from the step-time prediction: the step's tokens / predicted step time."""
    tokens = (table.features["prefill_tokens"] + table.features["decode_seqs"]).to_numpy()[test]
    truth = table.truth["throughput_tokens_per_s"].to_numpy()[test]
    derived = {name: tokens / np.maximum(pred, 1e-9) for name, pred in preds.items()}
    return metrics_rows(split, "throughput_tokens_per_s", truth, derived)


def _prediction_frame(
    split: str, table: _Table, test: np.ndarray, truth: np.ndarray, preds: dict[str, np.ndarray]
) -> pd.DataFrame:
    frame = pd.DataFrame({"split": split, "request_id": table.ids[test], "output_tokens": truth})
    if table.clients is not None:
        frame.insert(2, "client_id", table.clients[test])
    for name, pred in preds.items():
        frame[f"pred_{name.replace('-', '_')}"] = pred
    return frame
