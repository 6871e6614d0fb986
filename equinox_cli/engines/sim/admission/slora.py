"""S-LoRA's router, the engine VTC was built and measured in (`-E admission=slora`).

From S-LoRA's `router/manager.py` and `req_queue.py` (DESIGN.md §4):
- Admission budgets the batch's **future peak** memory. Each running request is (tokens held now =
  prompt + generated, tokens still to generate = max_tokens − generated − 1), the candidate
  (prompt + 1, max_tokens − 1); sorted by tokens to generate, largest first, the need is
  max over i of (r_i·i + Σ_{k≤i} h_k) (core/kv_budget.py). A candidate is admitted while the need
  stays *below* the cache, the running count within `max_num_seqs` and this round's new prompts
  within `prefill_cap_tokens`; the first that does not fit ends the round. Requests that finish
  early free room for later ones, and with uniform lengths admission comes in waves.
- A round that admits anything is a prefill-only step: decoding pauses while the new prompts are
  computed (whole, no chunking), then they join the batch.
- With requests running, admission is retried only after `admit_every_steps` decode steps since the
  last prefill, then every step until a round admits something; with none running, every step.
Memory grows one token per decode step and, the rule being conservative (it uses max_tokens), is
never exhausted: nothing is preempted.
"""

from __future__ import annotations

from equinox_cli.core.kv_budget import peak_need_blocks
from equinox_cli.core.types import Request
from equinox_cli.engines.sim.admission.base import StepPlan, pick
from equinox_cli.engines.sim.batch import Batch, Seq
from equinox_cli.engines.sim.profiles import Profile


class SLoraAdmission:
    def __init__(self, profile: Profile) -> None:
        self.p = profile
        self.decodes_since_prefill = 0  # S-LoRA's has_wait_tokens

    def fits_ever(self, request: Request) -> bool:
        # the admission rule below for a batch of one: it must hold, or the request never runs
        alone = self._candidate(request.prompt_tokens, request.max_tokens, 0)
        fits = peak_need_blocks([alone], self.p.block_size) < self.p.kv_blocks
        return fits and request.prompt_tokens <= self.p.prefill_cap_tokens

    def plan(self, batch: Batch, now_s: float) -> StepPlan:
        if not batch.running or self.decodes_since_prefill >= self.p.admit_every_steps:
            chunks = self._admit(batch, now_s)
            if chunks:
                self.decodes_since_prefill = 0
                return StepPlan(chunks, decode=False)
        preempted = batch.grow_decodes(now_s)  # 0: the peak rule keeps growth within the cache
        self.decodes_since_prefill += 1
        return StepPlan([], decode=True, preempted=preempted)

    def _admit(self, batch: Batch, now_s: float) -> list[tuple[Seq, int]]:
        policy, p = batch.policy, self.p
        entries = [(batch.kv_tokens(s), self._to_generate(batch, s)) for s in batch.running.values()]
        chunks: list[tuple[Seq, int]] = []
        prompts = 0
        while len(policy):
            seq = pick(batch, now_s)
            if seq is None:
                break
            used_before = batch.kv.used
            candidate = self._candidate(seq.target, seq.request.max_tokens, seq.generated)
            fits = (
                len(batch.running) + 1 <= p.max_num_seqs
                and prompts + seq.target <= p.prefill_cap_tokens
                and peak_need_blocks([*entries, candidate], batch.block) < batch.kv.total
            )
            if not fits:
                policy.requeue(seq.request, now_s)
                break
            entries.append(candidate)
            if not batch.allocate(seq, seq.target):
                raise RuntimeError("S-LoRA rule admitted past the free blocks")  # a bug, never input
            batch.admit(seq, now_s, used_before)
            chunks.append((seq, seq.target))
            prompts += seq.target
        return chunks

    @staticmethod
    def _candidate(target: int, max_tokens: int, generated: int) -> tuple[int, int]:
        """(tokens in KV after its prefill, tokens still to generate) of a request being admitted."""
        return target + 1, max(0, max_tokens - generated - 1)

    @staticmethod
    def _to_generate(batch: Batch, seq: Seq) -> int:
        generated = batch.kv_tokens(seq) - seq.request.prompt_tokens
        return max(0, seq.request.max_tokens - generated - 1)
