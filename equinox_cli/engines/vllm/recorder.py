"""What the plug-in logs when asked (EQUINOX_LOG_DIR): one JSON line per engine step and per request.

The rows use the `equinox collect` column names (predict/dataset.py) so that `collect --engine vllm`
can turn them into training data. Lines are written as they happen (line-buffered), so a server that
is killed keeps every row up to its last step. Times are seconds on the engine process's monotonic
clock, relative to when the log was opened (the engine's start).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from equinox_cli.core.types import EngineState

STEPS_FILE = "engine_steps.jsonl"
REQUESTS_FILE = "engine_requests.jsonl"
ENGINE_CONFIG_FILE = "engine_config.json"  # block size, batch caps, KV pool: written at start


@dataclass(slots=True)
class RequestTrack:
    request_id: str  # the client's id (vllm_xargs equinox_request) where it sent one
    client_id: str
    arrival_s: float
    prompt_tokens: int
    max_tokens: int
    at_arrival: EngineState
    admitted_s: float = math.nan
    at_admit: EngineState | None = None
    first_token_s: float = math.nan


class EngineLog:
    """Appends step and request rows to two JSON-lines files in `folder` (created if missing)."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self._steps: IO[str] = open(folder / STEPS_FILE, "a", buffering=1, encoding="utf-8")  # noqa: SIM115
        self._requests: IO[str] = open(folder / REQUESTS_FILE, "a", buffering=1, encoding="utf-8")  # noqa: SIM115
        self._origin_s = time.monotonic()
        self.step_index = 0

    def rel(self, t_s: float) -> float:
        return t_s - self._origin_s

    def step(self, row: dict[str, object]) -> None:
        row = {"step": self.step_index, **row}
        self.step_index += 1
        self._steps.write(json.dumps(row) + "\n")

    def request(
        self, track: RequestTrack, status: str, output_tokens: int, finish_s: float, preemptions: int
    ) -> None:
        admit = track.at_admit
        row = {
            "request_id": track.request_id,
            "client_id": track.client_id,
            "arrival_s": self.rel(track.arrival_s),
            "prompt_tokens": track.prompt_tokens,
            "output_tokens": output_tokens,
            "max_tokens": track.max_tokens,
            "status": status,
            "admitted_s": self.rel(track.admitted_s) if admit else None,
            "first_token_s": None if math.isnan(track.first_token_s) else self.rel(track.first_token_s),
            "finish_s": self.rel(finish_s),
            "preemptions": preemptions,
            "running_at_arrival": track.at_arrival.running,
            "waiting_at_arrival": track.at_arrival.waiting,
            "kv_used_frac_at_arrival": track.at_arrival.kv_used_frac,
            "running_at_admit": admit.running if admit else None,
            "waiting_at_admit": admit.waiting if admit else None,
            "kv_used_frac_at_admit": admit.kv_used_frac if admit else None,
        }
        self._requests.write(json.dumps(row) + "\n")

    def config(self, engine_config: dict[str, object]) -> None:
        """The engine's own configuration (ENGINE_CONFIG_FILE), what a calibrated profile needs."""
        (self.folder / ENGINE_CONFIG_FILE).write_text(json.dumps(engine_config, sort_keys=True) + "\n")

    def close(self) -> None:
        self._steps.close()
        self._requests.close()
