"""Rich tables of results; they format numbers computed elsewhere."""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING

from rich.table import Table

if TYPE_CHECKING:  # the tables take frames; the CLI's help must not wait for pandas
    import pandas as pd

COMPARISON_ROWS = (
    ("throughput (output tok/s)", "output_tokens_per_s", "{:.0f}"),
    ("requests/s", "requests_per_s", "{:.2f}"),
    ("goodput (req/s in SLO)", "goodput_requests_per_s", "{:.2f}"),
    ("utilisation", "gpu_util_mean", "{:.1%}"),  # labelled per engine: see comparison_table
    ("TTFT mean (s)", "ttft_mean_s", "{:.2f}"),
    ("TTFT p50 (s)", "ttft_p50_s", "{:.2f}"),
    ("TTFT p99 (s)", "ttft_p99_s", "{:.2f}"),
    ("TTFT in the engine, mean (s)", "engine_ttft_mean_s", "{:.2f}"),  # --engine vllm only
    ("TTFT in the engine, p99 (s)", "engine_ttft_p99_s", "{:.2f}"),
    ("TPOT p50 (ms)", "tpot_p50_s", "ms"),
    ("E2E p99 (s)", "e2e_p99_s", "{:.1f}"),
    ("Jain (run, max-min norm.)", "jain_index", "{:.4f}"),
    ("Jain (60 s windows, mean)", "jain_windowed_mean", "{:.4f}"),
    ("service diff max", "service_diff_max", "{:.0f}"),
    ("service diff mean", "service_diff_mean", "{:.0f}"),
    ("counter gap max", "counter_gap_max", "{:.0f}"),
    ("preemptions", "preemptions", "{:.0f}"),
    ("finished / rejected", None, ""),
)


# rows shown only when some policy has a value (the engine's own TTFT: a managed vLLM server)
OPTIONAL_ROWS = ("engine_ttft_mean_s", "engine_ttft_p99_s")


def _fmt(value: object, style: str) -> str:
    if not isinstance(value, numbers.Real) or math.isnan(float(value)):
        return "–"
    if style == "ms":
        return f"{float(value) * 1000:.1f}"
    return style.format(float(value))


def comparison_table(summary: pd.DataFrame, title: str, utilisation: str = "GPU util (modelled)") -> Table:
    """`utilisation`: what gpu_util_mean is on this engine (modelled, NVML, a CPU busy fraction)."""
    table = Table(title=title, title_justify="left")
    table.add_column("metric", overflow="fold")
    for policy in summary["policy"]:
        table.add_column(str(policy), justify="right", overflow="fold")
    rows = summary.set_index("policy")
    for label, key, style in COMPARISON_ROWS:
        if key in OPTIONAL_ROWS and (key not in rows or rows[key].isna().all()):
            continue
        label = utilisation if key == "gpu_util_mean" else label
        if key is None:
            cells = [f"{int(rows.loc[p, 'finished'])} / {int(rows.loc[p, 'rejected'])}" for p in rows.index]
        else:
            cells = [_fmt(rows.loc[p, key], style) for p in rows.index]
        table.add_row(label, *cells)
    return table


def clients_table(clients_by_policy: dict[str, pd.DataFrame]) -> Table:
    """Per client: demand, and per policy its service rate, mean TTFT and, where the engine split
    its steps between clients (the simulator), its share of the GPU time."""
    gpu = all("gpu_share" in f and f["gpu_share"].notna().any() for f in clients_by_policy.values())
    title = "Per-client service rate (weighted tokens/s), mean TTFT (s)" + (" and GPU share" if gpu else "")
    table = Table(title=title, title_justify="left")
    table.add_column("client", overflow="fold")
    table.add_column("demand/s", justify="right", overflow="fold")
    for policy in clients_by_policy:
        table.add_column(f"{policy} svc/s", justify="right", overflow="fold")
        table.add_column(f"{policy} TTFT", justify="right", overflow="fold")
        if gpu:
            table.add_column(f"{policy} GPU", justify="right", overflow="fold")
    first = next(iter(clients_by_policy.values()))
    window = first["service"].sum() / first["service_rate"].sum() if first["service_rate"].sum() else 1.0
    for i, row in first.iterrows():
        cells = [str(row["client_id"]), f"{row['demand'] / window:.0f}"]
        for frame in clients_by_policy.values():
            cells += [
                f"{frame.loc[i, 'service_rate']:.0f}",
                _fmt(frame.loc[i, "ttft_mean_s"], "{:.2f}"),
            ]
            if gpu:
                cells.append(_fmt(100 * frame.loc[i, "gpu_share"], "{:.1f}%"))
        table.add_row(*cells)
    return table


