"""`equinox compare`, `equinox report` and `equinox sweep`: looking at and comparing results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from equinox_cli import api
from equinox_cli.cli import options as o
from equinox_cli.cli.common import clean, err_console, out_console, warn
from equinox_cli.cli.tables import compare_table

COMPARE_EPILOG = (
    "Example: equinox compare reports/base reports/new --max-regression ttft_p99=10% --min jain_60s=0.95"
)


def compare(
    base: Annotated[Path, typer.Argument(help="Report folder, folder of report folders, or sweep folder.")],
    new: Annotated[Path, typer.Argument(help="The same kinds of folder, to compare against BASE.")],
    max_regression: Annotated[
        list[str] | None,
        typer.Option(
            "--max-regression",
            help="metric=10%: a regression if the metric moves the worse way by more than this "
            "(and, with 2+ seeds a side, beyond their 95% interval). Repeatable.",
        ),
    ] = None,
    minimum: Annotated[
        list[str] | None, typer.Option("--min", help="metric=value: the new mean must be at least this.")
    ] = None,
    maximum: Annotated[
        list[str] | None, typer.Option("--max", help="metric=value: the new mean must be at most this.")
    ] = None,
    thresholds: Annotated[
        Path | None,
        typer.Option("--thresholds", help="TOML with [max_regression], [min], [max] tables (flags win)."),
    ] = None,
    as_json: o.JsonOpt = False,
) -> None:
    """Compare two sets of runs per policy and metric; exit 1 on a regression, 0 otherwise, 2 on bad
    input. Metrics: any summary column (ttft_p99 = ttft_p99_s; jain_60s = jain_windowed_mean)."""
    config = api.CompareConfig(
        base, new, tuple(max_regression or ()), tuple(minimum or ()), tuple(maximum or ()), thresholds
    )
    outcome = api.compare(config)
    warn(outcome.warnings)
    if as_json:
        rows = [{k: clean(v) for k, v in r.items()} for r in outcome.table.to_dict("records")]
        document = {"schema": api.COMPARE_SCHEMA, "regressions": outcome.regressions, "rows": rows}
        out_console.print_json(json.dumps(document, default=str))
    else:
        out_console.print(compare_table(outcome.table, f"{base} → {new}"))
        verdict = f"{outcome.regressions} regression(s)" if outcome.regressions else "no regression"
        out_console.print(verdict)
    if outcome.regressions:
        if as_json:
            err_console.print(f"{outcome.regressions} regression(s)")
        raise typer.Exit(1)
