"""The comparison's arithmetic: which way is worse, thresholds, and the seeds' intervals."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from equinox_cli.core.schema import SUMMARY_COLUMNS
from equinox_cli.metrics.compare import Thresholds, compare_runs, side, worse_interval


def _rows(policy: str, **values: list[float]) -> pd.DataFrame:
    n = len(next(iter(values.values())))
    base = {c: [1.0] * n for c in SUMMARY_COLUMNS if c != "policy"}
    base.update(values)
    return pd.DataFrame({"key": "w", "policy": policy, "seed": range(n), **base})


def _verdict(table: pd.DataFrame, metric: str) -> str:
    return str(table.loc[table["metric"] == metric, "verdict"].item())


def test_worse_direction_depends_on_the_metric() -> None:
    rules = Thresholds(max_regression={"ttft_p99_s": 0.10, "output_tokens_per_s": 0.10})
    base = _rows("vtc", ttft_p99_s=[10.0], output_tokens_per_s=[100.0])
    better = _rows("vtc", ttft_p99_s=[5.0], output_tokens_per_s=[150.0])  # lower TTFT, more tokens
    worse = _rows("vtc", ttft_p99_s=[11.5], output_tokens_per_s=[85.0])
    assert set(compare_runs(base, better, rules)["verdict"]) == {"ok", "info"}
    table = compare_runs(base, worse, rules)
    assert _verdict(table, "ttft_p99_s") == "regression"
    assert _verdict(table, "output_tokens_per_s") == "regression"
    assert table.loc[table["metric"] == "ttft_p99_s", "change"].item() == pytest.approx(0.15)


def test_a_move_within_the_threshold_passes() -> None:
    rules = Thresholds(max_regression={"ttft_p99_s": 0.10})
    table = compare_runs(_rows("vtc", ttft_p99_s=[10.0]), _rows("vtc", ttft_p99_s=[10.9]), rules)
    assert _verdict(table, "ttft_p99_s") == "ok"


def test_seeds_that_scatter_more_than_the_move_are_not_a_regression() -> None:
    rules = Thresholds(max_regression={"ttft_p99_s": 0.05})
    base = _rows("vtc", ttft_p99_s=[8.0, 12.0, 10.0])
    noisy = _rows("vtc", ttft_p99_s=[9.0, 13.5, 11.0])  # +11 % mean, intervals overlap
    steady = _rows("vtc", ttft_p99_s=[11.0, 11.1, 11.2])
    assert _verdict(compare_runs(base, noisy, rules), "ttft_p99_s") == "ok"
    tight_base = _rows("vtc", ttft_p99_s=[10.0, 10.1, 9.9])
    assert _verdict(compare_runs(tight_base, steady, rules), "ttft_p99_s") == "regression"


def test_minimum_and_maximum_bound_the_new_mean() -> None:
    rules = Thresholds(minimum={"jain_windowed_mean": 0.95}, maximum={"service_diff_max": 100.0})
    base = _rows("vtc", jain_windowed_mean=[0.99], service_diff_max=[50.0])
    new = _rows("vtc", jain_windowed_mean=[0.94], service_diff_max=[101.0])
    table = compare_runs(base, new, rules)
    assert _verdict(table, "jain_windowed_mean") == "regression"
    assert _verdict(table, "service_diff_max") == "regression"
    assert "below the minimum" in table.loc[table["metric"] == "jain_windowed_mean", "reason"].item()


def test_a_metric_that_disappears_is_a_regression_and_nan_to_nan_is_not() -> None:
    rules = Thresholds(max_regression={"counter_gap_max": 0.1, "ttft_mean_s": 0.1})
    base = _rows("fcfs", counter_gap_max=[math.nan], ttft_mean_s=[1.0])
    new = _rows("fcfs", counter_gap_max=[math.nan], ttft_mean_s=[math.nan])
    table = compare_runs(base, new, rules)
    assert _verdict(table, "counter_gap_max") == "ok"
    assert _verdict(table, "ttft_mean_s") == "regression"


def test_intervals_use_student_t() -> None:
    s = side(pd.Series([1.0, 2.0, 3.0]))
    assert (s.mean, s.n) == (2.0, 3)
    assert s.ci95 == pytest.approx(4.302653 * 1.0 / math.sqrt(3), rel=1e-5)
    assert math.isnan(side(pd.Series([5.0])).ci95)
    low, high = worse_interval(side(pd.Series([1.0, 2.0, 3.0])), side(pd.Series([1.0, 2.0, 3.0])), "lower")
    assert low < 0 < high


def test_a_metric_an_older_report_lacks_is_compared_as_missing_not_a_crash() -> None:
    rules = Thresholds(max_regression={"engine_ttft_mean_s": 0.1})
    base = _rows("vtc", ttft_mean_s=[1.0]).drop(columns=["engine_ttft_mean_s"])  # before the column
    table = compare_runs(base, _rows("vtc", engine_ttft_mean_s=[0.5]), rules)
    row = table[table["metric"] == "engine_ttft_mean_s"].iloc[0]
    assert row["base_n"] == 0 and row["new_mean"] == 0.5
