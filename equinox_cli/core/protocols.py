"""The seams: Policy, Engine, RunObserver and the output predictor a policy may be given."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from equinox_cli.core.types import Completion, PolicySpec, Progress, Request, RunResult, Workload


@runtime_checkable
class Policy(Protocol):
    """Owns the waiting queue and decides who is admitted next. Never reads a clock."""

    name: str

    def on_arrival(self, request: Request, now_s: float) -> bool:
        """Queue a new request; False means rejected (admission control), never queued."""
        ...

    def pick_next(self, now_s: float) -> Request | None:
        """Remove and return the request to admit next (None when nothing waits)."""
        ...

    def requeue(self, request: Request, now_s: float) -> None:
        """Put back a request that was picked but not admitted, or was preempted."""
        ...

    def remove(self, request: Request) -> bool:
        """A waiting request left without being admitted (client abort); False if not waiting."""
        ...

    def on_progress(self, progress: Progress) -> None:
        """Charge the service one engine step gave each client."""
        ...

    def on_finish(self, completion: Completion) -> None:
        """A request left the engine."""
        ...

    def counters(self) -> Mapping[str, float]:
        """The per-client counter the policy orders by (empty for counter-free policies)."""
        ...

    def is_backlogged(self, client_id: str) -> bool: ...

    def __len__(self) -> int: ...


class OutputPredictor(Protocol):
    """Predicts a request's output tokens before it runs; learns from finished requests."""

    def prepare(self, request: Request) -> None:
        """Called when the request arrives: compute request-only features off the scheduling path."""
        ...

    def predict_output_tokens(self, request: Request) -> float: ...

    def observe(self, request: Request, output_tokens: int) -> None: ...


class RunObserver(Protocol):
    """Optional progress callback of a long run (the CLI draws a progress bar with it)."""

    def on_start(self, policy: str, total_requests: int) -> None: ...

    def on_advance(self, completed_requests: int, now_s: float) -> None: ...

    def on_end(self, policy: str) -> None: ...


class Engine(Protocol):
    """An engine that executes a policy object (the simulator)."""

    def run(self, workload: Workload, policy: Policy, observer: RunObserver | None = None) -> RunResult: ...


class LiveEngine(Protocol):
    """An engine whose own scheduler runs the policy (a vLLM server): it gets the policy's spec."""

    def run(self, workload: Workload, spec: PolicySpec, observer: RunObserver | None = None) -> RunResult: ...
