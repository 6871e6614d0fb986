"""The simulator: continuous batching over paged KV blocks, in discrete engine steps.

Time is data (the step-time model), never the wall clock. Each step:
  1. requests that arrived by now join the policy's queue (or are refused: too long to ever run,
     or for the model's context); max_tokens is cut to the context the prompt leaves;
  2. the engine's admission rule (admission/: vllm, slora, reserve-max) grows or preempts the
     running batch and admits from the policy's queue;
  3. the step takes t = profile.step_time_s(prefill, decoders, context), plus c_adapter_s per
     distinct tenant in the step (S-LoRA's adapters), times a residual drawn from the profile's
     measured ones, seeded, when it has them; a request whose prefill completes
     emits its first token at the end of the step; finished requests free their blocks.
The running batch and its decode bookkeeping are in batch.py, the KV blocks and prefix cache in
kv.py, the output columns in records.py.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import fields, replace

import numpy as np

from equinox_cli.core.errors import UserInputError
from equinox_cli.core.protocols import OutputPredictor, Policy, RunObserver
from equinox_cli.core.types import (
    ClientStepService,
    Completion,
    CompletionStatus,
    EngineState,
    Progress,
    RunResult,
    Workload,
    WorkloadItem,
)
from equinox_cli.engines.sim.admission import make_rule
from equinox_cli.engines.sim.batch import Batch, Seq
from equinox_cli.engines.sim.kv import block_keys
from equinox_cli.engines.sim.options import apply_engine_args
from equinox_cli.engines.sim.profiles import Profile
from equinox_cli.engines.sim.records import COUNTER_COLUMNS, REQUEST_COLUMNS, STEP_COLUMNS, Records

# tuple.__new__ builds a NamedTuple without its Python-level __new__ (several per step)
_make = tuple.__new__

__all__ = ["COUNTER_COLUMNS", "REQUEST_COLUMNS", "STEP_COLUMNS", "SimEngine", "apply_engine_args"]


class SimEngine:
    """Runs a workload under a policy on a modelled GPU (see the module docstring)."""

    def __init__(
        self,
        profile: Profile,
        counter_sample_s: float = 1.0,
        gate_predictor: Callable[[], OutputPredictor] | None = None,
        seed: int = 0,
    ) -> None:
        """`gate_predictor` makes a fresh predictor for each run's KV gate (`profile.kv_gate`);
        `seed` drives the step-time residuals (the same stream for every policy of a run)."""
        if profile.kv_gate and gate_predictor is None:
            raise UserInputError("-E kv_gate=true needs a predictor (--predictor) for the engine")
        self.profile = profile
        self.counter_sample_s = counter_sample_s
        self.gate_predictor = gate_predictor
        self.seed = seed

    def run(self, workload: Workload, policy: Policy, observer: RunObserver | None = None) -> RunResult:
        gate = self.gate_predictor() if self.profile.kv_gate and self.gate_predictor else None
        state = _Run(self.profile, policy, workload, observer, self.counter_sample_s, gate, self.seed)
        # The cycle collector off for the loop: what a step makes (tuples, dicts, records) is freed by
        # reference counting (a run leaves no cyclic garbage: gc.collect() after one finds 0
        # objects), so the collector only rescans the live workload and records, over and over:
        # 10-40 % of the loop on the 36,000-request list, growing with the heap (bench_sim.py).
        collecting = gc.isenabled()
        gc.disable()
        try:
            state.loop()
        finally:
            if collecting:
                gc.enable()
        config = {f.name: getattr(self.profile, f.name) for f in fields(self.profile)}
        config["seed"] = self.seed
        config["prefix_hit_blocks"] = state.batch.kv.hit_blocks
        return RunResult(
            policy=policy.name,
            requests=state.out.requests,
            steps=state.out.steps,
            counters=state.out.counters,
            config=config,
            client_gpu_s=state.gpu_s,
        )


class _Run:
    def __init__(
        self,
        profile: Profile,
        policy: Policy,
        workload: Workload,
        observer: RunObserver | None,
        counter_sample_s: float,
        gate: OutputPredictor | None,
        seed: int,
    ) -> None:
        self.p = profile
        self.policy = policy
        self.gate = gate  # the engine's own output predictor for its KV gate (None: no gate)
        self.rule = make_rule(profile, gate)
        self.batch = Batch(profile.kv_blocks, profile.block_size, policy)
        self.caching = profile.prefix_caching and profile.admission == "vllm"
        self.residuals = np.asarray(profile.step_residuals if profile.step_noise else (), dtype=float)
        self.rng = np.random.default_rng(seed)
        self.items = workload.items
        # when each request reaches the engine (checked every step, so computed once)
        self.at_engine_s = [it.request.arrival_s + profile.api_overhead_s for it in workload.items]
        self.observer = observer
        self.sample_s = counter_sample_s
        self.out = Records()
        self.gpu_s: dict[str, float] = {}  # engine seconds per client, to the last arrival (_attribute)
        self.window_end_s = max((it.request.arrival_s for it in workload.items), default=0.0)
        self.now = 0.0
        self.step = 0
        self.next_arrival = 0
        self.done = 0
        self.progress_every = max(1, len(workload.items) // 200)

    def loop(self) -> None:
        if self.observer:
            self.observer.on_start(self.policy.name, len(self.items))
        total = len(self.items)
        while self.done < total:
            self._arrivals()
            if not self.batch.running and self.batch.waiting() == 0:
                if self.next_arrival >= total:
                    break  # nothing left (defensive: every request has been accounted for)
                self.now = max(self.now, self.at_engine_s[self.next_arrival])
                continue
            self._one_step()
        if self.observer:
            self.observer.on_end(self.policy.name)

    def _arrivals(self) -> None:
        items, now, batch, at_engine = self.items, self.now, self.batch, self.at_engine_s
        while self.next_arrival < len(items) and at_engine[self.next_arrival] <= now:
            item, at_engine_s = items[self.next_arrival], at_engine[self.next_arrival]
            self.next_arrival += 1
            request = item.request
            room = self.p.max_model_len - request.prompt_tokens  # output tokens the context leaves
            if 0 < room < request.max_tokens:  # the server cuts max_tokens to it, as vLLM's does
                request = replace(request, max_tokens=room)
                item = WorkloadItem(request, min(item.output_tokens, room))
            seq = Seq(item, request, request.prompt_tokens)
            if room < 1 or not self.rule.fits_ever(request):
                self._leave(seq, "aborted", at_engine_s)
                continue
            seq.at_arrival = batch.state()  # before it joins the queue
            if not self.policy.on_arrival(request, at_engine_s):
                self._leave(seq, "rejected", at_engine_s)
                continue
            if self.caching:
                seq.prefix_keys = block_keys(request, self.p.block_size)
            batch.seqs[request.request_id] = seq
            if self.gate is not None:
                self.gate.prepare(request)

    def _one_step(self) -> None:
        batch = self.batch
        plan = self.rule.plan(batch, self.now)
        chunks = plan.chunks
        n_dec, context = (batch.n_decode, batch.ctx_total) if plan.decode else (0, 0)
        prefill = 0
        for seq, n in chunks:  # a loop, not two generator sums: most steps have 0 or 1 chunk
            prefill += n
            # attention reads every cached token: decoders' contexts, earlier chunks and cache
            # hits (the real engine's recorder counts the same: tokens computed before the step)
            context += seq.prefilled
        if prefill == 0 and n_dec == 0:
            raise RuntimeError("simulator stalled: nothing schedulable")  # a bug, never input
        dt = self.p.step_time_s(prefill, n_dec, context)
        if self.p.c_adapter_s:
            dt += self.p.c_adapter_s * batch.tenants_in_step(chunks, plan.decode)
        if self.residuals.size:
            dt *= float(self.residuals[self.rng.integers(self.residuals.size)])
        util = self.p.gpu_util(prefill, n_dec, context, dt)
        start = self.now
        self.now += dt
        kv, running, waiting = batch.kv, len(batch.running), batch.waiting()
        used = kv.total - kv.free
        load = _make(EngineState, (running, waiting, used / kv.total))
        self._progress(chunks, dt, util, plan.decode, load)
        step = self.step
        self.out.step_rows.append(
            (step, start, dt, prefill, n_dec, context, running, waiting, used, kv.total, util, plan.preempted)
        )
        self._complete_prefills(chunks, batch.tick + plan.decode)
        if plan.decode:
            for seq in batch.finish_due():
                self._leave(seq, "finished", self.now)
        self.step = step + 1
        if self.now >= self.out.next_sample_s:
            self.out.sample_counters(self.policy, self.now, self.sample_s)

    def _progress(
        self, chunks: list[tuple[Seq, int]], dt: float, util: float, decode: bool, load: EngineState
    ) -> None:
        by_client = self.batch.decode_service() if decode else {}
        for seq, n in chunks:
            c = seq.request.client_id
            p, d, k = by_client.get(c, (0, 0, 0))
            by_client[c] = _make(ClientStepService, (p + n, d, k))
        self._attribute(by_client, chunks, dt)
        self.policy.on_progress(_make(Progress, (self.now, dt, util, by_client, load)))

    def _attribute(
        self, by_client: dict[str, ClientStepService], chunks: list[tuple[Seq, int]], dt: float
    ) -> None:
        """Split the step's time between its clients by what each adds to the step-time model
        (its prompt tokens, decoders, attention reads and adapter); the fixed cost and the step's
        residual go in the same proportions. Only the time up to the last arrival counts: the
        fairness window of the metrics (after it every backlog drains)."""
        counted_s = min(self.now, self.window_end_s) - (self.now - dt)
        if counted_s <= 0:
            return
        p = self.p
        cpk, cd, ckv, ca = p.c_p_s + p.c_kv_s, p.c_d_s, p.c_kv_s, p.c_adapter_s
        total = 0.0  # two passes over a few clients: cheaper than a dict of costs per step
        for pre, dec, ctx in by_client.values():
            total += cpk * pre + cd * dec + ckv * ctx + ca
        for seq, _ in chunks:  # a chunk also reads its own earlier chunks and cache hits
            total += ckv * seq.prefilled
        gpu = self.gpu_s
        if total <= 0:  # a profile without per-token costs: the clients in the step alike
            for c in by_client:
                gpu[c] = gpu.get(c, 0.0) + counted_s / len(by_client)
            return
        scale = counted_s / total
        for c, (pre, dec, ctx) in by_client.items():
            gpu[c] = gpu.get(c, 0.0) + scale * (cpk * pre + cd * dec + ckv * ctx + ca)
        for seq, _ in chunks:
            gpu[seq.request.client_id] += scale * ckv * seq.prefilled

    def _complete_prefills(self, chunks: list[tuple[Seq, int]], next_tick: int) -> None:
        batch = self.batch
        for seq, n in chunks:
            seq.prefilled += n
            if seq.prefilled < seq.target:
                continue
            batch.prefill_done(seq)
            seq.generated += 1
            if seq.first_token_s is None:
                seq.first_token_s = self.now
            if seq.generated >= seq.item.output_tokens:
                batch.release(seq, batch.own_blocks(seq))
                self._leave(seq, "finished", self.now)
                continue
            batch.start_decoding(seq, next_tick)

    def _leave(self, seq: Seq, status: CompletionStatus, now_s: float) -> None:
        request = seq.request
        self.batch.seqs.pop(request.request_id, None)
        output = seq.generated if status == "finished" else 0
        done = Completion(
            request,
            status,
            output,
            now_s,
            seq.first_token_s,
            seq.admitted_s,
            seq.preemptions,
            seq.cached_tokens,
        )
        if status != "aborted":
            self.policy.on_finish(done)
        if status == "finished" and self.gate is not None:
            self.gate.observe(request, output)
        self.out.request(seq, status, now_s)
        self.done += 1
        if self.observer and (self.done % self.progress_every == 0 or self.done == len(self.items)):
            self.observer.on_advance(self.done, self.now)
