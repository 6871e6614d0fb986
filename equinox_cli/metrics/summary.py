"""One run's headline numbers, computed from its tables (so they can be recomputed from Parquet).

The measurement window for fairness is [0, last arrival]: after the last arrival every backlog
drains and any policy looks fair. Throughput and utilisation use the whole run (to the last finish).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from equinox_cli.core.slo import SloSet
from equinox_cli.metrics.fairness import (
    counter_gaps,
    normalised_jain,
    service_difference,
    windowed_jain,
)
from equinox_cli.metrics.latency import percentiles, with_latencies
from equinox_cli.metrics.service import ServiceConfig, client_totals, timeline


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    service: ServiceConfig = field(default_factory=ServiceConfig)
    slo: SloSet = field(default_factory=SloSet)  # goodput: each request against its tenant's SLO


@dataclass(frozen=True, slots=True)
class RunTables:
    """Derived tables of one run, ready to write."""

    requests: pd.DataFrame
    clients: pd.DataFrame
    steps: pd.DataFrame
    timeline: pd.DataFrame
    counters: pd.DataFrame
    summary: dict[str, float | int | str]


FAILED_STATUSES = ("error", "timeout", "not_sent", "length_mismatch")  # a live run with any is incomplete


def within_slo(finished: pd.DataFrame, cfg: MetricsConfig) -> pd.Series:
    """Per finished request: TTFT and TPOT within its tenant's objectives (no TPOT: one token)."""
    # per tenant once, then indexed by each row's tenant (Series.map over an Arrow string column
    # took 0.09 s of a 36,000-request replay)
    codes, tenants = pd.factorize(finished["client_id"])
    slos = [cfg.slo.for_client(str(c)) for c in tenants]
    ttft_slo = np.array([slo.ttft_s for slo in slos], dtype=float)[codes]
    tpot_slo = np.array([slo.tpot_s for slo in slos], dtype=float)[codes]
    tpot = finished["tpot_s"].to_numpy(float)
    ok = (finished["ttft_s"].to_numpy(float) <= ttft_slo) & ((tpot <= tpot_slo) | np.isnan(tpot))
    return pd.Series(ok, index=finished.index)


def _system(requests: pd.DataFrame, steps: pd.DataFrame, cfg: MetricsConfig) -> dict[str, float]:
    finished = requests[requests["status"] == "finished"]
    makespan = float(requests["finish_s"].max()) if len(requests) else 0.0
    busy = float((steps["gpu_util"] * steps["step_time_s"]).sum()) if len(steps) else 0.0
    good = finished[within_slo(finished, cfg)]
    per_s = 1.0 / makespan if makespan > 0 else float("nan")
    return {
        "makespan_s": makespan,
        "output_tokens_per_s": float(finished["output_tokens"].sum()) * per_s,
        "total_tokens_per_s": float((finished["output_tokens"] + finished["prompt_tokens"]).sum()) * per_s,
        "requests_per_s": len(finished) * per_s,
        "goodput_requests_per_s": len(good) * per_s,
        "gpu_util_mean": busy * per_s if len(steps) else float("nan"),  # unknown to an HTTP client
        "preemptions": int(steps["preempted"].sum()) if len(steps) else 0,
    }


