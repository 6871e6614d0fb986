"""Fairness: VTC's service difference, Jain's index over max-min normalised service, counter gaps."""

from __future__ import annotations

import numpy as np
import pandas as pd


def jain(values: np.ndarray) -> float:
    """(Σx)² / (n·Σx²); 1 is perfectly even. NaN for an empty or all-zero vector."""
    x = np.asarray(values, dtype=float)
    denom = x.size * float((x * x).sum())
    return float(x.sum() ** 2 / denom) if denom > 0 else float("nan")


def maxmin_shares(demand: np.ndarray, capacity: float) -> np.ndarray:
    """Max-min fair (water-filling) split of `capacity` among demands (weights already applied)."""
    demand = np.asarray(demand, dtype=float)
    share = np.zeros_like(demand)
    left = capacity
    active = demand > 0
    while active.any() and left > 1e-12:
        level = left / active.sum()
        small = active & (demand - share <= level)
        if small.any():
            left -= float((demand[small] - share[small]).sum())
            share[small] = demand[small]
            active &= ~small
        else:
            share[active] += level
            left = 0.0
    return share


def normalised_jain(service: np.ndarray, demand: np.ndarray) -> float:
    """Jain's index of service / max-min fair share, over clients with demand."""
    fair = maxmin_shares(demand, float(np.sum(service)))
    mask = fair > 0
    return jain(np.asarray(service, dtype=float)[mask] / fair[mask]) if mask.any() else float("nan")


def gpu_time_jain(gpu_s: np.ndarray, service: np.ndarray, demand: np.ndarray) -> float:
    """Jain's index of GPU time / max-min fair share of the GPU time spent, each client's demand
    in GPU seconds being its token demand at its own GPU seconds per token served (the run's
    average for a client served nothing): resource fairness, where normalised_jain is service
    fairness. NaN when no GPU time is known (a live engine)."""
    gpu, served = np.asarray(gpu_s, dtype=float), np.asarray(service, dtype=float)
    if not np.isfinite(gpu).all() or gpu.sum() <= 0:
        return float("nan")
    average = gpu.sum() / served.sum() if served.sum() > 0 else 0.0
    rate = np.divide(gpu, served, out=np.full_like(gpu, average), where=served > 0)
    return normalised_jain(gpu, np.asarray(demand, dtype=float) * rate)


def service_difference(timeline: pd.DataFrame) -> pd.DataFrame:
    """VTC's diff(t) = Σ_j min(max_k s_k − s_j, |d_j − s_j|) per tick (s, d windowed, weighted)."""
    s = timeline.pivot(index="time_s", columns="client_id", values="service").fillna(0.0)
    d = timeline.pivot(index="time_s", columns="client_id", values="demand").fillna(0.0)
    gap = s.max(axis=1).to_numpy()[:, None] - s.to_numpy()
    unmet = np.abs(d.to_numpy() - s.to_numpy())
    return pd.DataFrame({"time_s": s.index.to_numpy(), "diff": np.minimum(gap, unmet).sum(axis=1)})


def windowed_jain(timeline: pd.DataFrame) -> float:
    """Mean over ticks of Jain's index of windowed service / windowed max-min share. A client
    missing from a tick has no demand there, so it is left out of that tick's index."""
    if timeline.empty:
        return float("nan")
    s = timeline.pivot(index="time_s", columns="client_id", values="service").fillna(0.0).to_numpy()
    d = timeline.pivot(index="time_s", columns="client_id", values="demand").fillna(0.0).to_numpy()
    values = [normalised_jain(service, demand) for service, demand in zip(s, d, strict=True)]
    kept = [v for v in values if not np.isnan(v)]  # arrays, not per-tick frames: 10x faster
    return float(np.mean(kept)) if kept else float("nan")


def counter_gaps(counters: pd.DataFrame) -> pd.Series:
    """Per sample time: max − min counter among backlogged clients (needs two or more)."""
    if counters.empty:
        return pd.Series(dtype=float)
    backlogged = counters[counters["backlogged"]]
    grouped = backlogged.groupby("time_s")["counter"]
    gaps = grouped.max() - grouped.min()
    return gaps[grouped.count() >= 2]


def under_share(demand: np.ndarray, capacity: float) -> np.ndarray:
    """Clients whose whole demand fits their max-min fair share of `capacity` (they should not wait
    for the others); a client that floods is over its share and never in this set."""
    demand = np.asarray(demand, dtype=float)
    return (demand > 0) & (maxmin_shares(demand, capacity) >= demand * (1 - 1e-9))


def latency_fairness(slowdown: np.ndarray, demand: np.ndarray, capacity: float) -> float:
    """Jain's index of 1 / slowdown over the under-share clients, where a client's slowdown is its
    mean TTFT in the shared run over its mean TTFT running alone on the same engine. 1 means every
    client within its fair share waits equally more than it would alone; flooding cannot raise it
    (a flooder leaves the set). NaN with fewer than two under-share clients."""
    speeds = _under_share_speeds(slowdown, demand, capacity)
    return jain(speeds) if speeds.size >= 2 else float("nan")


def latency_isolation(slowdown: np.ndarray, demand: np.ndarray, capacity: float) -> float:
    """Mean of 1 / slowdown over the under-share clients: 1 when each waits as it would alone.
    The companion of latency_fairness, which rates equal misery (FCFS) as fair."""
    speeds = _under_share_speeds(slowdown, demand, capacity)
    return float(speeds.mean()) if speeds.size else float("nan")


def _under_share_speeds(slowdown: np.ndarray, demand: np.ndarray, capacity: float) -> np.ndarray:
    """1 / slowdown of the under-share clients with a finite slowdown."""
    slowdown = np.asarray(slowdown, dtype=float)
    mask = under_share(demand, capacity) & np.isfinite(slowdown)
    return 1.0 / slowdown[mask]
