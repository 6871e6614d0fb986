"""Gradient-boosted trees: trained with scikit-learn, stored and evaluated as plain numpy arrays.

Training uses HistGradientBoostingRegressor (deterministic: no early stopping, fixed seed). The fitted
trees are exported to padded arrays (T trees × N nodes) so that an artifact is numpy data, never a
pickle, and prediction needs no scikit-learn: each tree level is a handful of vectorised gathers over
all trees and rows at once, which is what makes batch prediction cost a few microseconds per row.
Node rule (scikit-learn's): NaN goes where `missing_left` says; else x <= threshold goes left.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ARRAY_NAMES = ("feature", "threshold", "missing_left", "left", "right", "value")


@dataclass(frozen=True)
class TreeEnsemble:
    feature: np.ndarray  # (T, N) int32; leaves point at feature 0 and at themselves
    threshold: np.ndarray  # (T, N) float64
    missing_left: np.ndarray  # (T, N) bool
    left: np.ndarray  # (T, N) int32, node index within the tree
    right: np.ndarray  # (T, N) int32
    value: np.ndarray  # (T, N) float64, leaf values (0 elsewhere)
    baseline: float
    depth: int

    @property
    def n_trees(self) -> int:
        return int(self.feature.shape[0])

    def __post_init__(self) -> None:
        # Flat global-node-id views, built once: child[2g + 1] is g's left child, child[2g] its right.
        t, nodes = self.feature.shape
        offsets = (np.arange(t, dtype=np.int64) * nodes)[:, None]
        child = np.empty((t, nodes, 2), np.int64)
        child[:, :, 1] = self.left + offsets
        child[:, :, 0] = self.right + offsets
        object.__setattr__(self, "_roots", offsets)
        object.__setattr__(self, "_child", child.ravel())
        object.__setattr__(self, "_feature", self.feature.astype(np.int64).ravel())
        object.__setattr__(self, "_threshold", self.threshold.ravel())
        object.__setattr__(self, "_missing", self.missing_left.ravel())
        object.__setattr__(self, "_value", self.value.ravel())

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Raw predictions for rows x (n, features) — the sum of leaf values plus the baseline."""
        n = x.shape[0]
        t = self.feature.shape[0]
        if t == 0 or n == 0:
            return np.full(n, self.baseline)
        x_flat = np.ascontiguousarray(x, dtype=np.float64).ravel()
        row_base = (np.arange(n, dtype=np.int64) * x.shape[1])[None, :]
        feature, threshold, child = self._feature, self._threshold, self._child  # type: ignore[attr-defined]
        any_nan = bool(np.isnan(x_flat).any())
        node = np.repeat(self._roots, n, axis=1)  # type: ignore[attr-defined]
        for _ in range(self.depth):
            values = x_flat[row_base + feature[node]]
            go_left = values <= threshold[node]
            if any_nan:
                go_left |= np.isnan(values) & self._missing[node]  # type: ignore[attr-defined]
            node = child[2 * node + go_left]
        return self.baseline + np.add.reduce(self._value[node], axis=0)  # type: ignore[attr-defined]

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in ARRAY_NAMES}


def fuse(first: TreeEnsemble, second: TreeEnsemble) -> TreeEnsemble:
    """One ensemble whose prediction is first + second (one pass over both sets of trees)."""
    width = max(first.feature.shape[1], second.feature.shape[1])

    def pad(e: TreeEnsemble, name: str) -> np.ndarray:
        array = getattr(e, name)
        extra = width - array.shape[1]
        if name in ("left", "right"):  # padding nodes loop on themselves
            filler = np.tile(np.arange(array.shape[1], width, dtype=array.dtype), (array.shape[0], 1))
        else:
            filler = np.zeros((array.shape[0], extra), array.dtype)
        return np.concatenate([array, filler], axis=1)

    arrays = {name: np.concatenate([pad(first, name), pad(second, name)]) for name in ARRAY_NAMES}
    return from_arrays(arrays, first.baseline + second.baseline, max(first.depth, second.depth))


def from_arrays(arrays: dict[str, np.ndarray], baseline: float, depth: int) -> TreeEnsemble:
    return TreeEnsemble(
        feature=arrays["feature"].astype(np.int32),
        threshold=arrays["threshold"].astype(np.float64),
        missing_left=arrays["missing_left"].astype(bool),
        left=arrays["left"].astype(np.int32),
        right=arrays["right"].astype(np.int32),
        value=arrays["value"].astype(np.float64),
        baseline=float(baseline),
        depth=int(depth),
    )


@dataclass(frozen=True, slots=True)
class TreeParams:
    loss: str = "squared_error"
    max_iter: int = 80
    learning_rate: float = 0.1
    max_leaf_nodes: int = 31
    max_depth: int = 8
    min_samples_leaf: int = 20
    l2_regularization: float = 1.0


def fit_trees(x: np.ndarray, y: np.ndarray, params: TreeParams, seed: int) -> TreeEnsemble:
    """Fit gradient-boosted trees and export them (scikit-learn is imported only here)."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    model = HistGradientBoostingRegressor(
        loss=params.loss,
        max_iter=params.max_iter,
        learning_rate=params.learning_rate,
        max_leaf_nodes=params.max_leaf_nodes,
        max_depth=params.max_depth,
        min_samples_leaf=params.min_samples_leaf,
        l2_regularization=params.l2_regularization,
        early_stopping=False,
        random_state=seed,
    )
    x = np.array(x, dtype=np.float64)
    x[:, ~np.isfinite(x).any(axis=0)] = 0.0  # an all-NaN column (no text at all) cannot be binned
    model.fit(x, y)
    return _export(model)


def _export(model: object) -> TreeEnsemble:
    trees = [predictors[0].nodes for predictors in model._predictors]  # type: ignore[attr-defined]
    baseline = float(np.asarray(model._baseline_prediction).ravel()[0])  # type: ignore[attr-defined]
    width = max((len(nodes) for nodes in trees), default=1)
    shape = (len(trees), width)
    feature = np.zeros(shape, np.int32)
    threshold = np.zeros(shape, np.float64)
    missing = np.zeros(shape, bool)
    left = np.tile(np.arange(width, dtype=np.int32), (len(trees), 1))  # padding/leaves: self-loops
    right = left.copy()
    value = np.zeros(shape, np.float64)
    depth = 0
    for i, nodes in enumerate(trees):
        k = len(nodes)
        leaf = nodes["is_leaf"].astype(bool)
        feature[i, :k] = np.where(leaf, 0, nodes["feature_idx"])
        threshold[i, :k] = np.where(leaf, np.inf, nodes["num_threshold"])
        missing[i, :k] = np.where(leaf, True, nodes["missing_go_to_left"].astype(bool))
        left[i, :k] = np.where(leaf, np.arange(k), nodes["left"])
        right[i, :k] = np.where(leaf, np.arange(k), nodes["right"])
        value[i, :k] = np.where(leaf, nodes["value"], 0.0)
        depth = max(depth, int(nodes["depth"].max()))
    return TreeEnsemble(feature, threshold, missing, left, right, value, baseline, depth)
