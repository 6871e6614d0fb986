"""HttpEngine: the Engine seam over a live OpenAI-compatible server (the server's policy schedules).

Request rows follow the simulator's schema where the client can know the value (engine-side state
such as preemptions or KV use at admission is unknown: NaN), plus the client's own columns:
`reason` (why a request did not finish), `sent_s` and `send_lag_s` (actual − intended send time),
`target_output_tokens` and `length_ok` (the forced output length was achieved), and the inter-token
latency median and maximum. There are no step rows: steps happen inside the server.
"""

from __future__ import annotations

import math

import numpy as np

from equinox_cli.core.protocols import RunObserver
from equinox_cli.core.schema import ENGINE_REQUEST_COLUMNS as REQUEST_COLUMNS
from equinox_cli.core.schema import ENGINE_STEP_COLUMNS as STEP_COLUMNS
from equinox_cli.core.schema import HTTP_REQUEST_COLUMNS as HTTP_COLUMNS
from equinox_cli.core.types import PolicySpec, RunResult, Workload
from equinox_cli.engines.http.client import HttpConfig, Outcome, replay_http


def _row(o: Outcome) -> dict[str, object]:
    r = o.item.request
    gaps = np.diff(o.token_times_s) if len(o.token_times_s) > 1 else np.array([])
    nan = math.nan
    # engine_ttft_* stay NaN here: only a managed server (managed.py) has the engine's log
    row: dict[str, object] = dict.fromkeys((*REQUEST_COLUMNS, *HTTP_COLUMNS), nan)
    row.update(
        request_id=r.request_id,
        client_id=r.client_id,
        weight=r.weight,
        arrival_s=o.intended_s,
        prompt_tokens=r.prompt_tokens,
        output_tokens=o.output_tokens,
        max_tokens=o.item.output_tokens,
        status=o.status,
        admitted_s=o.sent_s if o.sent_s is not None else nan,
        first_token_s=o.first_token_s if o.first_token_s is not None else nan,
        finish_s=o.finish_s if o.finish_s is not None else nan,
        preemptions=nan,
        reason=o.reason,
        attempt_s=o.attempt_s if o.attempt_s is not None else nan,
        sent_s=o.sent_s if o.sent_s is not None else nan,
        send_lag_s=(o.sent_s - o.intended_s) if o.sent_s is not None else nan,
        connect_attempts=o.connect_attempts,
        target_output_tokens=o.item.output_tokens,
        length_ok=o.length_ok,
        itl_p50_s=float(np.median(gaps)) if gaps.size else nan,
        itl_max_s=float(gaps.max()) if gaps.size else nan,
    )
    return row


class HttpEngine:
    def __init__(self, config: HttpConfig) -> None:
        self.config = config

    def run(self, workload: Workload, spec: PolicySpec, observer: RunObserver | None = None) -> RunResult:
        """The server's own scheduler runs `spec` (api checks that the server says so)."""
        if observer:
            observer.on_start(spec.name, len(workload))
        on_done = (lambda n: observer.on_advance(n, 0.0)) if observer else None
        outcomes = replay_http(workload, self.config, on_done)
        if observer:
            observer.on_end(spec.name)
        return http_result(spec.name, outcomes, self.config)


def http_result(policy: str, outcomes: list[Outcome], config: HttpConfig) -> RunResult:
    rows = [_row(o) for o in outcomes]
    columns = (*REQUEST_COLUMNS, *HTTP_COLUMNS)
    return RunResult(
        policy=policy,
        requests={c: [row[c] for row in rows] for c in columns},
        steps={c: [] for c in STEP_COLUMNS},
        counters={"time_s": [], "client_id": [], "counter": [], "backlogged": []},
        config={"base_url": config.base_url, "model": config.model},
    )


def rate_report(
    requests_sent_s: list[float], intended_s: list[float], attempt_s: list[float] | None = None
) -> dict[str, float]:
    """Target vs achieved request rate (req/s) over the requests delivered (written to a
    connection), and how many were delivered and attempted."""
    sent = np.array([s for s in requests_sent_s if not math.isnan(s)])
    attempted = sum(not math.isnan(a) for a in attempt_s) if attempt_s is not None else sent.size
    intended = np.asarray(intended_s, dtype=float)
    span = float(intended.max() - intended.min()) if intended.size > 1 else 0.0
    target = (intended.size - 1) / span if span > 0 else math.nan
    sent_span = float(sent.max() - sent.min()) if sent.size > 1 else 0.0
    achieved = (sent.size - 1) / sent_span if sent_span > 0 else math.nan
    return {
        "target_rps": target,
        "achieved_rps": achieved,
        "sent": float(sent.size),
        "attempted": float(attempted),
    }
