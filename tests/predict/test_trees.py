"""Exported tree ensembles: same numbers as scikit-learn, NaN routing, fusing, determinism."""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor

from equinox_cli.predict.trees import TreeParams, _export, fit_trees, fuse


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.random((3000, 5))
    y = 3 * x[:, 0] + np.sin(6 * x[:, 1]) + 0.1 * rng.random(3000)
    x[::5, 1] = np.nan  # missing values must follow the trained direction
    return x, y


def test_numpy_evaluator_matches_sklearn_including_nan_rows() -> None:
    x, y = _data()
    model = HistGradientBoostingRegressor(max_iter=40, early_stopping=False, random_state=0).fit(x, y)
    ensemble = _export(model)
    np.testing.assert_allclose(ensemble.predict(x), model.predict(x), rtol=0, atol=1e-12)
    assert np.isnan(x[:, 1]).any()


def test_fuse_predicts_the_sum_of_both_ensembles() -> None:
    x, y = _data()
    first = fit_trees(x, y, TreeParams(max_iter=20), seed=1)
    second = fit_trees(x, y - first.predict(x), TreeParams(max_iter=7, max_leaf_nodes=7), seed=2)
    fused = fuse(first, second)
    np.testing.assert_allclose(fused.predict(x), first.predict(x) + second.predict(x), atol=1e-12)
    assert fused.n_trees == 27


def test_training_is_deterministic_under_a_seed() -> None:
    x, y = _data()
    a = fit_trees(x, y, TreeParams(max_iter=15), seed=3)
    b = fit_trees(x, y, TreeParams(max_iter=15), seed=3)
    for name, array in a.arrays().items():
        assert np.array_equal(array, b.arrays()[name]), name
    assert np.array_equal(a.predict(x), b.predict(x))


def test_all_nan_column_does_not_break_training() -> None:
    x, y = _data()
    x[:, 4] = np.nan  # a trace without any prompt text
    ensemble = fit_trees(x, y, TreeParams(max_iter=5), seed=0)
    assert np.isfinite(ensemble.predict(x)).all()
