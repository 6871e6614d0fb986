"""The simulator: continuous batching over paged KV blocks, in discrete engine steps.

Time is data (the step-time model), never the wall clock. Each step, like vLLM v1:
  1. running decodes each need one KV slot; when blocks run out the most recently admitted
     request is preempted (recompute: its prompt and generated tokens are prefilled again later);
  2. partial prefills continue (chunked prefill), then waiting requests are admitted in the
     policy's order while max_num_seqs, max_num_batched_tokens and free KV blocks allow — the
     first request that does not fit stops admission, as in vLLM;
  3. the step takes t = profile.step_time_s(...); a request whose prefill completes emits its first
     token at the end of the step; finished requests free their blocks.
With `kv_gate` (an engine feature any policy can run with), a request is admitted only while the
running batch's predicted peak KV need over time fits the cache (core/kv_budget.py, `gate_rule`);
the prediction comes from the engine's own predictor, never from the policy, so that orderings are
compared in the same engine.
Admission mode "vtc" mimics VTC's engine instead: memory reserved for prompt + max_tokens, new
requests admitted only every `admit_every_steps` decode steps, prefill capped per round, no chunks.

Per-step cost is O(active clients), not O(batch): decode KV growth is counted with residue classes
(a decoding request needs a new block exactly when its KV length is a multiple of the block size)
and finishes come from a heap keyed by the step at which each request emits its last token.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace

from equinox_cli.core.errors import UserInputError
from equinox_cli.core.kv_budget import RULES, need_blocks
from equinox_cli.core.protocols import OutputPredictor, Policy, RunObserver
from equinox_cli.core.types import (
    ClientStepService,
    Completion,
    CompletionStatus,
    Progress,
    Request,
    RunResult,
    Workload,
    WorkloadItem,
)
from equinox_cli.engines.sim.profiles import Profile

ENGINE_KEYS = (
    "kv_capacity_tokens",
    "block_size",
    "max_num_seqs",
    "max_num_batched_tokens",
    "chunked_prefill",
    "admission",
    "admit_every_steps",
    "prefill_cap_tokens",
    "kv_gate",
    "gate_rule",
)


def apply_engine_args(profile: Profile, raw: dict[str, str]) -> Profile:
    """The profile with `-E key=value` engine overrides applied (typed, validated)."""
    kinds = {f.name: type(getattr(profile, f.name)) for f in fields(profile) if f.name in ENGINE_KEYS}
    values: dict[str, object] = {}
    for key, text in raw.items():
        if key not in kinds:
            raise UserInputError(f"unknown -E key {key!r}; valid: {', '.join(ENGINE_KEYS)}")
        try:
            if kinds[key] is bool:
                if text.lower() not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                    raise ValueError(text)
                values[key] = text.lower() in ("true", "1", "yes", "on")
            else:
                values[key] = kinds[key](text)
        except ValueError:
            raise UserInputError(f"bad -E value {key}={text!r} (expected {kinds[key].__name__})") from None
        number = values[key]
        if isinstance(number, int | float) and not isinstance(number, bool) and not 0 <= number <= 1e9:
            raise UserInputError(f"bad -E value {key}={text!r} (a number in [0, 1e9])")
    result = replace(profile, **values)  # type: ignore[arg-type]
    if result.admission not in ("vllm", "vtc"):
        raise UserInputError(f"bad -E value admission={result.admission!r}; valid: vllm, vtc")
    if result.gate_rule not in RULES:
        raise UserInputError(f"bad -E value gate_rule={result.gate_rule!r}; valid: {', '.join(RULES)}")
    if result.kv_gate and result.admission != "vllm":
        raise UserInputError("-E kv_gate=true works with admission=vllm (VTC's engine reserves max_tokens)")
    ints = [
        result.kv_capacity_tokens,
        result.block_size,
        result.max_num_seqs,
        result.max_num_batched_tokens,
        result.admit_every_steps,
        result.prefill_cap_tokens,
    ]
    if min(ints) < 1:
        raise UserInputError(
            "bad -E value: kv_capacity_tokens, block_size, max_num_seqs, max_num_batched_tokens, "
            "admit_every_steps and prefill_cap_tokens must be >= 1"
        )
    return result


REQUEST_COLUMNS = (
    "request_id",
    "client_id",
    "weight",
    "arrival_s",
    "prompt_tokens",
    "output_tokens",
    "max_tokens",
    "status",
    "admitted_s",
    "first_token_s",
    "finish_s",
    "preemptions",
    "running_at_arrival",  # engine state when the request arrived (known before it runs)
    "waiting_at_arrival",
    "kv_used_frac_at_arrival",
    "running_at_admit",  # engine state when it was first admitted (NaN if never)
    "waiting_at_admit",
    "kv_used_frac_at_admit",
)
STEP_COLUMNS = (
    "step",
    "start_s",
    "step_time_s",
    "prefill_tokens",
    "decode_seqs",
    "context_tokens",
    "running",
    "waiting",
    "kv_used_blocks",
    "kv_total_blocks",
    "gpu_util",
    "preempted",
)
COUNTER_COLUMNS = ("time_s", "client_id", "counter", "backlogged")


@dataclass(eq=False, slots=True)
class _Seq:
    item: WorkloadItem
    request: Request
    target: int  # tokens to prefill: prompt + tokens generated before a preemption
    prefilled: int = 0
    generated: int = 0  # tokens generated when `base_step` began
    base_step: int = 0  # first step in which it decodes (valid while decoding)
    decoding: bool = False
    reserved_blocks: int = 0  # vtc admission: blocks reserved at admission
    blocks: int = 0  # blocks held while prefilling (decoding seqs compute theirs lazily)
    epoch: int = 0
    admitted_s: float | None = None
    first_token_s: float | None = None
    preemptions: int = 0
    promise_tokens: int = 0  # KV gate: predicted final size (prompt + predicted output) at admission
    at_arrival: tuple[float, float, float] = (math.nan, math.nan, math.nan)
    at_admit: tuple[float, float, float] = (math.nan, math.nan, math.nan)


@dataclass(slots=True)
class _Columns:
    requests: dict[str, list[object]] = field(default_factory=lambda: {k: [] for k in REQUEST_COLUMNS})
    steps: dict[str, list[object]] = field(default_factory=lambda: {k: [] for k in STEP_COLUMNS})
    counters: dict[str, list[object]] = field(default_factory=lambda: {k: [] for k in COUNTER_COLUMNS})


class SimEngine:
    """Runs a workload under a policy on a modelled GPU (see the module docstring)."""

    def __init__(
        self,
        profile: Profile,
        counter_sample_s: float = 1.0,
        gate_predictor: Callable[[], OutputPredictor] | None = None,
    ) -> None:
        """`gate_predictor` makes a fresh predictor for each run's KV gate (`profile.kv_gate`)."""
        if profile.kv_gate and gate_predictor is None:
            raise UserInputError("-E kv_gate=true needs a predictor (--predictor) for the engine")
        self.profile = profile
        self.counter_sample_s = counter_sample_s
        self.gate_predictor = gate_predictor

    def run(self, workload: Workload, policy: Policy, observer: RunObserver | None = None) -> RunResult:
        gate = self.gate_predictor() if self.profile.kv_gate and self.gate_predictor else None
        state = _Run(self.profile, policy, workload, observer, self.counter_sample_s, gate)
        state.loop()
        config = {f.name: getattr(self.profile, f.name) for f in fields(self.profile)}
        return RunResult(
            policy=policy.name,
            requests=state.out.requests,
            steps=state.out.steps,
            counters=state.out.counters,
            config=config,
        )


