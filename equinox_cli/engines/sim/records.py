"""The simulator's output columns: rows kept as tuples during the run, typed arrays at the end."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from equinox_cli.core.protocols import Policy
from equinox_cli.core.schema import COUNTER_COLUMNS, ENGINE_REQUEST_COLUMNS, ENGINE_STEP_COLUMNS
from equinox_cli.core.types import Column
from equinox_cli.engines.sim.batch import Seq

REQUEST_COLUMNS = ENGINE_REQUEST_COLUMNS
STEP_COLUMNS = ENGINE_STEP_COLUMNS
_TEXT = frozenset({"request_id", "client_id", "status"})  # kept as lists of str
# the integer columns; every other numeric one is float64, None becoming NaN (as pandas would)
_INTEGER = frozenset(
    {
        *("step", "prefill_tokens", "decode_seqs", "context_tokens", "running", "waiting"),
        *("kv_used_blocks", "kv_total_blocks", "preempted"),
        *("prompt_tokens", "output_tokens", "max_tokens", "preemptions", "cached_tokens"),
    }
)


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
    def requests(self) -> dict[str, Column]:
        return _columns(REQUEST_COLUMNS, self.request_rows)

    @property
    def steps(self) -> dict[str, Column]:
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


def _columns(names: tuple[str, ...], rows: list[tuple[object, ...]]) -> dict[str, Column]:
    """Typed columns (a typed array converts to a DataFrame ~3x faster than a list whose dtype
    pandas must infer: 0.2 s of a 36,000-request replay)."""
    if not rows:
        return {k: [] for k in names}
    if len(rows[0]) != len(names):
        raise ValueError(f"rows of {len(rows[0])} values for {len(names)} columns")  # a bug, never input
    if not _TEXT.intersection(names):  # all numeric: one conversion of the whole table
        table = np.array(rows, dtype=np.float64)
        return {k: _typed(k, table[:, i]) for i, k in enumerate(names)}
    columns = list(zip(*rows, strict=True))
    return {
        k: list(c) if k in _TEXT else _typed(k, np.array(c, dtype=np.float64))
        for k, c in zip(names, columns, strict=True)
    }


def _typed(name: str, values: np.ndarray) -> np.ndarray:
    return values.astype(np.int64) if name in _INTEGER else np.ascontiguousarray(values)
