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


SWEEP_EPILOG = "Example: equinox sweep benchmarks/regression/experiment.toml --out reports/sweep --jobs 2"


def sweep(
    config: Annotated[Path, typer.Argument(help="Experiment file (TOML, or YAML with PyYAML): see README.")],
    out: Annotated[Path, typer.Option("--out", help="Sweep folder (rerun with the same one to resume).")],
    jobs: Annotated[
        int | None, typer.Option("--jobs", help="Parallel processes on this machine (default: one per CPU).")
    ] = None,
    ray: Annotated[
        str | None,
        typer.Option("--ray", help="Run the cells as Ray tasks on the cluster at ADDRESS (e.g. auto)."),
    ] = None,
    as_json: o.JsonOpt = False,
) -> None:
    """Run an experiment's grid (workloads × policies × -P/-E values × rates or time scales × seeds),
    in parallel; finished cells are kept and skipped on a rerun; one cells.parquet of all of them."""
    if jobs is not None:
        api.check_number("--jobs", jobs, 1, 1024, integer=True)

    def progress(done: int, total: int) -> None:
        if not as_json and err_console.is_terminal:
            err_console.print(f"cells {done}/{total}", end="\r")

    outcome = api.sweep(api.SweepConfig(config, out, jobs, ray), progress)
    warn(outcome.warnings)
    figures = {
        "out": str(outcome.out_dir),
        "cells": len(outcome.cells),
        "ran": outcome.ran,
        "skipped": outcome.skipped,
        "workers": outcome.workers,
        "wall_s": round(outcome.wall_s, 3),
        "cells_s_sum": round(outcome.cell_s_sum, 3),
    }
    if as_json:
        out_console.print_json(json.dumps(figures))
        return
    out_console.print(
        f"{outcome.ran} cells run, {outcome.skipped} already done, {outcome.workers} workers, "
        f"{outcome.wall_s:.1f} s wall: {outcome.out_dir / 'cells.parquet'}"
    )


REPORT_EPILOG = "Example: equinox report reports/20261203-overload-seed42 && xdg-open reports/.../report.html"


def report(
    folder: Annotated[Path, typer.Argument(help="A report folder (replay) or a sweep folder.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="The HTML file (default: DIR/report.html; PNGs beside it).")
    ] = None,
) -> None:
    """Draw a run's figures (service rate per tenant over time, counters, TTFT and E2E CDFs per
    tenant, fairness, throughput and utilisation over time) or a sweep's (load curves, the
    fairness-throughput Pareto front) into one HTML file that opens offline, plus PNGs."""
    path = api.report(folder, out)
    out_console.print(f"report: {path} (PNGs in {path.parent / 'figures'})")
