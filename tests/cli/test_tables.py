"""cli/tables.py: which rows the comparison table shows."""

from __future__ import annotations

import math

import pandas as pd
from rich.console import Console

from equinox_cli.cli.tables import clients_table, comparison_table, stats_table
from equinox_cli.core.schema import SUMMARY_COLUMNS


def _summary(engine_ttft_s: float) -> pd.DataFrame:
    row = {c: 1.0 for c in SUMMARY_COLUMNS} | {"finished": 3, "rejected": 0}
    engine = {"engine_ttft_mean_s": engine_ttft_s, "engine_ttft_p99_s": engine_ttft_s}
    rows = [row | engine | {"policy": p} for p in ("equinox", "vtc")]
    return pd.DataFrame(rows)


def _text(summary: pd.DataFrame) -> str:
    console = Console(width=200, record=True)
    console.print(comparison_table(summary, "t"))
    return console.export_text()


def test_the_engines_own_ttft_is_shown_only_when_a_managed_server_logged_it() -> None:
    assert "TTFT in the engine, mean (s)" in _text(_summary(0.25))
    simulated = _text(_summary(math.nan))
    assert "TTFT in the engine" not in simulated and "TTFT mean (s)" in simulated


def test_trace_stats_numbers_stay_whole_in_a_narrow_terminal() -> None:
    per_client = pd.DataFrame(
        {
            "client_id": ["c0"],
            "requests": [999],
            "prompt_p50": [11679.0],
            "prompt_p99": [62372.92],
            "cv": [0.5312],
        }
    )
    stats = {"duration_s": 1022.02, "rate_rps": 3.91, "output_mean": 14.917, "nan": math.nan}
    console = Console(width=60, record=True)
    console.print(stats_table(stats, per_client, "t"))
    text = console.export_text()
    assert "11679" in text and "62373" in text and "0.53" in text  # three significant digits, unfolded
    assert "duration_s=1022 " in text and "rate_rps=3.91" in text and "output_mean=14.9" in text
    assert "nan=nan" in text


def test_the_clients_table_shows_gpu_shares_only_where_the_engine_split_its_steps() -> None:
    def frame(share: float) -> pd.DataFrame:
        return pd.DataFrame(
            {"client_id": ["a", "b"], "demand": [10.0, 20.0], "service": [10.0, 20.0]}
            | {"service_rate": [1.0, 2.0], "ttft_mean_s": [0.5, 0.7], "gpu_share": [share, 1 - share]}
        )

    def text(share: float) -> str:
        console = Console(width=200, record=True)
        console.print(clients_table({"equinox": frame(share), "vtc": frame(share)}))
        return console.export_text()

    simulated = text(0.25)
    assert "vtc GPU" in simulated and "25.0%" in simulated and "75.0%" in simulated
    assert "GPU" not in text(math.nan)  # a live engine: no column of dashes