def summarize(
    policy: str,
    raw_requests: pd.DataFrame,
    steps: pd.DataFrame,
    counters: pd.DataFrame,
    cfg: MetricsConfig,
    client_gpu_s: Mapping[str, float] | None = None,
) -> RunTables:
    """`client_gpu_s`: the engine seconds each client took (RunResult.client_gpu_s); none or
    empty (a live engine): its clients' gpu_s and gpu_share are NaN."""
    requests = with_latencies(raw_requests)
    end_s = float(requests["arrival_s"].max()) if len(requests) else 0.0
    end_s = max(end_s, cfg.service.tick_s)
    line = timeline(requests, cfg.service, end_s)
    clients = client_totals(requests, cfg.service, end_s)
    diff = service_difference(line)["diff"]
    gaps = counter_gaps(counters)
    summary: dict[str, float | int | str] = {
        "policy": policy,
        "requests": len(requests),
        "finished": int((requests["status"] == "finished").sum()),
        "rejected": int((requests["status"] == "rejected").sum()),
        "aborted": int((requests["status"] == "aborted").sum()),
        "failed": int(requests["status"].isin(FAILED_STATUSES).sum()),  # live engines
        **_system(requests, steps, cfg),
        **percentiles(requests["ttft_s"], "ttft_s"),
        **percentiles(requests["tpot_s"], "tpot_s"),
        **percentiles(requests["e2e_s"], "e2e_s"),
        **_engine_ttft(requests),
        "jain_index": normalised_jain(clients["service"].to_numpy(), clients["demand"].to_numpy()),
        "jain_windowed_mean": windowed_jain(line),
        "service_diff_max": float(diff.max()),
        "service_diff_mean": float(diff.mean()),
        "service_diff_var": float(diff.var(ddof=0)),
        "counter_gap_max": float(gaps.max()) if len(gaps) else float("nan"),
        "counter_gap_mean": float(gaps.mean()) if len(gaps) else float("nan"),
        "fairness_window_end_s": end_s,
    }
    clients = clients.merge(_client_latency(requests, cfg), on="client_id", how="left")
    clients = _gpu_time(clients, client_gpu_s or {})
    return RunTables(requests, clients, steps, line, counters, summary)


def _gpu_time(clients: pd.DataFrame, client_gpu_s: Mapping[str, float]) -> pd.DataFrame:
    """Each client's engine seconds and its share of the run's (a client never scheduled: 0)."""
    if not client_gpu_s or clients.empty:
        return clients.assign(gpu_s=float("nan"), gpu_share=float("nan"))
    gpu = np.array([client_gpu_s.get(str(c), 0.0) for c in clients["client_id"]], dtype=float)
    total = gpu.sum()
    return clients.assign(gpu_s=gpu, gpu_share=gpu / total if total > 0 else float("nan"))


def _engine_ttft(requests: pd.DataFrame) -> dict[str, float]:
    """Mean and p99 of the engine's own TTFT over finished requests (a managed vLLM server logs
    it; NaN elsewhere): what the policy decided, without the client's or the API server's delays."""
    if "engine_ttft_s" not in requests:
        return {"engine_ttft_mean_s": float("nan"), "engine_ttft_p99_s": float("nan")}
    stats = percentiles(requests.loc[requests["status"] == "finished", "engine_ttft_s"], "engine_ttft_s")
    return {k: stats[k] for k in ("engine_ttft_mean_s", "engine_ttft_p99_s")}


def _client_latency(requests: pd.DataFrame, cfg: MetricsConfig) -> pd.DataFrame:
    finished = requests[requests["status"] == "finished"]
    in_slo = finished[within_slo(finished, cfg)].groupby("client_id").size()
    rows = []
    for client, group in requests.groupby("client_id", sort=True):
        ttft = group["ttft_s"].dropna().to_numpy(float)
        rows.append(
            {
                "client_id": client,
                "ttft_mean_s": float(ttft.mean()) if ttft.size else float("nan"),
                "ttft_p99_s": float(np.percentile(ttft, 99)) if ttft.size else float("nan"),
                "e2e_mean_s": float(group["e2e_s"].mean()),
                "output_tokens_served": int(group.loc[group["status"] == "finished", "output_tokens"].sum()),
                "requests_in_slo": int(in_slo.get(client, 0)),
            }
        )
    return pd.DataFrame(rows)


IDENTITY_METRICS = ("output_tokens_per_s", "ttft_mean_s", "e2e_mean_s", "service_diff_max")


def policies_identical(summary: pd.DataFrame) -> bool:
    """Every policy's headline numbers equal (to 1e-9): no request ever waited for another, so the
    ordering never mattered and the comparison shows nothing."""
    values = summary[list(IDENTITY_METRICS)].to_numpy(float)
    return bool(np.allclose(values, values[0], rtol=1e-9, atol=1e-12, equal_nan=True))
