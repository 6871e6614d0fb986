"""vLLM v1's scheduler, as of 0.32 (`-E admission=vllm`, the default).

Each step: every running decoder needs a slot for its next token, and while blocks run out the most
recently admitted request is preempted (recompute: prompt and generated tokens are prefilled again
later). Partial prefills continue (chunked prefill, within `max_num_batched_tokens` less one token
per decoder, and each within `long_prefill_tokens` when set and more than one request is running or
waiting: vLLM's long_prefill_token_threshold), then waiting requests are admitted in the policy's
order while `max_num_seqs`, the token budget and free KV blocks allow; the first request that does
not fit stops admission and stays first, still charged, until it fits (the plug-in's queue keeps
its head the same way). A request's prompt blocks are allocated as its chunks are computed, never
its future output.

With `kv_gate` (an engine feature any policy can run with) a request is admitted only while the
running batch's predicted peak KV need over time fits the cache (core/kv_budget.py, `gate_rule`);
the prediction comes from the engine's own predictor, never from the policy, so that orderings are
compared in the same engine.
"""

from __future__ import annotations

import math

from equinox_cli.core.kv_budget import need_blocks
from equinox_cli.core.protocols import OutputPredictor
from equinox_cli.core.types import Request
from equinox_cli.engines.sim.admission.base import StepPlan, pick
from equinox_cli.engines.sim.batch import Batch, Seq
from equinox_cli.engines.sim.profiles import Profile


class VllmAdmission:
    def __init__(self, profile: Profile, gate: OutputPredictor | None) -> None:
        self.p = profile
        self.gate = gate
        # the held head's last failed allocation: (seq, free blocks, chunk asked). With no more
        # free blocks and no smaller chunk it fails again, so it is not retried (speed only)
        self._stuck: tuple[Seq, int, int] | None = None

    def fits_ever(self, request: Request) -> bool:
        if not self.p.fits_pool(request.prompt_tokens + request.max_tokens):
            return False
        return self.p.chunked_prefill or request.prompt_tokens <= self.p.max_num_batched_tokens

    def plan(self, batch: Batch, now_s: float) -> StepPlan:
        # vLLM counts the requests at the start of the step; alone, a request is never capped
        long = self.p.long_prefill_tokens if self.p.chunked_prefill else 0
        cap = long if long and len(batch.running) + batch.waiting() > 1 else self.p.max_num_batched_tokens
        preempted = batch.grow_decodes(now_s)
        budget = self.p.max_num_batched_tokens - batch.n_decode
        chunks: list[tuple[Seq, int]] = []
        budget = self._continue_prefills(batch, chunks, budget, cap)
        self._admit(batch, chunks, budget, now_s, cap)
        return StepPlan(chunks, decode=True, preempted=preempted)

    def _continue_prefills(self, batch: Batch, chunks: list[tuple[Seq, int]], budget: int, cap: int) -> int:
        for seq in batch.prefilling.values():
            if budget <= 0:
                break
            chunk = self._fit_chunk(batch, seq, min(seq.target - seq.prefilled, budget, cap))
            if chunk:
                chunks.append((seq, chunk))
                budget -= chunk
        return budget

    @staticmethod
    def _fit_chunk(batch: Batch, seq: Seq, chunk: int) -> int:
        """Shrink a prefill chunk to the free blocks and allocate them."""
        have = seq.blocks + len(seq.shared)
        while chunk > 0:
            if batch.allocate(seq, chunk):
                return chunk
            chunk = (have + batch.kv.free) * batch.block - seq.prefilled
        return 0

    def _admit(
        self, batch: Batch, chunks: list[tuple[Seq, int]], budget: int, now_s: float, cap: int
    ) -> None:
        """Admit in the policy's order; a pick that does not fit stays the held head, charged,
        and is tried first next step (what the plug-in's queue does in the real engine). `cap`:
        the most prompt tokens one request computes this step."""
        p = self.p
        while (batch.head or len(batch.policy)) and len(batch.running) < p.max_num_seqs and budget > 0:
            seq = batch.head or pick(batch, now_s)
            if seq is None:
                break
            batch.head = None
            used_before = batch.kv.used
            promise = self._promise(seq)
            if promise and batch.running and not self._gate_admits(batch, seq, promise):
                batch.head = seq
                break
            chunk = self._admission_chunk(batch, seq, min(budget, cap), bool(chunks))
            if chunk == 0:
                batch.head = seq
                break
            seq.promise_tokens = promise
            batch.admit(seq, now_s, used_before)
            chunks.append((seq, chunk))
            budget -= chunk

    def _promise(self, seq: Seq) -> int:
        """Tokens the gate budgets for `seq` (0: no gate): its prompt and predicted output."""
        if self.gate is None:
            return 0
        need = self.gate.predict_output_tokens(seq.request)
        return seq.target + max(1, math.ceil(need) - seq.generated)

    def _gate_admits(self, batch: Batch, seq: Seq, promise: int) -> bool:
        """The running batch plus `seq` fit the cache at their predicted need (gate_rule)."""
        entries = [(seq.target, promise - seq.target)]
        for other in batch.running.values():
            now = other.target + (batch.tick - other.base_tick if other.decoding else 0)
            entries.append((now, max(1, other.promise_tokens - now)))
        return need_blocks(self.p.gate_rule, entries, batch.block) <= batch.kv.total

    def _admission_chunk(self, batch: Batch, seq: Seq, budget: int, others: bool) -> int:
        """Prompt tokens of `seq` to compute this step if it can be admitted now, else 0."""
        todo = seq.target - seq.prefilled
        stuck = self._stuck
        if stuck and stuck[0] is seq and batch.kv.free <= stuck[1] and min(todo, budget) >= stuck[2]:
            return 0
        batch.cache_hit(seq)
        todo = seq.target - seq.prefilled
        if not self.p.chunked_prefill and todo > budget:
            if others or batch.running:
                batch.undo_hit(seq)
                return 0
            chunk = todo  # a recompute longer than the budget runs alone (never stalls)
        else:
            chunk = min(todo, budget)
        if not batch.allocate(seq, chunk):
            batch.undo_hit(seq)
            # a cache hit depends on what is cached, so only a request without one is skipped later
            self._stuck = None if seq.prefix_keys else (seq, batch.kv.free, chunk)
            return 0
        self._stuck = None
        return chunk
