"""The simulator's output columns: typed arrays for numbers, lists for text."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from equinox_cli.engines.sim.records import REQUEST_COLUMNS, STEP_COLUMNS, _columns


def test_step_columns_are_typed_and_exact() -> None:
    rows = [
        (0, 0.0, 0.05, 512, 3, 900, 4, 2, 10, 100, 0.8, 0),
        (1, 0.05, 0.04, 0, 4, 904, 4, 1, 11, 100, 0.3, 1),
    ]
    columns = _columns(STEP_COLUMNS, rows)
    assert columns["prefill_tokens"].dtype == np.int64  # type: ignore[attr-defined]
    assert list(columns["context_tokens"]) == [900, 904]
    assert columns["gpu_util"].dtype == np.float64  # type: ignore[attr-defined]
    assert list(columns["step_time_s"]) == [0.05, 0.04]


def test_request_columns_keep_text_and_turn_missing_times_into_nan() -> None:
    nan = float("nan")
    finished = ("r1", "a", 1.0, 0.5, 100, 20, 64, "finished", 0.6, 0.7, 1.5, 1, 16, 1, 0, 0.1, 2, 1, 0.2)
    rejected = ("r2", "b", 2.0, 0.9, 50, 10, 64, "rejected", None, None, 0.9, 0, 0, 2, 3, 0.4, nan, nan, nan)
    frame = pd.DataFrame(_columns(REQUEST_COLUMNS, [finished, rejected]))
    assert list(frame["request_id"]) == ["r1", "r2"] and list(frame["status"]) == ["finished", "rejected"]
    assert frame["prompt_tokens"].dtype == np.int64 and frame["preemptions"].tolist() == [1, 0]
    assert frame["admitted_s"].iloc[0] == 0.6 and np.isnan(frame["admitted_s"].iloc[1])
    assert np.isnan(frame["first_token_s"].iloc[1])


def test_a_row_of_the_wrong_width_is_a_bug_not_silently_misaligned() -> None:
    with pytest.raises(ValueError, match="12 columns"):
        _columns(STEP_COLUMNS, [(0, 0.0)])
    assert _columns(STEP_COLUMNS, []) == {k: [] for k in STEP_COLUMNS}
