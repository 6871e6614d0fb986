"""Evaluation splits and error metrics of the predictors (pure functions; no printing).

Splits of the request rows (each trains its own models on its train part):
  random   a seeded 20 % of rows held out;
  clients  a seeded 20 % of clients held out entirely (their history is still replayed online,
           as a scheduler would see it for a tenant it never trained on);
  shift    the last 20 % of rows by arrival time: a later, possibly different workload.
Step rows have no client: they are evaluated on `random` and `shift` only.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

SPLITS = ("random", "clients", "shift")
OUTPUT_BUCKETS = (64.0, 256.0, 1024.0)  # bucket edges in tokens: <64, 64-256, 256-1024, >=1024
MAPE_TARGETS = ("output_tokens", "step_time_s", "throughput_tokens_per_s", "e2e_s")


def split_masks(
    order_s: np.ndarray, clients: np.ndarray | None, split: str, seed: int, fraction: float = 0.2
) -> tuple[np.ndarray, np.ndarray] | None:
    """(train, test) boolean masks; None when the split does not apply (one client, no clients)."""
    n = len(order_s)
    rng = np.random.default_rng(seed)
    test = np.zeros(n, bool)
    if split == "random":
        test[rng.permutation(n)[: max(1, round(fraction * n))]] = True
    elif split == "shift":
        ranks = np.argsort(order_s, kind="stable")
        test[ranks[n - max(1, round(fraction * n)) :]] = True
    elif split == "clients":
        if clients is None:
            return None
        unique = np.unique(clients)
        if unique.size < 2:
            return None
        held = rng.permutation(unique)[: max(1, round(fraction * unique.size))]
        test = np.isin(clients, held)
    else:
        raise ValueError(split)
    return ~test, test


def kendall_tau(truth: np.ndarray, pred: np.ndarray) -> float:
    from scipy.stats import kendalltau

    if truth.size < 2 or np.ptp(pred) == 0 or np.ptp(truth) == 0:
        return math.nan
    return float(kendalltau(truth, pred).statistic)


def bucket_accuracy(truth: np.ndarray, pred: np.ndarray) -> float:
    edges = np.asarray(OUTPUT_BUCKETS)
    return float(np.mean(np.searchsorted(edges, truth, "right") == np.searchsorted(edges, pred, "right")))


def error_metrics(target: str, truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    err = np.abs(pred - truth)
    positive = truth > 0
    mape = (
        float(np.mean(err[positive] / truth[positive]))
        if target in MAPE_TARGETS and positive.any()
        else math.nan
    )
    return {
        "rows": int(truth.size),
        "mae": float(err.mean()) if truth.size else math.nan,
        "median_ae": float(np.median(err)) if truth.size else math.nan,
        "mape": mape,
        "bucket_accuracy": bucket_accuracy(truth, pred) if target == "output_tokens" else math.nan,
        "kendall_tau": kendall_tau(truth, pred),
    }


def metrics_rows(
    split: str, target: str, truth: np.ndarray, preds: dict[str, np.ndarray]
) -> list[dict[str, object]]:
    return [
        {"split": split, "target": target, "predictor": name, **error_metrics(target, truth, pred)}
        for name, pred in preds.items()
    ]


def mae_ratio(metrics: pd.DataFrame, target: str = "output_tokens") -> pd.Series:
    """single-model MAE / MoPE MAE per split (> 1: MoPE is better)."""
    rows = metrics[metrics["target"] == target].pivot(index="split", columns="predictor", values="mae")
    return rows["single"] / rows["mope"]
