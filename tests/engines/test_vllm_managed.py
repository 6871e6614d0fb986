"""The managed server's engine-side TTFT columns, on hand-made plug-in rows."""

from __future__ import annotations

import math

from equinox_cli.engines.vllm.managed import with_engine_ttft


def test_engine_ttft_counts_from_the_engines_arrival_in_seconds_and_in_steps_begun() -> None:
    # the client stamped r0 two seconds late (send lag): ttft_s would include it, these must not
    requests: dict[str, list[object]] = {"request_id": ["r0", "r1", "r2"], "ttft_s": [2.5, 0.3, math.nan]}
    engine_rows = [
        {"request_id": "r0", "arrival_s": 1.0, "first_token_s": 1.5},
        {"request_id": "r1", "arrival_s": 1.05, "first_token_s": 1.25},
        {"request_id": "r2", "arrival_s": 1.3, "first_token_s": None},  # never produced a token
    ]
    # steps began at 0.9 (before both arrived), 1.1, 1.2, 1.4, 1.6; r0's first token ended the 1.4 one
    steps = [{"start_s": t} for t in (1.6, 0.9, 1.1, 1.2, 1.4)] + [{"step_time_s": 0.1}]
    out = with_engine_ttft(requests, engine_rows, steps)
    assert out["engine_ttft_s"][:2] == [0.5, 0.19999999999999996]
    assert out["engine_ttft_steps"][:2] == [3.0, 2.0]  # r0: 1.1, 1.2, 1.4; r1: 1.1, 1.2
    assert math.isnan(out["engine_ttft_s"][2]) and math.isnan(out["engine_ttft_steps"][2])
    assert out["ttft_s"] == requests["ttft_s"]  # the client's own column is kept as it was


def test_a_request_the_engine_did_not_log_has_no_engine_ttft() -> None:
    out = with_engine_ttft({"request_id": ["lost"]}, [], [])
    assert math.isnan(out["engine_ttft_s"][0]) and math.isnan(out["engine_ttft_steps"][0])
