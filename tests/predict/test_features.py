"""Features: text keywords, and history that never sees a request's own or future output."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from equinox_cli.predict.features import (
    HISTORY_FEATURES,
    TEXT_FEATURES,
    ClientHistory,
    request_feature_frame,
    text_features,
)


def test_text_features_count_keyword_groups() -> None:
    values = dict(
        zip(TEXT_FEATURES, text_features("Write a python function to solve x^2 = 4. Yes or no?"), strict=True)
    )
    assert values["has_text"] == 1.0
    assert values["kw_code"] == 2  # python, function
    assert values["kw_long"] == 1  # write
    assert values["kw_short"] == 1  # yes or no
    assert values["kw_math"] == 3  # solve, ^, =
    assert values["text_questions"] == 1


def test_no_text_gives_nan_features_but_has_text_zero() -> None:
    values = text_features(None)
    assert values[0] == 0.0 and all(math.isnan(v) for v in values[1:])


def test_history_uses_only_requests_finished_before_arrival() -> None:
    requests = pd.DataFrame(
        {
            "client_id": ["a", "a", "a", "b"],
            "arrival_s": [0.0, 1.0, 5.0, 6.0],
            "finish_s": [4.0, 9.0, 10.0, 7.0],
            "status": ["finished"] * 4,
            "prompt_tokens": [10, 10, 10, 10],
            "output_tokens": [100, 7, 50, 1000],
        }
    )
    frame = request_feature_frame(requests)
    count = frame["hist_count_log"].to_numpy()
    # r0: nothing finished; r1 arrives at 1 s, before r0 finishes at 4 s; r2 sees r0 only
    assert count.tolist() == [0.0, 0.0, math.log1p(1), 0.0]
    assert frame["hist_mean5_log"].iloc[2] == math.log1p(100)  # not r1's 7 (finishes at 9 s)
    assert math.isclose(frame["global_mean_log"].iloc[3], math.log1p(100))  # b sees a's finished r0
    assert frame["moving_average"].tolist() == [128.0, 128.0, 100.0, 100.0]


def test_client_history_ema_and_window() -> None:
    history = ClientHistory()
    for tokens in (10, 20, 30, 40, 50, 60):
        history.observe("a", tokens)
    values = dict(zip(HISTORY_FEATURES, history.features("a"), strict=True))
    assert values["hist_mean5_log"] == math.log1p(40)  # last 5: 20..60
    assert values["hist_last_log"] == math.log1p(60)
    assert history.moving_average("a") == 40
    assert history.moving_average("new") == np.mean([10, 20, 30, 40, 50, 60])