def stats_table(stats: dict[str, object], per_client: pd.DataFrame, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in per_client.columns:
        table.add_column(str(column), justify="left" if column == "client_id" else "right", overflow="fold")
    for _, row in per_client.iterrows():
        table.add_row(*[_cell(v) for v in row.tolist()])
    table.caption = "  ".join(f"{k}={_cell(v)}" for k, v in stats.items())
    return table


def _cell(value: object) -> str:
    """Floats to about three significant digits, so that a narrow terminal folds no number."""
    if not isinstance(value, float) or not math.isfinite(value):
        return str(value)
    size = abs(value)
    return f"{value:.0f}" if size >= 100 else f"{value:.1f}" if size >= 10 else f"{value:.2f}"


def mope_output_table(metrics: pd.DataFrame) -> Table:
    """Output-token accuracy per split and predictor."""
    rows = metrics[metrics["target"] == "output_tokens"]
    table = Table(title="output tokens: held-out accuracy")
    for column in ("split", "predictor", "rows", "MAE", "median AE", "MAPE", "bucket acc", "Kendall τ"):
        table.add_column(
            column, justify="left" if column in ("split", "predictor") else "right", overflow="fold"
        )
    for row in rows.itertuples(index=False):
        table.add_row(
            str(row.split),
            str(row.predictor),
            str(row.rows),
            _fmt(row.mae, "{:.1f}"),
            _fmt(row.median_ae, "{:.1f}"),
            _fmt(row.mape, "{:.2f}"),
            _fmt(row.bucket_accuracy, "{:.3f}"),
            _fmt(row.kendall_tau, "{:.3f}"),
        )
    return table


def mope_other_table(metrics: pd.DataFrame) -> Table:
    """MAE of the latency and step targets: MoPE vs single model vs constant, per split."""
    rows = metrics[metrics["target"] != "output_tokens"]
    pivot = rows.pivot_table(index=["target", "split"], columns="predictor", values="mae", sort=False)
    table = Table(title="other targets: held-out MAE")
    for column in ("target", "split", "mope", "single", "constant"):
        table.add_column(
            column, justify="left" if column in ("target", "split") else "right", overflow="fold"
        )
    for (target, split), row in pivot.iterrows():
        table.add_row(
            str(target),
            str(split),
            *(_fmt(row.get(c, math.nan), "{:.4g}") for c in ("mope", "single", "constant")),
        )
    return table


def compare_table(rows: pd.DataFrame, title: str) -> Table:
    """`equinox compare`: one row per (run, policy, metric); means ± 95 % intervals across seeds.
    With one run configuration it goes in the title, not in a column on every row."""
    keys = rows["key"].unique()
    single = len(keys) == 1
    table = Table(title=f"{title}: {keys[0]}" if single else title, title_justify="left")
    columns = ("policy", "metric", "base", "new", "change", "rule", "verdict")
    for column in columns if single else ("run", *columns):
        table.add_column(
            column, justify="right" if column in ("base", "new", "change") else "left", overflow="fold"
        )
    verdict_style = {"regression": "[bold red]regression[/]", "ok": "[green]ok[/]", "info": ""}
    for row in rows.itertuples(index=False):
        cells = [
            str(row.policy),
            str(row.metric),
            _interval(row.base_mean, row.base_ci95, row.base_n),
            _interval(row.new_mean, row.new_ci95, row.new_n),
            _fmt(row.change, "{:+.1%}"),
            str(row.rule),
            verdict_style[str(row.verdict)],
        ]
        table.add_row(*(cells if single else [str(row.key), *cells]))
    return table


def _interval(mean: float, ci95: float, n: int) -> str:
    text = _fmt(mean, "{:.4g}")
    if n >= 2 and not math.isnan(ci95):
        text += f" ± {ci95:.2g} (n={n})"
    return text
