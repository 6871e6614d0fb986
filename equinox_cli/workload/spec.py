"""What a workload is built from (`WorkloadSpec`): a plain dataclass, importable without pandas so
that the CLI can show its defaults at once; `workload/build.py` builds it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from equinox_cli.workload.limits import DEFAULT_MAX_TOKENS


@dataclass(frozen=True, slots=True)
class WorkloadSpec:
    """How to build a workload. `source` is a path, a suite name or None (the default suite)."""

    source: str | None = None
    format: str | None = None
    tenants: str | None = None
    seed: int = 42
    rate_rps: float = 5.0  # Poisson arrival rate for sources without times (ShareGPT, LMSYS)
    time_scale: float = 1.0  # >1 compresses the trace's time axis (more load)
    duration_s: float | None = None
    limit: int | None = None
    start_s: float = 0.0  # ServeGen: window start; other traces: drop earlier arrivals, shift to 0
    tokenizer: Path | None = None
    max_tokens: int = DEFAULT_MAX_TOKENS  # the client's cap where the trace has none