class _Run:
    def __init__(
        self,
        profile: Profile,
        policy: Policy,
        workload: Workload,
        observer: RunObserver | None,
        counter_sample_s: float,
        gate: OutputPredictor | None = None,
    ) -> None:
        self.p = profile
        self.policy = policy
        self.gate = gate  # the engine's own output predictor for its KV gate (None: no gate)
        self.items = workload.items
        self.observer = observer
        self.sample_s = counter_sample_s
        self.next_sample_s = 0.0
        self.out = _Columns()
        self.block = profile.block_size
        self.total_blocks = profile.kv_capacity_tokens // profile.block_size
        self.free = self.total_blocks
        self.vtc_mode = profile.admission == "vtc"
        self.now = 0.0
        self.step = 0
        self.next_arrival = 0
        self.seqs: dict[str, _Seq] = {}  # every request that arrived and has not left
        self.running: dict[str, _Seq] = {}  # admission order; the last one is preempted first
        self.resid = [0] * self.block  # decoding seqs needing a new block at step ≡ r (mod B)
        self.finish_heap: list[tuple[int, int, int, str]] = []
        self.seq_no = 0
        self.n_decode = 0
        self.ctx_total = 0
        self.dec_by_client: dict[str, int] = {}
        self.ctx_by_client: dict[str, int] = {}
        self.done = 0
        self.progress_every = max(1, len(workload.items) // 200)

    # --- main loop ------------------------------------------------------------------------
    def loop(self) -> None:
        if self.observer:
            self.observer.on_start(self.policy.name, len(self.items))
        total = len(self.items)
        while self.done < total:
            self._arrivals()
            if not self.running and len(self.policy) == 0:
                if self.next_arrival >= total:
                    break  # nothing left (defensive: every request has been accounted for)
                self.now = max(self.now, self.items[self.next_arrival].request.arrival_s)
                continue
            self._one_step()
        if self.observer:
            self.observer.on_end(self.policy.name)

    def _arrivals(self) -> None:
        items, now = self.items, self.now
        while self.next_arrival < len(items) and items[self.next_arrival].request.arrival_s <= now:
            item = items[self.next_arrival]
            self.next_arrival += 1
            request = item.request
            if not self._fits_ever(request):
                self._leave(_Seq(item, request, request.prompt_tokens), "aborted", request.arrival_s)
                continue
            state = self._state()  # before it joins the queue
            if not self.policy.on_arrival(request, request.arrival_s):
                self._leave(_Seq(item, request, request.prompt_tokens), "rejected", request.arrival_s)
                continue
            seq = _Seq(item, request, request.prompt_tokens, at_arrival=state)
            self.seqs[request.request_id] = seq
            if self.gate is not None:
                self.gate.prepare(request)

    def _state(self) -> tuple[float, float, float]:
        """(running, waiting, KV used fraction) now: the batch and KV state a predictor may use."""
        used = (self.total_blocks - self.free) / self.total_blocks
        return (float(len(self.running)), float(len(self.policy)), used)

    def _fits_ever(self, request: Request) -> bool:
        """vLLM rejects a request longer than the model/KV can hold; so does the simulator."""
        need = request.prompt_tokens + request.max_tokens
        if need > self.p.kv_capacity_tokens:
            return False
        if self.vtc_mode:
            return True
        return self.p.chunked_prefill or request.prompt_tokens <= self.p.max_num_batched_tokens

    def _one_step(self) -> None:
        step = self.step
        preempted = self._grow_decodes(step)
        budget = self.p.max_num_batched_tokens - self.n_decode
        chunks: list[tuple[_Seq, int]] = []
        if not self.vtc_mode:
            budget = self._continue_prefills(chunks, budget)
        self._admit(chunks, budget, step)
        prefill = sum(n for _, n in chunks)
        if prefill == 0 and self.n_decode == 0:
            raise RuntimeError("simulator stalled: nothing schedulable")  # a bug, never input
        n_dec, ctx = self.n_decode, self.ctx_total
        dt = self.p.step_time_s(prefill, n_dec, ctx)
        util = self.p.gpu_util(prefill, n_dec, ctx, dt)
        start = self.now
        self.now += dt
        self._progress(chunks, dt, util)
        self._record_step(step, start, dt, prefill, n_dec, ctx, util, preempted)
        self._advance_decodes()
        self._complete_prefills(chunks, step)
        self._finish_due(step)
        self.step += 1
        if self.now >= self.next_sample_s:
            self._sample_counters()

    # --- KV and preemption ----------------------------------------------------------------
    def _blocks_of(self, seq: _Seq, step: int) -> int:
        if seq.reserved_blocks:
            return seq.reserved_blocks
        if seq.decoding:
            return -(-(seq.target + step - seq.base_step) // self.block)
        return seq.blocks

    def _grow_decodes(self, step: int) -> int:
        if self.vtc_mode:
            return 0
        preempted = 0
        r = step % self.block
        while self.resid[r] > self.free:
            self._preempt(self.running[next(reversed(self.running))], step)
            preempted += 1
        self.free -= self.resid[r]
        return preempted

    def _preempt(self, seq: _Seq, step: int) -> None:
        self.free += self._blocks_of(seq, step)
        del self.running[seq.request.request_id]
        if seq.decoding:
            seq.generated += step - seq.base_step
            self._stop_decoding(seq, kv=seq.target + step - seq.base_step, step=step)
        seq.target = seq.request.prompt_tokens + seq.generated
        seq.prefilled = seq.blocks = seq.reserved_blocks = 0
        seq.promise_tokens = 0
        seq.epoch += 1
        seq.preemptions += 1
        self.policy.requeue(seq.request, self.now)

    def _stop_decoding(self, seq: _Seq, kv: int, step: int) -> None:
        client = seq.request.client_id
        seq.decoding = False
        self.resid[(seq.base_step - seq.target) % self.block] -= 1
        self.n_decode -= 1
        self.ctx_total -= kv
        self.dec_by_client[client] -= 1
        self.ctx_by_client[client] -= kv

    # --- admission ------------------------------------------------------------------------
    def _continue_prefills(self, chunks: list[tuple[_Seq, int]], budget: int) -> int:
        for seq in self.running.values():
            if budget <= 0:
                break
            if seq.decoding or seq.prefilled >= seq.target or seq.prefilled == 0:
                continue
            chunk = self._fit_chunk(seq, min(seq.target - seq.prefilled, budget))
            if chunk:
                chunks.append((seq, chunk))
                budget -= chunk
        return budget

    def _fit_chunk(self, seq: _Seq, chunk: int) -> int:
        """Shrink a prefill chunk to the free blocks and allocate them."""
        have = seq.blocks
        while chunk > 0:
            need = -(-(seq.prefilled + chunk) // self.block) - have
            if need <= self.free:
                self.free -= need
                seq.blocks += need
                return chunk
            chunk = (have + self.free) * self.block - seq.prefilled
        return 0

    def _admit(self, chunks: list[tuple[_Seq, int]], budget: int, step: int) -> None:
        if self.vtc_mode:
            if self.running and step % self.p.admit_every_steps:
                return
            budget = self.p.prefill_cap_tokens
        policy, p = self.policy, self.p
        while len(policy) and len(self.running) < p.max_num_seqs and budget > 0:
            request = policy.pick_next(self.now)
            if request is None:
                break
            seq = self.seqs[request.request_id]
            state = self._state()
            promise = self._promise(seq)
            if promise and self.running and not self._gate_admits(seq, promise, step):
                policy.requeue(request, self.now)
                break
            chunk = self._admission_chunk(seq, budget, bool(chunks))
            if chunk == 0:
                policy.requeue(request, self.now)
                break
            seq.promise_tokens = promise
            self.running[request.request_id] = seq
            if seq.admitted_s is None:
                seq.admitted_s = self.now
                seq.at_admit = (state[0], state[1] + 1, state[2])  # +1: itself, picked off the queue
            chunks.append((seq, chunk))
            budget -= chunk

    def _promise(self, seq: _Seq) -> int:
        """Tokens the gate budgets for `seq` (0: no gate): its prompt and predicted output."""
        if self.gate is None or self.vtc_mode:
            return 0
        need = self.gate.predict_output_tokens(seq.request)
        return seq.target + max(1, math.ceil(need) - seq.generated)

    def _gate_admits(self, seq: _Seq, promise: int, step: int) -> bool:
        """The running batch plus `seq` fit the cache at their predicted need (gate_rule)."""
        batch = [(seq.target, promise - seq.target)]
        for other in self.running.values():
            now = other.target + (step - other.base_step if other.decoding else 0)
            batch.append((now, max(1, other.promise_tokens - now)))
        return need_blocks(self.p.gate_rule, batch, self.block) <= self.total_blocks

    def _admission_chunk(self, seq: _Seq, budget: int, others: bool) -> int:
        """Tokens of `seq` to prefill this step if it can be admitted now, else 0."""
        if self.vtc_mode:
            if seq.target > budget and others:
                return 0  # over the prefill cap; alone in a round it may run by itself
            remaining = max(0, seq.request.max_tokens - seq.generated)
            need = -(-(seq.target + remaining) // self.block)
            if need > self.free:
                return 0
            self.free -= need
            seq.reserved_blocks = need
            return seq.target
        if not self.p.chunked_prefill and seq.target > budget:
            if others or self.running:
                return 0
            chunk = seq.target  # a recompute longer than the budget runs alone (never stalls)
        else:
            chunk = min(seq.target, budget)
        need = -(-chunk // self.block)
        if need > self.free:
            return 0
        self.free -= need
        seq.blocks = need
        return chunk

    # --- applying a step ------------------------------------------------------------------
    def _progress(self, chunks: list[tuple[_Seq, int]], dt: float, util: float) -> None:
        prefill_by: dict[str, int] = {}
        for seq, n in chunks:
            cid = seq.request.client_id
            prefill_by[cid] = prefill_by.get(cid, 0) + n
        by_client = {
            c: ClientStepService(prefill_by.pop(c, 0), d, self.ctx_by_client[c])
            for c, d in self.dec_by_client.items()
            if d
        }
        for c, n in prefill_by.items():
            by_client[c] = ClientStepService(n, 0, 0)
        self.policy.on_progress(Progress(self.now, dt, util, by_client))

    def _advance_decodes(self) -> None:
        self.ctx_total += self.n_decode
        ctx = self.ctx_by_client
        for c, d in self.dec_by_client.items():
            if d:
                ctx[c] += d

    def _complete_prefills(self, chunks: list[tuple[_Seq, int]], step: int) -> None:
        for seq, n in chunks:
            seq.prefilled += n
            if seq.prefilled < seq.target:
                continue
            seq.generated += 1
            if seq.first_token_s is None:
                seq.first_token_s = self.now
            if seq.generated >= seq.item.output_tokens:
                self._release(seq, self._blocks_of(seq, step))
                self._leave(seq, "finished", self.now)
                continue
            self._start_decoding(seq, step + 1)

    def _start_decoding(self, seq: _Seq, base_step: int) -> None:
        client = seq.request.client_id
        seq.decoding = True
        seq.base_step = base_step
        seq.blocks = 0
        self.resid[(base_step - seq.target) % self.block] += 1
        self.n_decode += 1
        self.ctx_total += seq.target
        self.dec_by_client[client] = self.dec_by_client.get(client, 0) + 1
        self.ctx_by_client[client] = self.ctx_by_client.get(client, 0) + seq.target
        last_step = base_step + seq.item.output_tokens - seq.generated - 1
        self.seq_no += 1
        heapq.heappush(self.finish_heap, (last_step, seq.epoch, self.seq_no, seq.request.request_id))

    def _finish_due(self, step: int) -> None:
        heap = self.finish_heap
        while heap and heap[0][0] <= step:
            _, epoch, _, rid = heapq.heappop(heap)
            seq = self.seqs.get(rid)
            if seq is None or seq.epoch != epoch or not seq.decoding:
                continue  # preempted since the entry was pushed
            kv = seq.target + step + 1 - seq.base_step
            seq.generated += step + 1 - seq.base_step
            blocks = self._blocks_of(seq, step + 1)
            self._stop_decoding(seq, kv, step)
            self._release(seq, blocks)
            self._leave(seq, "finished", self.now)

    def _release(self, seq: _Seq, blocks: int) -> None:
        self.free += blocks
        seq.promise_tokens = 0
        self.running.pop(seq.request.request_id, None)

    def _leave(self, seq: _Seq, status: CompletionStatus, now_s: float) -> None:
        request = seq.request
        self.seqs.pop(request.request_id, None)
        output = seq.generated if status == "finished" else 0
        completion = Completion(
            request,
            status,
            output,
            now_s,
            seq.first_token_s,
            seq.admitted_s,
            seq.preemptions,
        )
        if status != "aborted":
            self.policy.on_finish(completion)
        if status == "finished" and self.gate is not None:
            self.gate.observe(request, output)
        self._record_request(seq, status, now_s)
        self.done += 1
        if self.observer and (self.done % self.progress_every == 0 or self.done == len(self.items)):
            self.observer.on_advance(self.done, self.now)

    # --- recording ------------------------------------------------------------------------
    def _record_request(self, seq: _Seq, status: str, now_s: float) -> None:
        r, cols = seq.request, self.out.requests
        values = (
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
            *seq.at_arrival,
            *seq.at_admit,
        )
        for key, value in zip(REQUEST_COLUMNS, values, strict=True):
            cols[key].append(value)

    def _record_step(
        self,
        step: int,
        start: float,
        dt: float,
        prefill: int,
        n_dec: int,
        ctx: int,
        util: float,
        preempted: int,
    ) -> None:
        cols = self.out.steps
        values = (
            step,
            start,
            dt,
            prefill,
            n_dec,
            ctx,
            len(self.running),
            len(self.policy),
            self.total_blocks - self.free,
            self.total_blocks,
            util,
            preempted,
        )
        for key, value in zip(STEP_COLUMNS, values, strict=True):
            cols[key].append(value)

    def _sample_counters(self) -> None:
        counters = self.policy.counters()
        cols = self.out.counters
        for client, value in counters.items():
            cols["time_s"].append(self.now)
            cols["client_id"].append(client)
            cols["counter"].append(float(value))
            cols["backlogged"].append(self.policy.is_backlogged(client))
        self.next_sample_s = (math.floor(self.now / self.sample_s) + 1) * self.sample_s
