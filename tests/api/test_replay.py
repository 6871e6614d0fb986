"""api/replay.py: what a replay tells the user about its own measurement."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from equinox_cli.api.engines import server_context
from equinox_cli.api.replay import (
    client_time_warnings,
    context_warnings,
    live_context_warnings,
    refused_warnings,
)
from tests.conftest import make_workload
from tests.engines.fake_openai import Behaviour, fake_server


def _run(lags: list[float], outside_s: float = 0.02) -> Any:
    ttft = [0.5] * len(lags)
    engine = [t - outside_s for t in ttft]
    return SimpleNamespace(
        requests=pd.DataFrame({"send_lag_s": lags, "ttft_s": ttft, "engine_ttft_s": engine})
    )


def test_a_client_that_sent_late_is_warned_about_and_an_on_time_or_simulated_one_is_not() -> None:
    on_time = [0.001] * 200
    late = on_time[:190] + [1.12] * 10  # one burst sent a second late: 5 % of the requests
    runs = {"vtc": _run(late), "equinox": _run(on_time), "sim": SimpleNamespace(requests=pd.DataFrame())}
    (warning,) = client_time_warnings(runs)
    assert warning.startswith("vtc: the client sent requests late (send lag p99 1.12 s, max 1.12 s")
    assert "engine_ttft_s" in warning


def test_time_between_client_and_engine_is_warned_about_when_only_the_engine_saw_no_wait() -> None:
    on_time = [0.001] * 100
    (warning,) = client_time_warnings({"vtc": _run(on_time, outside_s=3.6), "equinox": _run(on_time)})
    assert warning.startswith(
        "vtc: TTFT outside the engine (client-seen minus engine-seen) reached p99 3.60 s"
    )
    # a plain http:// server has no engine log: engine_ttft_s is NaN, nothing to compare
    blind = _run(on_time)
    blind.requests["engine_ttft_s"] = float("nan")
    assert client_time_warnings({"http": blind}) == []


def test_requests_the_models_context_refuses_or_cuts_are_counted_once() -> None:
    rows = [("a", 0.0, 4096, 10), ("a", 0.1, 4095, 10), ("b", 0.2, 3000, 1500), ("b", 0.3, 100, 50)]
    workload = make_workload(rows)  # max_tokens = the output
    refused, cut = context_warnings(workload, 4096)
    assert refused.startswith("1 of 4 requests refused: a prompt of max_model_len = 4096 tokens or more")
    assert cut.startswith("2 requests had max_tokens cut")  # 4095 + 10 and 3000 + 1500 > 4096
    assert context_warnings(workload, 8192) == []


def test_a_live_servers_refusals_for_the_context_are_warned_about_per_policy() -> None:
    refused = SimpleNamespace(requests=pd.DataFrame({"status": ["finished", "aborted", "finished"]}))
    clean = SimpleNamespace(requests=pd.DataFrame({"status": ["finished", "error"]}))
    (warning,) = refused_warnings({"vtc": refused, "equinox": clean})
    assert warning.startswith("vtc: the server refused 1 of 3 requests for the model's context")


def _card(model: str, context: object) -> dict[str, object]:
    return {"id": model, "object": "model", "max_model_len": context}


@pytest.mark.parametrize(
    ("models", "expected"),
    [
        ({"data": [_card("other", 2048), _card("equinox", 1024)]}, 1024),  # the card named
        ({"data": [_card("served-as", 4096)]}, 4096),  # the only card
        ({"data": [_card("a", 1), _card("b", 2)]}, None),  # several, none named: unknown
        ({"data": [_card("equinox", "1024")]}, None),  # not a count
        ({"data": [_card("equinox", True)]}, None),
        ({"object": "list"}, None),
        (None, None),  # 404: another server
    ],
)
def test_the_served_context_is_read_from_vllms_model_card(models: object, expected: int | None) -> None:
    with fake_server(Behaviour(models_info=models)) as url:
        assert server_context(url, "equinox") == expected


def test_before_a_live_replay_it_says_what_the_servers_context_will_refuse() -> None:
    rows = [("a", 0.0, 1024, 10), ("a", 0.1, 1000, 30), ("b", 0.2, 900, 124), ("b", 0.3, 100, 50)]
    (warning,) = live_context_warnings(make_workload(rows), 1024)
    assert warning == (
        "the server's context is 1024 tokens (its /v1/models): it will refuse 1 of 4 requests for "
        "their prompt and 1 more for prompt + forced output"
    )
    assert live_context_warnings(make_workload(rows[3:]), 1024) == []
