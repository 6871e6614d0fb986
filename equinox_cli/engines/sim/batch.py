"""The running batch: which requests hold KV, how decodes grow, preemption, finishing.

Decode bookkeeping is O(active clients) per step, not O(batch). `tick` counts the steps in which
running requests decoded (S-LoRA's prefill steps pause decoding, so ticks and steps can differ); a
decoding request holds `target + tick − base_tick` tokens. It needs a new block exactly when that
length is a multiple of the block size, so decoders are counted in residue classes of their start,
and finishes come from a heap keyed by the tick of their last token.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

from equinox_cli.core.protocols import Policy
from equinox_cli.core.types import ClientStepService, Request, WorkloadItem
from equinox_cli.engines.sim.kv import KVLedger


@dataclass(eq=False, slots=True)
class Seq:
    item: WorkloadItem
    request: Request
    target: int  # tokens to prefill: prompt + tokens generated before a preemption
    prefix_keys: tuple[int, ...] = ()  # cache keys of its full prompt blocks (empty: no prefix info)
    prefilled: int = 0
    cached_tokens: int = 0  # of the prompt, found in the prefix cache at its last admission
    generated: int = 0  # tokens generated when `base_tick` began
    base_tick: int = 0  # the first tick in which it decodes (valid while decoding)
    decoding: bool = False
    reserved_blocks: int = 0  # reserve-max admission: blocks reserved at admission
    blocks: int = 0  # own blocks while prefilling (a decoding seq's own blocks are computed)
    shared: list[int] = field(default_factory=list)  # cache keys it references (a prefix of its blocks)
    epoch: int = 0
    admitted_s: float | None = None
    first_token_s: float | None = None
    preemptions: int = 0
    promise_tokens: int = 0  # KV gate: predicted final size (prompt + predicted output) at admission
    at_arrival: tuple[float, float, float] = (math.nan, math.nan, math.nan)
    at_admit: tuple[float, float, float] = (math.nan, math.nan, math.nan)


class Batch:
    def __init__(self, total_blocks: int, block_size: int, policy: Policy) -> None:
        self.block = block_size
        self.kv = KVLedger(total_blocks)
        self.policy = policy
        self.seqs: dict[str, Seq] = {}  # every request that arrived and has not left
        self.running: dict[str, Seq] = {}  # admission order; the last one is preempted first
        self.prefilling: dict[str, Seq] = {}  # the running ones whose prompt is not yet computed
        # picked (and charged) by the policy but not admitted yet: it stays first until it fits, as
        # the vLLM plug-in's queue keeps its head (vllm admission only; the others give it back)
        self.head: Seq | None = None
        self.tick = 0
        self.resid = [0] * block_size  # decoders needing a new block at tick ≡ r (mod block)
        self.finish_heap: list[tuple[int, int, int, str]] = []
        self.seq_no = 0
        self.n_decode = 0
        self.ctx_total = 0
        self.dec_by_client: dict[str, int] = {}
        self.ctx_by_client: dict[str, int] = {}
        self.decoding_clients = 0  # clients with a decoding request (distinct adapters, S-LoRA)

    def waiting(self) -> int:
        """Requests waiting: the policy's queue and the held head."""
        return len(self.policy) + (self.head is not None)

    def state(self) -> tuple[float, float, float]:
        """(running, waiting, KV used fraction) now: what a predictor may know of the engine."""
        return (float(len(self.running)), float(self.waiting()), self.kv.used / self.kv.total)

    def kv_tokens(self, seq: Seq) -> int:
        """Tokens whose KV `seq` holds now."""
        return seq.target + self.tick - seq.base_tick if seq.decoding else seq.prefilled

    def own_blocks(self, seq: Seq) -> int:
        """Blocks `seq` holds by itself (not through the prefix cache)."""
        if seq.reserved_blocks:
            return seq.reserved_blocks
        if seq.decoding:
            return -(-self.kv_tokens(seq) // self.block) - len(seq.shared)
        return seq.blocks

    # --- admission ------------------------------------------------------------------------
    def cache_hit(self, seq: Seq) -> int:
        """Reference the cached leading blocks of a request about to be admitted; returns the
        tokens it need not compute (never the whole prompt: the last token is always computed)."""
        if not seq.prefix_keys or seq.target != seq.request.prompt_tokens:
            return 0  # no prefix information, or a recompute (its KV includes generated tokens)
        usable = seq.prefix_keys[: (seq.target - 1) // self.block]
        hit = self.kv.cached_prefix(usable)
        self.kv.acquire(usable[:hit])
        seq.shared = list(usable[:hit])
        seq.cached_tokens = hit * self.block
        seq.prefilled = seq.cached_tokens
        return seq.cached_tokens

    def allocate(self, seq: Seq, tokens: int) -> bool:
        """Give a prefilling `seq` the blocks for `tokens` more prompt tokens, if free."""
        need = -(-(seq.prefilled + tokens) // self.block) - len(seq.shared) - seq.blocks
        if need > self.kv.free:
            return False
        self.kv.take(need)
        seq.blocks += need
        return True

    def admit(self, seq: Seq, now_s: float, kv_used_before: int) -> None:
        """`seq` joins the running batch (its blocks are already allocated; `kv_used_before` is
        the ledger's use before they were)."""
        if seq.admitted_s is None:
            seq.admitted_s = now_s
            # what a predictor knew at admission; waiting includes itself
            running, waiting = float(len(self.running)), float(self.waiting() + 1)
            seq.at_admit = (running, waiting, kv_used_before / self.kv.total)
        self.running[seq.request.request_id] = seq
        self.prefilling[seq.request.request_id] = seq

    def undo_hit(self, seq: Seq) -> None:
        """A request that referenced cached blocks was not admitted after all."""
        self.kv.release(seq.shared)
        self.kv.hit_blocks -= len(seq.shared)
        seq.shared = []
        seq.prefilled = seq.cached_tokens = 0

    # --- decoding, preemption, finishing --------------------------------------------------
    def grow_decodes(self, now_s: float) -> int:
        """Each decoder's next token needs a slot; preempt the newest request while blocks run out."""
        preempted = 0
        r = self.tick % self.block
        while self.resid[r] > self.kv.free:
            self.preempt(self.running[next(reversed(self.running))], now_s)
            preempted += 1
        self.kv.take(self.resid[r])
        return preempted

    def preempt(self, seq: Seq, now_s: float) -> None:
        """Recompute preemption: all its KV is dropped; it is prefilled again when readmitted."""
        self.kv.give(self.own_blocks(seq))
        self.kv.release(seq.shared)
        del self.running[seq.request.request_id]
        self.prefilling.pop(seq.request.request_id, None)
        if seq.decoding:
            seq.generated += self.tick - seq.base_tick
            self._stop_decoding(seq, kv=seq.target + self.tick - seq.base_tick)
        seq.target = seq.request.prompt_tokens + seq.generated
        seq.prefilled = seq.blocks = seq.reserved_blocks = seq.cached_tokens = 0
        seq.shared = []
        seq.promise_tokens = 0
        seq.epoch += 1
        seq.preemptions += 1
        self.policy.requeue(seq.request, now_s)

    def prefill_done(self, seq: Seq) -> None:
        """Its prompt blocks are computed: full ones enter the prefix cache."""
        del self.prefilling[seq.request.request_id]
        if seq.prefix_keys and seq.target == seq.request.prompt_tokens:
            full = seq.prefix_keys[: seq.target // self.block]
            added = self.kv.register(full[len(seq.shared) :])
            seq.shared.extend(added)
            seq.blocks -= len(added)

    def start_decoding(self, seq: Seq, base_tick: int) -> None:
        client = seq.request.client_id
        seq.decoding = True
        seq.base_tick = base_tick
        seq.blocks = 0
        self.resid[(base_tick - seq.target) % self.block] += 1
        self.n_decode += 1
        self.ctx_total += seq.target
        decoding = self.dec_by_client.get(client, 0)
        self.decoding_clients += decoding == 0
        self.dec_by_client[client] = decoding + 1
        self.ctx_by_client[client] = self.ctx_by_client.get(client, 0) + seq.target
        last_tick = base_tick + seq.item.output_tokens - seq.generated - 1
        self.seq_no += 1
        heapq.heappush(self.finish_heap, (last_tick, seq.epoch, self.seq_no, seq.request.request_id))

    def _stop_decoding(self, seq: Seq, kv: int) -> None:
        client = seq.request.client_id
        seq.decoding = False
        self.resid[(seq.base_tick - seq.target) % self.block] -= 1
        self.n_decode -= 1
        self.ctx_total -= kv
        self.dec_by_client[client] -= 1
        self.decoding_clients -= self.dec_by_client[client] == 0
        self.ctx_by_client[client] -= kv

    def tenants_in_step(self, chunks: list[tuple[Seq, int]], decode: bool) -> int:
        """Distinct clients in a step: those decoding (if it decodes) and those prefilling."""
        if not decode:
            return len({seq.request.client_id for seq, _ in chunks})
        dec = self.dec_by_client
        extra = {seq.request.client_id for seq, _ in chunks if not dec.get(seq.request.client_id)}
        return self.decoding_clients + len(extra)

    def decode_service(self) -> dict[str, ClientStepService]:
        """This step's decode service per client (tokens, and the context they attended over),
        and every decoder's context grows by the token it generates (one pass over the clients)."""
        self.ctx_total += self.n_decode
        ctx, by_client, make = self.ctx_by_client, {}, tuple.__new__
        for c, d in self.dec_by_client.items():
            if d:
                k = ctx[c]
                by_client[c] = make(ClientStepService, (0, d, k))
                ctx[c] = k + d
        return by_client

    def finish_due(self) -> list[Seq]:
        """End the current decode tick: the requests whose last token it produced leave the batch."""
        heap, tick, done = self.finish_heap, self.tick, []
        while heap and heap[0][0] <= tick:
            _, epoch, _, rid = heapq.heappop(heap)
            seq = self.running.get(rid)
            if seq is None or seq.epoch != epoch or not seq.decoding:
                continue  # preempted since the entry was pushed
            kv = seq.target + tick + 1 - seq.base_tick
            seq.generated += tick + 1 - seq.base_tick
            # the token just written included
            blocks = seq.reserved_blocks or -(-kv // self.block) - len(seq.shared)
            self._stop_decoding(seq, kv)
            self.release(seq, blocks)
            done.append(seq)
        self.tick += 1
        return done

    def release(self, seq: Seq, own_blocks: int) -> None:
        self.kv.give(own_blocks)
        self.kv.release(seq.shared)
        seq.shared = []
        seq.promise_tokens = 0
        self.running.pop(seq.request.request_id, None)
