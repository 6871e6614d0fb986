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
    """Rows are kept as tuples and turned into columns once, at the end (a dict append per column
    per step cost more than the rest of the step's bookkeeping)."""

    request_rows: list[tuple[object, ...]] = field(default_factory=list)
    step_rows: list[tuple[object, ...]] = field(default_factory=list)
    counters: dict[str, list[object]] = field(default_factory=lambda: {k: [] for k in COUNTER_COLUMNS})
    next_sample_s: float = 0.0

    def request(self, seq: Seq, status: str, now_s: float) -> None:
        r = seq.request
        self.request_rows.append(
            (
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
        )

    @property
    def requests(self) -> dict[str, list[object]]:
        return _columns(REQUEST_COLUMNS, self.request_rows)

    @property
    def steps(self) -> dict[str, list[object]]:
        return _columns(STEP_COLUMNS, self.step_rows)

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


def _columns(names: tuple[str, ...], rows: list[tuple[object, ...]]) -> dict[str, list[object]]:
    if not rows:
        return {k: [] for k in names}
    columns = list(zip(*rows, strict=True))
    if len(columns) != len(names):
        raise ValueError(f"rows of {len(columns)} values for {len(names)} columns")  # a bug, never input
    return {k: list(c) for k, c in zip(names, columns, strict=True)}
