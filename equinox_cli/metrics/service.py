"""Per-client service and demand, in total and as windowed time series.

Service is VTC's cost w_p·prompt + w_q·output, divided by the client's weight. For time series a
request's prompt service is credited when its first token appears (its prefill has completed) and
its output tokens accrue linearly from the first token to the finish — exact up to the step time,
since a running request emits one token per engine step. Demand is credited at arrival, for every
request but those the engine refused as impossible (`aborted`: a prompt over the model's context,
or a request larger than the KV cache): no policy could serve them, and counting them made a
client with long prompts look under-served by a fair scheduler (its unmet demand in VTC's service
difference, a larger max-min share in Jain's index). A request the policy rejected (RPM) is demand.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    w_p: float = 1.0
    w_q: float = 2.0
    tick_s: float = 5.0
    window_s: float = 60.0


def _cumulative_service(rows: pd.DataFrame, cfg: ServiceConfig, ticks: np.ndarray) -> np.ndarray:
    """Weighted service received up to each tick by the given (one client's) finished requests."""
    first = rows["first_token_s"].to_numpy(float)
    finish = rows["finish_s"].to_numpy(float)
    weight = rows["weight"].to_numpy(float)
    jump = (cfg.w_p * rows["prompt_tokens"].to_numpy(float) + cfg.w_q) / weight
    rest = cfg.w_q * (rows["output_tokens"].to_numpy(float) - 1) / weight
    span = np.maximum(finish - first, 1e-9)
    # Piecewise linear: a jump at `first`, then slope rest/span until `finish`.
    times = np.concatenate([first, finish])
    jumps = np.concatenate([jump, np.where(finish - first <= 1e-9, rest, 0.0)])
    slopes = np.concatenate(
        [
            np.where(finish - first > 1e-9, rest / span, 0.0),
            -np.where(finish - first > 1e-9, rest / span, 0.0),
        ]
    )
    order = np.argsort(times, kind="stable")
    times, jumps, slopes = times[order], jumps[order], slopes[order]
    slope_after = np.cumsum(slopes)
    ramps = np.concatenate([[0.0], np.cumsum(slope_after[:-1] * np.diff(times))])
    level_after = np.cumsum(jumps) + ramps
    idx = np.searchsorted(times, ticks, side="right") - 1
    base = np.where(idx >= 0, level_after[np.clip(idx, 0, None)], 0.0)
    extra = np.where(
        idx >= 0, slope_after[np.clip(idx, 0, None)] * (ticks - times[np.clip(idx, 0, None)]), 0.0
    )
    return base + extra


def _demanded(rows: pd.DataFrame) -> pd.DataFrame:
    """The requests that count as demand: all but those the engine refused (no policy could meet them)."""
    return rows[rows["status"] != "aborted"]


def _cumulative_demand(rows: pd.DataFrame, cfg: ServiceConfig, ticks: np.ndarray) -> np.ndarray:
    """Weighted demand arrived up to each tick, of `_demanded` rows."""
    order = np.argsort(rows["arrival_s"].to_numpy(float), kind="stable")
    arrival = rows["arrival_s"].to_numpy(float)[order]
    cost = (
        (cfg.w_p * rows["prompt_tokens"].to_numpy(float) + cfg.w_q * rows["output_tokens"].to_numpy(float))
        / rows["weight"].to_numpy(float)
    )[order]
    cum = np.concatenate([[0.0], np.cumsum(cost)])
    return cum[np.searchsorted(arrival, ticks, side="right")]


def timeline(requests: pd.DataFrame, cfg: ServiceConfig, end_s: float) -> pd.DataFrame:
    """One row per (tick, client): windowed service and demand, their rates, cumulative service."""
    ticks = np.arange(cfg.tick_s, end_s + cfg.tick_s / 2, cfg.tick_s)
    if ticks.size == 0:
        ticks = np.array([end_s])
    frames = []
    for client, rows in requests.groupby("client_id", sort=True):
        done = rows[rows["status"] == "finished"]
        service = _cumulative_service(done, cfg, ticks) if len(done) else np.zeros(len(ticks))
        asked = _demanded(rows)
        demand = _cumulative_demand(asked, cfg, ticks)
        before = np.maximum(ticks - cfg.window_s, 0.0)
        s_before = np.interp(before, ticks, service, left=0.0)
        # a window that starts at 0 holds what arrived at 0 (a trace's first request does)
        d_before = np.where(before > 0, _cumulative_demand(asked, cfg, before), 0.0)
        window = np.minimum(ticks, cfg.window_s)
        frames.append(
            pd.DataFrame(
                {
                    "time_s": ticks,
                    "client_id": client,
                    "service": service - s_before,
                    "demand": demand - d_before,
                    "service_rate": (service - s_before) / window,
                    "demand_rate": (demand - d_before) / window,
                    "cumulative_service": service,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def client_totals(requests: pd.DataFrame, cfg: ServiceConfig, end_s: float) -> pd.DataFrame:
    """Per client: demand and service within [0, end_s], counts and weight."""
    rows = []
    ticks = np.array([end_s])
    for client, group in requests.groupby("client_id", sort=True):
        done = group[group["status"] == "finished"]
        service = float(_cumulative_service(done, cfg, ticks)[0]) if len(done) else 0.0
        rows.append(
            {
                "client_id": client,
                "weight": float(group["weight"].iloc[-1]),
                "requests": len(group),
                "finished": int((group["status"] == "finished").sum()),
                "rejected": int((group["status"] == "rejected").sum()),
                "aborted": int((group["status"] == "aborted").sum()),
                "demand": float(_cumulative_demand(_demanded(group), cfg, ticks)[0]),
                "service": service,
                "service_rate": service / end_s if end_s > 0 else 0.0,
            }
        )
    return pd.DataFrame(rows)
