"""`--engine vllm`: start a vLLM server with the policy, replay over HTTP, stop it; once per policy.

The policy lives in the server's engine process, so every policy of a replay gets a fresh server
(a fair comparison: same model, same KV cache, empty queues). The plug-in logs each step and
request (EQUINOX_LOG_DIR); those rows become the run's step table and fill the engine-side request
columns (preemptions, queue and KV state at arrival and admission) that a client cannot see.
Never imports vllm: the server is a child process.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from equinox_cli.core.errors import UserInputError
from equinox_cli.core.protocols import RunObserver
from equinox_cli.core.schema import ENGINE_REQUEST_COLUMNS as REQUEST_COLUMNS
from equinox_cli.core.schema import ENGINE_STEP_COLUMNS as STEP_COLUMNS
from equinox_cli.core.types import Column, PolicySpec, RunResult, Workload
from equinox_cli.engines.http.client import HttpConfig, Outcome
from equinox_cli.engines.http.engine import HttpEngine, http_result
from equinox_cli.engines.vllm.launcher import ServeConfig, free_port, start_server
from equinox_cli.engines.vllm.recorder import ENGINE_CONFIG_FILE, REQUESTS_FILE, STEPS_FILE

# what only the engine sees of a request: preemptions and its state at arrival and admission
ENGINE_REQUEST_COLUMNS = tuple(
    c for c in REQUEST_COLUMNS if c == "preemptions" or c.endswith(("_at_arrival", "_at_admit"))
)


@dataclass(frozen=True, slots=True)
class ManagedServer:
    """How to start the server for each policy."""

    model: Path
    logs_dir: Path  # server output and the plug-in's rows, one subfolder per policy
    python: str = sys.executable
    kv_cache_gib: int = 1
    server_args: tuple[str, ...] = ("--enforce-eager",)
    startup_timeout_s: float = 600.0
    kv_gate: bool = False  # -E kv_gate=true: the engine's KV gate in every server


class ManagedVllmEngine:
    def __init__(self, server: ManagedServer, http: HttpConfig) -> None:
        self.server = server
        self.http = http  # base_url is replaced by each server's own

    def run(self, workload: Workload, spec: PolicySpec, observer: RunObserver | None = None) -> RunResult:
        """A fresh server with `spec` as its scheduler, the replay against it, then its engine rows."""
        logs = self.server.logs_dir / spec.name
        config = ServeConfig(
            model=self.server.model,
            policy=spec.name,
            params=spec.params,
            predictor=spec.predictor,
            kv_gate=self.server.kv_gate,
            port=free_port(),
            python=self.server.python,
            kv_cache_gib=self.server.kv_cache_gib,
            extra_args=self.server.server_args,
            log_path=logs / "server.log",
            engine_log_dir=logs,
        )
        logs.mkdir(parents=True, exist_ok=True)
        try:
            server = start_server(config, self.server.startup_timeout_s)
        except UserInputError as exc:  # a fault of this run: recorded, and the other policies still run
            reason = f"server did not start: {exc}"
            unsent = [Outcome(it, "not_sent", reason, it.request.arrival_s) for it in workload.items]
            return http_result(spec.name, unsent, self.http)
        try:
            result = HttpEngine(replace(self.http, base_url=server.base_url)).run(workload, spec, observer)
        finally:
            server.stop()
        steps = read_rows(logs / STEPS_FILE)
        engine_rows = read_rows(logs / REQUESTS_FILE)
        requests = with_engine_ttft(merge_engine_rows(result.requests, engine_rows), engine_rows, steps)
        return replace(
            result,
            requests=requests,
            steps={c: [row.get(c, math.nan) for row in steps] for c in STEP_COLUMNS},
            config={**result.config, "server_logs": str(logs), **_engine_config(logs)},
        )


def with_engine_ttft(
    requests: dict[str, list[object]], engine_rows: list[dict[str, Any]], steps: list[dict[str, Any]]
) -> dict[str, list[object]]:
    """`engine_ttft_s` and `engine_ttft_steps`: each request's first-token latency as the engine saw
    it (its arrival at the engine to its first token, on the plug-in's clock), in seconds and in the
    engine steps that began in between. Unlike `ttft_s` they do not include the client's send lag,
    which on a machine the engine keeps busy can reach seconds; the step count also factors out how
    fast the machine ran, which differs between the servers of one replay."""
    starts = np.sort(np.array([float(row["start_s"]) for row in steps if "start_s" in row], dtype=float))
    by_id = {str(row["request_id"]): row for row in engine_rows}
    seconds: list[object] = []
    counts: list[object] = []
    for rid in requests["request_id"]:
        row = by_id.get(str(rid), {})
        arrival, first = row.get("arrival_s"), row.get("first_token_s")
        if arrival is None or first is None:
            seconds.append(math.nan)
            counts.append(math.nan)
            continue
        seconds.append(float(first) - float(arrival))
        began = np.searchsorted(starts, first, side="right") - np.searchsorted(starts, arrival, side="left")
        counts.append(float(began))
    return {**requests, "engine_ttft_s": seconds, "engine_ttft_steps": counts}


def _engine_config(logs: Path) -> dict[str, object]:
    """{"engine_config": ...} as the plug-in recorded it at start ({} if it did not)."""
    try:
        return {"engine_config": json.loads((logs / ENGINE_CONFIG_FILE).read_text(encoding="utf-8"))}
    except (OSError, ValueError):
        return {}


def read_rows(path: Path) -> list[dict[str, Any]]:
    """JSON lines written by the plug-in; a torn last line (server killed mid-write) is dropped."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows


def merge_engine_rows(
    requests: Mapping[str, Column], engine_rows: list[dict[str, Any]]
) -> dict[str, list[object]]:
    """The client's request rows filled with what only the engine saw, matched by request id."""
    by_id = {str(row["request_id"]): row for row in engine_rows}
    merged = {column: list(values) for column, values in requests.items()}
    for column in ENGINE_REQUEST_COLUMNS:
        values = merged[column]
        for i, rid in enumerate(merged["request_id"]):
            row = by_id.get(str(rid))
            if row is not None and row.get(column) is not None:
                values[i] = row[column]
    return merged
