"""Frozen value types that cross layer boundaries. Units are in the field names."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, NamedTuple, TypeAlias

if TYPE_CHECKING:
    import numpy as np

# one output column: a list, or a typed array (the simulator's: it converts to a frame much faster)
Column: TypeAlias = "Sequence[object] | np.ndarray"


@dataclass(frozen=True, slots=True)
class Request:
    """What a scheduler may see of a request: never its true output length."""

    request_id: str
    client_id: str
    arrival_s: float
    prompt_tokens: int
    max_tokens: int
    weight: float = 1.0
    prompt: str | None = None
    # the prompt's leading blocks by content (Mooncake's hash_ids): equal ids, equal tokens. A real
    # scheduler could hash the prompt; the simulator's prefix cache uses them (none: no sharing)
    prefix_hashes: tuple[int, ...] = ()
    prefix_block_tokens: int = 0  # tokens per prefix_hashes block (Mooncake: 512)


@dataclass(frozen=True, slots=True)
class WorkloadItem:
    """A request plus the ground truth the engine needs to run it."""

    request: Request
    output_tokens: int


@dataclass(frozen=True, slots=True)
class Workload:
    """Requests sorted by (arrival_s, request_id); `name` says where they came from."""

    name: str
    items: tuple[WorkloadItem, ...]
    source: Mapping[str, object] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def clients(self) -> tuple[str, ...]:
        return tuple(sorted({it.request.client_id for it in self.items}))

    @property
    def duration_s(self) -> float:
        return self.items[-1].request.arrival_s if self.items else 0.0


class ClientStepService(NamedTuple):
    """What one client's running requests received in one engine step (a tuple: one is built per
    active client per step, and a frozen dataclass costs several times more to build)."""

    prefill_tokens: int
    decode_tokens: int
    context_tokens: int  # KV tokens its running requests attended over in the step


class EngineState(NamedTuple):
    """The engine's load at one moment: MoPE's load features (what a request saw when it arrived
    or was admitted), and what a policy may know of the engine (a tuple: one is built per step)."""

    running: int
    waiting: int
    kv_used_frac: float


class Progress(NamedTuple):
    """Service given in one engine step, per client (the policy charges its counters from it; a
    tuple: one is built per step, and a frozen dataclass took 1.5 µs of a 48 µs simulated step)."""

    now_s: float  # end of the step
    step_time_s: float
    gpu_util: float  # 0..1, the engine's (modelled or measured) utilisation during the step
    by_client: Mapping[str, ClientStepService]
    load: EngineState | None = None  # the engine's load when the step was charged (None: unknown)


CompletionStatus = Literal["finished", "rejected", "aborted"]


@dataclass(frozen=True, slots=True)
class Completion:
    """A request that left the engine, with what really happened."""

    request: Request
    status: CompletionStatus
    output_tokens: int
    now_s: float
    first_token_s: float | None = None
    admitted_s: float | None = None
    preemptions: int = 0
    cached_tokens: int = 0  # prompt tokens the engine found in its prefix cache (not computed)


@dataclass(frozen=True, slots=True)
class PolicySpec:
    """What a live engine needs of a policy: its name, -P values and predictor. The engine's own
    scheduler runs it (a server started with it, or one that says it runs it); the simulator gets
    the policy object itself."""

    name: str
    params: Mapping[str, str] = field(default_factory=dict)
    predictor: str = "moving-average"


@dataclass(frozen=True, slots=True)
class RunResult:
    """Everything one engine run produced, as columns: lists or typed arrays (one writer turns it to Parquet).

    requests: one row per request; steps: one row per engine step; counters: periodic samples
    of the policy's per-client counters (empty for policies without counters); client_gpu_s: the
    engine time each client's requests took up to the last arrival (the metrics' fairness
    window), where the engine can split its steps between clients (the simulator; empty live).
    """

    policy: str
    requests: Mapping[str, Column]
    steps: Mapping[str, Column]
    counters: Mapping[str, Column]
    config: Mapping[str, object]
    client_gpu_s: Mapping[str, float] = field(default_factory=dict)
