"""An HTML report of a replay report folder or a sweep folder (what `equinox report DIR` writes)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from equinox_cli.core.errors import UserInputError
from equinox_cli.report.figures import (
    Figure,
    cdf_figures,
    counter_figures,
    fairness_figures,
    service_rate_figures,
    sweep_figures,
    throughput_figures,
)
from equinox_cli.report.html import write_html
from equinox_cli.report.read import (
    SWEEP_SCHEMA,
    check_schema,
    is_report,
    is_sweep,
    read_json,
    read_table,
    report_meta,
)

SUMMARY_SHOWN = (
    "policy",
    "output_tokens_per_s",
    "goodput_requests_per_s",
    "ttft_mean_s",
    "ttft_p99_s",
    "tpot_p50_s",
    "e2e_p99_s",
    "jain_windowed_mean",
    "service_diff_max",
    "preemptions",
)


def report_figures(folder: Path) -> tuple[str, list[tuple[str, pd.DataFrame]], list[Figure], list[str]]:
    """(title, tables, figures, notes) of a replay report folder."""
    meta = report_meta(folder)
    summary = read_table(folder / "summary.parquet")
    policies = [str(p) for p in summary["policy"]]
    tables = {
        name: {p: read_table(folder / p / f"{name}.parquet") for p in policies}
        for name in ("requests", "timeline", "counters", "steps")
    }
    figures = [
        *service_rate_figures(tables["timeline"]),
        *fairness_figures(tables["timeline"]),
        *cdf_figures(tables["requests"], "ttft_s", "TTFT"),
        *cdf_figures(tables["requests"], "e2e_s", "E2E latency"),
        *counter_figures(tables["counters"]),
        *throughput_figures(tables["requests"], tables["steps"]),
    ]
    profile = meta.get("profile")
    profile_name = profile.get("name") if isinstance(profile, dict) else profile
    title = f"{meta.get('workload_name')}: {meta.get('requests')} requests, seed {meta.get('seed')}"
    engine_params = meta.get("engine_params") or []
    assert isinstance(engine_params, list)
    settings = " ".join(engine_params) or "(defaults)"
    notes = [f"engine {meta.get('engine')}, profile {profile_name}, -E {settings}"]
    clients = pd.concat([read_table(folder / p / "clients.parquet") for p in policies], ignore_index=True)
    shown = [("summary", summary[[c for c in SUMMARY_SHOWN if c in summary]]), ("per tenant", clients)]
    return title, shown, figures, notes


def sweep_report(folder: Path) -> tuple[str, list[tuple[str, pd.DataFrame]], list[Figure], list[str]]:
    meta = read_json(folder / "sweep.json")
    check_schema(folder / "sweep.json", meta, SWEEP_SCHEMA)
    cells = read_table(folder / "cells.parquet")
    if cells.empty:
        raise UserInputError(f"{folder / 'cells.parquet'}: no finished cells")
    group = ["workload", "rate_rps", "time_scale", "engine_params", "policy", "params"]
    means = cells.groupby(group, sort=False)[
        ["output_tokens_per_s", "ttft_p99_s", "service_diff_max", "jain_windowed_mean"]
    ].agg(["mean", "std", "count"])
    means.columns = [f"{m}_{s}" for m, s in means.columns]
    notes = [f"{meta.get('finished')} of {meta.get('cells')} cells finished"]
    return f"sweep {folder.name}", [("mean over seeds", means.reset_index())], sweep_figures(cells), notes


def build_report(folder: Path, out: Path | None = None) -> Path:
    if not folder.is_dir():
        raise UserInputError(f"{folder}: not a folder (expected a report or sweep folder)")
    if is_sweep(folder):
        title, tables, figures, notes = sweep_report(folder)
    elif is_report(folder):
        title, tables, figures, notes = report_figures(folder)
    else:
        raise UserInputError(f"{folder}: neither run.json nor sweep.json here (not a report or sweep folder)")
    target = out or folder / "report.html"
    if target.suffix.lower() != ".html":
        raise UserInputError(f"{target}: the report must be an .html file")
    return write_html(target, title, tables, figures, notes)
