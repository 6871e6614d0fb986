"""What an admission rule decides each step, and the interface every rule implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from equinox_cli.core.types import Request
from equinox_cli.engines.sim.batch import Batch, Seq


@dataclass(slots=True)
class StepPlan:
    chunks: list[tuple[Seq, int]]  # prompt tokens each request computes this step
    decode: bool  # the running decoders each generate a token this step
    preempted: int = 0


class AdmissionRule(Protocol):
    def fits_ever(self, request: Request) -> bool:
        """False: the engine refuses the request on arrival (it could never run)."""
        ...

    def plan(self, batch: Batch, now_s: float) -> StepPlan:
        """Grow or preempt the running batch and admit from the policy's queue, in this engine's way."""
        ...


def pick(batch: Batch, now_s: float) -> Seq | None:
    """The policy's next request, as the engine's sequence."""
    request = batch.policy.pick_next(now_s)
    return None if request is None else batch.seqs[request.request_id]
