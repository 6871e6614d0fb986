"""The simulator's output columns, filled as plain lists (one writer turns them to Parquet)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from equinox_cli.core.protocols import Policy
from equinox_cli.core.schema import COUNTER_COLUMNS, ENGINE_REQUEST_COLUMNS, ENGINE_STEP_COLUMNS
from equinox_cli.engines.sim.batch import Seq

REQUEST_COLUMNS = ENGINE_REQUEST_COLUMNS
STEP_COLUMNS = ENGINE_STEP_COLUMNS


@dataclass(slots=True)
class Records:
    requests: dict[str, list[object]] = field(default_factory=lambda: {k: [] for k in REQUEST_COLUMNS})
    steps: dict[str, list[object]] = field(default_factory=lambda: {k: [] for k in STEP_COLUMNS})
    counters: dict[str, list[object]] = field(default_factory=lambda: {k: [] for k in COUNTER_COLUMNS})
    next_sample_s: float = 0.0

    def request(self, seq: Seq, status: str, now_s: float) -> None:
        r = seq.request
        values = (
            r.request_id,
            r.client_id,
            r.weight,
            r.arrival_s,
            r.prompt_tokens,
            seq.item.output_tokens,
            r.max_tokens,
            status,
            seq.admitted_s,
            seq.first_token_s,
            now_s,
            seq.preemptions,
            seq.cached_tokens,
            *seq.at_arrival,
            *seq.at_admit,
        )
        for key, value in zip(REQUEST_COLUMNS, values, strict=True):
            self.requests[key].append(value)

    def step(self, values: tuple[object, ...]) -> None:
        for key, value in zip(STEP_COLUMNS, values, strict=True):
            self.steps[key].append(value)

    def sample_counters(self, policy: Policy, now_s: float, every_s: float) -> None:
        """The policy's counters, at most once per `every_s` of simulated time."""
        if now_s < self.next_sample_s:
            return
        cols = self.counters
        for client, value in policy.counters().items():
            cols["time_s"].append(now_s)
            cols["client_id"].append(client)
            cols["counter"].append(float(value))
            cols["backlogged"].append(policy.is_backlogged(client))
        self.next_sample_s = (math.floor(now_s / every_s) + 1) * every_s
