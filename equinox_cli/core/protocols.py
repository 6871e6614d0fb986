"""The seams: Policy, Engine, RunObserver and the predictors a policy or engine may be given."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple, Protocol, runtime_checkable

from equinox_cli.core.types import (
    Completion,
    EngineState,
    PolicySpec,
    Progress,
    Request,
    RunResult,
    Workload,
)


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


class RequestForecast(NamedTuple):
    """What a predictor expects of a request before it runs; None: it has no model for that target."""

    output_tokens: float
    ttft_s: float | None
    e2e_s: float | None


class StepForecast(NamedTuple):
    step_time_s: float
    gpu_util: float  # 0..1


class Predictor(OutputPredictor, Protocol):
    """Every MoPE target before execution. Output tokens stay on the scheduling path
    (predict_output_tokens, cheap); latency needs the engine's load, which a policy learns from
    `Progress.load`; a step's time and utilisation are what the GPU-time counter prices with."""

    @property
    def forecasts_latency(self) -> bool:
        """False when forecast() never carries latency (ttft_s and e2e_s always None): a policy
        may then skip calling it on the scheduling path."""
        ...

    def forecast(self, request: Request, load: EngineState) -> RequestForecast: ...

    def predict_step(
        self, prefill_tokens: int, decode_seqs: int, context_tokens: int, load: EngineState
    ) -> StepForecast | None:
        """None: this predictor has no step model."""
        ...


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
