"""cli/tables.py: which rows the comparison table shows."""

from __future__ import annotations

import math

import pandas as pd
from rich.console import Console

from equinox_cli.cli.tables import comparison_table
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
