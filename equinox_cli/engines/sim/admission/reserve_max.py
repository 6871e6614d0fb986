"""Reserve-max admission (`-E admission=reserve-max`): a conservative engine, kept for comparison.

Memory for prompt + max_tokens is reserved when a request is admitted and held until it finishes,
so nothing is ever preempted; new requests are admitted only every `admit_every_steps` steps (or
when nothing runs), their prompts capped at `prefill_cap_tokens` per round, without chunking.
Earlier versions of this simulator called this rule "vtc" and used it for VTC's engine: that was
wrong (S-LoRA admits against the batch's future peak, see slora.py) and admitted far fewer requests.
"""

from __future__ import annotations

from equinox_cli.core.types import Request
from equinox_cli.engines.sim.admission.base import StepPlan, pick
from equinox_cli.engines.sim.batch import Batch, Seq
from equinox_cli.engines.sim.profiles import Profile


class ReserveMaxAdmission:
    def __init__(self, profile: Profile) -> None:
        self.p = profile

    def fits_ever(self, request: Request) -> bool:
        return self.p.fits_pool(request.prompt_tokens + request.max_tokens)

    def plan(self, batch: Batch, now_s: float) -> StepPlan:
        chunks: list[tuple[Seq, int]] = []
        if not batch.running or batch.tick % self.p.admit_every_steps == 0:
            self._admit(batch, chunks, now_s)
        return StepPlan(chunks, decode=True)

    def _admit(self, batch: Batch, chunks: list[tuple[Seq, int]], now_s: float) -> None:
        policy, budget = batch.policy, self.p.prefill_cap_tokens
        while len(policy) and len(batch.running) < self.p.max_num_seqs and budget > 0:
            seq = pick(batch, now_s)
            if seq is None:
                break
            used_before = batch.kv.used
            if seq.target > budget and chunks:
                policy.requeue(seq.request, now_s)  # over the prefill cap; alone in a round it may run
                break
            remaining = max(0, seq.request.max_tokens - seq.generated)
            need = -(-(seq.target + remaining) // batch.block)
            if need > batch.kv.free:
                policy.requeue(seq.request, now_s)
                break
            batch.kv.take(need)
            seq.reserved_blocks = need
            batch.admit(seq, now_s, used_before)
            chunks.append((seq, seq.target))
            budget -= seq.target
