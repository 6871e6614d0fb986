"""What the HTML report plots, as data: each figure is a list of named series (x, y), computed from
a report's tables. Rendering (report/html.py) only draws them, so tests can check the series."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from equinox_cli.metrics.compare import pareto_front
from equinox_cli.metrics.fairness import normalised_jain, service_difference

CDF_POINTS = 400  # a CDF is drawn through this many quantiles, whatever the number of requests
TIME_BINS_S = 10.0


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    x: np.ndarray
    y: np.ndarray
    style: str = "line"  # line | step | scatter | front


@dataclass(frozen=True, slots=True)
class Figure:
    slug: str  # file name stem and HTML anchor
    title: str
    x_label: str
    y_label: str
    series: list[Series] = field(default_factory=list)
    log_x: bool = False


def service_rate_figures(timelines: Mapping[str, pd.DataFrame]) -> list[Figure]:
    """VTC's figures: each tenant's windowed service rate over time, one figure per policy."""
    figures = []
    for policy, line in timelines.items():
        series = [
            Series(str(client), rows["time_s"].to_numpy(float), rows["service_rate"].to_numpy(float))
            for client, rows in line.groupby("client_id", sort=True)
        ]
        figures.append(
            Figure(
                f"service-{policy}",
                f"{policy}: service rate per tenant",
                "time (s)",
                "weighted tokens/s",
                series,
            )
        )
    return figures


def counter_figures(counters: Mapping[str, pd.DataFrame]) -> list[Figure]:
    """The policy's own per-tenant counters over time (counter policies only)."""
    figures = []
    for policy, frame in counters.items():
        if frame.empty:
            continue
        series = [
            Series(str(client), rows["time_s"].to_numpy(float), rows["counter"].to_numpy(float), "step")
            for client, rows in frame.groupby("client_id", sort=True)
        ]
        figures.append(
            Figure(f"counters-{policy}", f"{policy}: counters per tenant", "time (s)", "counter", series)
        )
    return figures


def cdf_figures(requests: Mapping[str, pd.DataFrame], column: str, label: str) -> list[Figure]:
    """CDF of a latency per tenant, one figure per policy."""
    figures = []
    for policy, frame in requests.items():
        series = []
        for client, rows in frame.groupby("client_id", sort=True):
            values = rows[column].dropna().to_numpy(float)
            if values.size:
                q = np.linspace(0, 1, min(CDF_POINTS, values.size))
                series.append(Series(str(client), np.quantile(values, q), q, "step"))
        stem = column.removesuffix("_s")
        figures.append(
            Figure(
                f"{stem}-cdf-{policy}",
                f"{policy}: {label} CDF per tenant",
                f"{label} (s)",
                "fraction of requests",
                series,
            )
        )
    return figures


def fairness_figures(timelines: Mapping[str, pd.DataFrame]) -> list[Figure]:
    """Service difference and Jain's index per window, every policy on one figure each."""
    diff, jain = [], []
    for policy, line in timelines.items():
        d = service_difference(line)
        diff.append(Series(policy, d["time_s"].to_numpy(float), d["diff"].to_numpy(float)))
        per_tick = line.groupby("time_s", sort=True).apply(
            lambda t: normalised_jain(t["service"].to_numpy(), t["demand"].to_numpy()), include_groups=False
        )
        jain.append(Series(policy, per_tick.index.to_numpy(float), per_tick.to_numpy(float)))
    return [
        Figure(
            "service-difference",
            "service difference between tenants per window",
            "time (s)",
            "weighted tokens",
            diff,
        ),
        Figure("jain", "Jain's index per window (1 = fair)", "time (s)", "Jain's index", jain),
    ]


def throughput_figures(
    requests: Mapping[str, pd.DataFrame], steps: Mapping[str, pd.DataFrame]
) -> list[Figure]:
    """Output tokens finished per second, and the engine's busy fraction, in TIME_BINS_S bins."""
    tput, util = [], []
    for policy, frame in requests.items():
        done = frame[frame["status"] == "finished"]
        if done.empty:
            continue
        edges = np.arange(0.0, float(done["finish_s"].max()) + TIME_BINS_S, TIME_BINS_S)
        tokens, _ = np.histogram(
            done["finish_s"].to_numpy(float), edges, weights=done["output_tokens"].to_numpy(float)
        )
        tput.append(Series(policy, edges[1:], tokens / TIME_BINS_S, "step"))
        step = steps.get(policy)
        if step is not None and not step.empty:
            busy, _ = np.histogram(
                step["start_s"].to_numpy(float),
                edges,
                weights=(step["gpu_util"] * step["step_time_s"]).to_numpy(float),
            )
            util.append(Series(policy, edges[1:], busy / TIME_BINS_S, "step"))
    figures = [Figure("throughput", "throughput over time", "time (s)", "output tokens/s", tput)]
    if util:
        figures.append(
            Figure(
                "utilisation",
                "engine busy fraction over time (modelled on the simulator)",
                "time (s)",
                "busy fraction",
                util,
            )
        )
    return figures


def sweep_figures(cells: pd.DataFrame) -> list[Figure]:
    """Load curves (mean over seeds vs rate or time scale, per policy and -P) and the trade-off
    between throughput and fairness with its Pareto front."""
    load = "time_scale" if cells["time_scale"].nunique() > 1 else "rate_rps"
    label = "time scale (×)" if load == "time_scale" else "arrival rate (req/s)"
    arm = cells["policy"] + np.where(cells["params"] != "", " " + cells["params"], "")
    figures: list[Figure] = []
    for metric, title in (
        ("output_tokens_per_s", "throughput (output tokens/s)"),
        ("ttft_p99_s", "TTFT p99 (s)"),
        ("service_diff_max", "service difference max"),
    ):
        for (workload, engine), group in cells.assign(arm=arm).groupby(
            ["workload", "engine_params"], sort=False
        ):
            means = group.groupby(["arm", load], sort=True)[metric].mean().reset_index()
            series = [
                Series(str(name), rows[load].to_numpy(float), rows[metric].to_numpy(float))
                for name, rows in means.groupby("arm", sort=False)
            ]
            where = f"{workload} {engine}".strip()
            slug = f"load-{len(figures) + 1}"
            figures.append(Figure(slug, f"{where}: {title} vs load", label, title, series))
    setting = ["workload", load, "engine_params"]
    for values, group in cells.assign(arm=arm).groupby(setting, sort=False):
        means = group.groupby("arm", sort=False)[["output_tokens_per_s", "service_diff_max"]].mean()
        where = " ".join(f"{v}" for v in values if v != "")
        figures.append(pareto_figure(means.reset_index(), f"pareto-{len(figures) + 1}", where))
    return figures


def pareto_figure(cells: pd.DataFrame, slug: str, where: str) -> Figure:
    """Each arm's throughput vs service difference (means over seeds) at one setting; the front =
    the arms no other beats on both."""
    x = cells["output_tokens_per_s"].to_numpy(float)
    y = cells["service_diff_max"].to_numpy(float)
    series = [
        Series(
            str(arm),
            rows["output_tokens_per_s"].to_numpy(float),
            rows["service_diff_max"].to_numpy(float),
            "scatter",
        )
        for arm, rows in cells.groupby("arm", sort=False)
    ]
    front = pareto_front(x, y)
    order = np.argsort(x[front])
    series.append(Series("Pareto front", x[front][order], y[front][order], "front"))
    return Figure(
        slug,
        f"{where}: fairness–throughput trade-off (mean over seeds)",
        "output tokens/s (higher is better)",
        "service difference max (lower is better)",
        series,
    )
