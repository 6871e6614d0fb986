"""Metric functions on hand-computed examples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from equinox_cli.metrics.fairness import (
    counter_gaps,
    jain,
    latency_fairness,
    latency_isolation,
    maxmin_shares,
    normalised_jain,
    service_difference,
    under_share,
    windowed_jain,
)
from equinox_cli.metrics.latency import with_latencies
from equinox_cli.metrics.service import ServiceConfig, client_totals, timeline


def _requests() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "request_id": ["a", "b"],
            "client_id": ["x", "y"],
            "weight": [1.0, 2.0],
            "arrival_s": [0.0, 1.0],
            "prompt_tokens": [10, 20],
            "output_tokens": [11, 1],
            "max_tokens": [11, 1],
            "status": ["finished", "finished"],
            "admitted_s": [0.5, 1.0],
            "first_token_s": [1.0, 2.0],
            "finish_s": [6.0, 2.0],
            "preemptions": [0, 0],
        }
    )


def test_latencies() -> None:
    out = with_latencies(_requests())
    assert out["ttft_s"].tolist() == [1.0, 1.0]
    assert out["e2e_s"].tolist() == [6.0, 1.0]
    assert out["queue_s"].tolist() == [0.5, 0.0]
    assert out["tpot_s"].iloc[0] == pytest.approx(0.5) and np.isnan(out["tpot_s"].iloc[1])


def test_jain_and_maxmin() -> None:
    assert jain(np.array([1.0, 1.0, 1.0])) == pytest.approx(1.0)
    assert jain(np.array([1.0, 0.0])) == pytest.approx(0.5)
    assert maxmin_shares(np.array([1.0, 10.0, 10.0]), 9.0).tolist() == pytest.approx([1, 4, 4])
    # A light client fully served next to two heavy ones sharing the rest is perfectly fair.
    assert normalised_jain(np.array([1.0, 4.0, 4.0]), np.array([1.0, 10.0, 10.0])) == pytest.approx(1.0)
    assert normalised_jain(np.array([0.5, 2.0, 6.5]), np.array([1.0, 10.0, 10.0])) < 0.8


def test_service_timeline_is_linear_in_decode() -> None:
    cfg = ServiceConfig(w_p=1, w_q=2, tick_s=1.0, window_s=100.0)
    line = timeline(_requests(), cfg, end_s=6.0)
    x = line[line["client_id"] == "x"].set_index("time_s")["cumulative_service"]
    # prompt 10 + first token 2 at t=1; then 10 more tokens (×2) linearly until t=6.
    assert x.loc[1.0] == pytest.approx(12.0) and x.loc[3.5 - 0.5] == pytest.approx(12 + 8)
    assert x.loc[6.0] == pytest.approx(32.0)
    totals = client_totals(_requests(), cfg, 6.0).set_index("client_id")
    assert totals.loc["y", "service"] == pytest.approx((20 + 2) / 2.0)  # weight 2
    assert totals.loc["y", "demand"] == pytest.approx(11.0)


def test_demand_leaves_out_what_the_engine_refused_but_not_what_the_policy_rejected() -> None:
    cfg = ServiceConfig(w_p=1, w_q=2, tick_s=1.0, window_s=100.0)
    # over the model's context (the engine refused it); refused by an RPM limit (the policy)
    extra = _requests().assign(
        request_id=["c", "d"],
        client_id=["x", "x"],
        weight=1.0,
        arrival_s=[2.0, 3.0],
        prompt_tokens=[5000, 7],
        output_tokens=[100, 3],
        max_tokens=[100, 3],
        status=["aborted", "rejected"],
        admitted_s=np.nan,
        first_token_s=np.nan,
        finish_s=[2.0, 3.0],
    )
    requests = pd.concat([_requests(), extra], ignore_index=True)
    totals = client_totals(requests, cfg, 6.0).set_index("client_id")
    # x: the finished request (10 + 2·11 = 32) and the rejected one (7 + 2·3 = 13), not the 5,200
    assert totals.loc["x", "demand"] == pytest.approx(32 + 13) and totals.loc["x", "aborted"] == 1
    line = timeline(requests, cfg, end_s=6.0)
    x = line[line["client_id"] == "x"].set_index("time_s")["demand"]
    assert x.loc[2.0] == pytest.approx(32.0) and x.loc[3.0] == pytest.approx(45.0)


def test_service_difference_formula() -> None:
    line = pd.DataFrame(
        {
            "time_s": [1.0, 1.0, 1.0],
            "client_id": ["a", "b", "c"],
            "service": [10.0, 4.0, 1.0],
            "demand": [20.0, 20.0, 2.0],
        }
    )
    # a: min(0, 10)=0; b: min(6, 16)=6; c: min(9, 1)=1
    assert service_difference(line)["diff"].tolist() == [7.0]


def test_windowed_jain_averages_ticks_and_leaves_out_clients_absent_from_one() -> None:
    rows = [
        (1.0, "a", 1.0, 1.0),  # even: 1
        (1.0, "b", 1.0, 1.0),
        (2.0, "a", 2.0, 2.0),  # b asked for its share and got nothing: 4 / (2 * 4) = 0.5
        (2.0, "b", 0.0, 2.0),
        (3.0, "a", 3.0, 3.0),  # b absent: one client, 1
    ]
    timeline = pd.DataFrame(rows, columns=["time_s", "client_id", "service", "demand"])
    assert windowed_jain(timeline) == pytest.approx((1.0 + 0.5 + 1.0) / 3)
    assert np.isnan(windowed_jain(timeline.iloc[:0]))


def test_counter_gaps_only_among_backlogged() -> None:
    counters = pd.DataFrame(
        {
            "time_s": [1, 1, 1, 2, 2],
            "client_id": ["a", "b", "c", "a", "b"],
            "counter": [5.0, 9.0, 100.0, 1.0, 2.0],
            "backlogged": [True, True, False, True, False],
        }
    )
    assert counter_gaps(counters).to_dict() == {1: 4.0}


def test_latency_fairness_over_under_share_clients() -> None:
    # capacity 100 over demands 10, 20, 200: shares 10, 20, 70 -> the first two are under share
    demand = np.array([10.0, 20.0, 200.0])
    assert under_share(demand, 100.0).tolist() == [True, True, False]
    # slowdowns 2 and 4 -> speeds 0.5, 0.25: Jain = 0.75^2 / (2 * 0.3125) = 0.9
    assert latency_fairness(np.array([2.0, 4.0, 50.0]), demand, 100.0) == pytest.approx(0.9)
    # the flooder's own slowdown never counts, however bad or good
    assert latency_fairness(np.array([2.0, 4.0, 1.0]), demand, 100.0) == pytest.approx(0.9)
    assert latency_fairness(np.array([3.0, 3.0, 9.0]), demand, 100.0) == pytest.approx(1.0)
    assert np.isnan(latency_fairness(np.array([2.0, 4.0]), np.array([10.0, 500.0]), 100.0))
    # isolation: how close to alone the under-share clients are (equal misery is not isolation)
    assert latency_isolation(np.array([2.0, 4.0, 50.0]), demand, 100.0) == pytest.approx(0.375)
    assert latency_isolation(np.array([3.0, 3.0, 9.0]), demand, 100.0) == pytest.approx(1 / 3)
    assert latency_isolation(np.array([1.0, 1.0, 9.0]), demand, 100.0) == pytest.approx(1.0)


def test_summary_has_the_engines_own_ttft_only_where_an_engine_logged_it() -> None:
    from equinox_cli.metrics.summary import MetricsConfig, summarize

    counters = pd.DataFrame(columns=["time_s", "client_id", "counter", "backlogged"])
    simulated = summarize("vtc", _requests(), pd.DataFrame(), counters, MetricsConfig()).summary
    assert np.isnan(simulated["engine_ttft_mean_s"]) and np.isnan(simulated["engine_ttft_p99_s"])
    live = _requests().assign(engine_ttft_s=[0.2, 0.4])
    timed_out = {"request_id": "c", "status": "timeout", "engine_ttft_s": 9.0}
    live.loc[len(live)] = {**live.iloc[0].to_dict(), **timed_out}
    summary = summarize("vtc", live, pd.DataFrame(), counters, MetricsConfig()).summary
    assert summary["engine_ttft_mean_s"] == pytest.approx(0.3)  # the timed-out request is left out
    assert summary["engine_ttft_p99_s"] == pytest.approx(0.398)
    assert summary["ttft_mean_s"] == pytest.approx(1.0)  # the client's own is unchanged


def test_clients_carry_their_gpu_time_and_share_only_where_the_engine_split_it() -> None:
    from equinox_cli.metrics.summary import MetricsConfig, summarize

    counters = pd.DataFrame(columns=["time_s", "client_id", "counter", "backlogged"])
    requests = _requests()
    clients = sorted(requests["client_id"].unique())
    split = summarize("vtc", requests, pd.DataFrame(), counters, MetricsConfig(), {clients[0]: 3.0})
    table = split.clients.set_index("client_id")
    assert table.loc[clients[0], "gpu_s"] == 3.0 and table.loc[clients[0], "gpu_share"] == 1.0
    assert all(table.loc[c, "gpu_s"] == 0.0 for c in clients[1:])  # never scheduled: none
    live = summarize("vtc", requests, pd.DataFrame(), counters, MetricsConfig()).clients
    assert live["gpu_s"].isna().all() and live["gpu_share"].isna().all()


def test_gpu_time_jain_judges_gpu_seconds_against_demand_in_gpu_seconds() -> None:
    from equinox_cli.metrics.fairness import gpu_time_jain

    # equal token demand and service, but b's tokens cost 3x the GPU time: b's demand is 3x in GPU
    # seconds, and with 4 s of GPU a max-min split gives a 1 s (all of its need) and b 3 s
    demand, service = np.array([100.0, 100.0]), np.array([100.0, 100.0])
    assert gpu_time_jain(np.array([1.0, 3.0]), service, demand) == pytest.approx(1.0)
    # the same GPU time split evenly would starve b of GPU time it needed
    uneven = gpu_time_jain(np.array([2.0, 2.0]), np.array([200.0, 66.7]), demand)
    assert uneven < 0.95
    assert np.isnan(gpu_time_jain(np.array([np.nan, np.nan]), service, demand))
