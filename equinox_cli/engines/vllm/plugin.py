"""EquinoxScheduler: vLLM's v1 Scheduler with an Equinox policy in place of its waiting queue.

Loaded by vLLM in the EngineCore process through `--scheduler-cls
equinox_cli.engines.vllm.plugin.EquinoxScheduler` (or `EquinoxAsyncScheduler`, the same hooks over
vLLM's AsyncScheduler, for engines that schedule step N+1 while step N runs); configured by
environment variables that `equinox serve` sets (the engine process inherits them):
  EQUINOX_POLICY      equinox | vtc | vtc-pred | lcf | fcfs | rpm (default equinox)
  EQUINOX_PARAMS      JSON object of -P key=value pairs
  EQUINOX_PREDICTOR   moving-average (default), none, or a MoPE artifact folder
  EQUINOX_KV_GATE     1: the engine's KV gate (admit against predicted KV need) with its own
                      predictor of the same kind, whatever the policy
  EQUINOX_LOG_DIR     if set: per-step and per-request JSON lines (recorder.py) go there
vLLM's own schedule() runs unchanged: this class only swaps the waiting queue (`kv_holding_waiting`
stays vLLM's: it holds only requests that already own KV blocks, and vLLM drains it first), charges
each step's scheduled tokens to the policy once the model ran (with the measured step time and
utilisation), and forwards finishes and aborts.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vllm.v1.core.sched.async_scheduler import AsyncScheduler
from vllm.v1.core.sched.scheduler import Scheduler
from vllm.v1.request import RequestStatus

from equinox_cli.core.kv_budget import peak_need_blocks
from equinox_cli.core.protocols import OutputPredictor, Policy
from equinox_cli.core.types import Completion, EngineState, Request
from equinox_cli.engines.telemetry import best_sampler
from equinox_cli.engines.vllm.charging import request_service, step_progress
from equinox_cli.engines.vllm.queue import PolicyQueue
from equinox_cli.engines.vllm.recorder import EngineLog, RequestTrack
from equinox_cli.policies import NEEDS_PREDICTOR, make_policy
from equinox_cli.predict.registry import predictor_from_spec


def gate_predictor_from_env() -> OutputPredictor | None:
    """The engine's own predictor for its KV gate, when EQUINOX_KV_GATE=1 (else None)."""
    if os.environ.get("EQUINOX_KV_GATE", "0") != "1":
        return None
    return predictor_from_spec(os.environ.get("EQUINOX_PREDICTOR", "moving-average"), None, {})


def policy_from_env() -> Policy:
    name = os.environ.get("EQUINOX_POLICY", "equinox")
    params = {str(k): str(v) for k, v in json.loads(os.environ.get("EQUINOX_PARAMS", "{}")).items()}
    spec = os.environ.get("EQUINOX_PREDICTOR", "moving-average")
    predictor = predictor_from_spec(spec, None, {}) if name in NEEDS_PREDICTOR else None
    return make_policy(name, params, predictor)


@dataclass(slots=True)
class _Step:
    """One scheduled step, kept from schedule() until its output comes back."""

    start_s: float
    scheduled: dict[str, int]
    computed_before: dict[str, int]
    running: int
    waiting: int
    kv_used_blocks: int
    preempted: int


class EquinoxScheduler(Scheduler):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.equinox_policy = policy_from_env()  # `self.policy` is vLLM's own attribute
        self.waiting = PolicyQueue(self.equinox_policy)
        self._eq_sampler = best_sampler()
        self._eq_clients: dict[str, str] = {}
        self._eq_prompt: dict[str, int] = {}
        self._eq_steps: dict[int, _Step] = {}  # id(scheduler output) → step (two in flight if async)
        log_dir = os.environ.get("EQUINOX_LOG_DIR")
        self._eq_log = EngineLog(Path(log_dir)) if log_dir else None
        if self._eq_log is not None:
            self._eq_log.config(self._eq_engine_config())
        self._eq_tracks: dict[str, RequestTrack] = {}
        self._eq_outputs: dict[str, int] = {}  # request id → output tokens already charged
        # the KV gate: the final size (prompt + predicted output) of each admitted request
        self._eq_gate = gate_predictor_from_env()
        self._eq_promise_tokens: dict[str, int] = {}
        if self._eq_gate is not None:
            self.waiting.admit_gate = self._eq_admit_gate
            self.waiting.on_pop = self._eq_on_pop
        self._eq_final: dict[str, int] = {}  # output tokens of requests freed in this update
        self._eq_first_token_s: dict[str, float] = {}  # on the queue's clock (time.monotonic)

    # --- vLLM hooks -------------------------------------------------------------------------
    def add_request(self, request: Any) -> None:
        at_arrival = self._eq_state() if self._eq_log is not None else None  # itself excluded
        super().add_request(request)
        queue: PolicyQueue = self.waiting
        eq = queue.request_of(request.request_id)
        if eq is not None:
            self._eq_clients[request.request_id] = eq.client_id
            self._eq_prompt[request.request_id] = eq.prompt_tokens
            if self._eq_gate is not None:
                self._eq_gate.prepare(eq)
            if self._eq_log is not None:
                self._eq_tracks[request.request_id] = RequestTrack(
                    _client_request_id(request),
                    eq.client_id,
                    time.monotonic(),
                    eq.prompt_tokens,
                    eq.max_tokens,
                    at_arrival,  # type: ignore[arg-type]
                )
        if queue.rejected:  # admission control (RPM): abort, never queue
            rejected = [r.request_id for r in queue.rejected]
            queue.rejected.clear()
            self.finish_requests(rejected, RequestStatus.FINISHED_ABORTED)

    def schedule(self, *args: Any, **kwargs: Any) -> Any:
        start = time.monotonic()
        before_step = self._eq_state() if self._eq_log is not None else None
        output = super().schedule(*args, **kwargs)
        scheduled = dict(output.num_scheduled_tokens)
        if not scheduled:
            return output
        requests = self.requests
        before = {rid: requests[rid].num_computed_tokens - n for rid, n in scheduled.items()}
        if len(self._eq_steps) > 4:  # never more than two in flight: an output vLLM dropped
            self._eq_steps.pop(next(iter(self._eq_steps)))
        self._eq_steps[id(output)] = _Step(
            start,
            scheduled,
            before,
            len(self.running),
            len(self.waiting) + len(self.kv_holding_waiting),
            self._kv_used_blocks(),
            len(getattr(output, "preempted_req_ids", None) or ()),
        )
        if before_step is not None:
            self._eq_note_admissions(scheduled, start, before_step)
        return output

    def update_from_output(self, scheduler_output: Any, model_runner_output: Any) -> Any:
        result = super().update_from_output(scheduler_output, model_runner_output)
        step = self._eq_steps.pop(id(scheduler_output), None)
        if step is not None:
            self._eq_charge(step, time.monotonic())
        for rid in self._eq_final:
            self._eq_clients.pop(rid, None)
            self._eq_prompt.pop(rid, None)
            self._eq_outputs.pop(rid, None)
            self._eq_promise_tokens.pop(rid, None)
        self._eq_final.clear()
        return result

    def _free_request(self, request: Any, delay_free_blocks: bool = False) -> Any:
        queue: PolicyQueue = self.waiting
        rid = request.request_id
        eq = queue.forget(rid)
        self._eq_final[rid] = int(request.num_output_tokens)  # its last step is charged after this
        status = "finished" if request.status != RequestStatus.FINISHED_ABORTED else "aborted"
        now = time.monotonic()
        output = int(request.num_output_tokens)
        first_token_s = self._eq_first_token_s.pop(rid, now if output > 0 else None)
        if eq is not None:
            self.equinox_policy.on_finish(
                Completion(eq, status, output, now, first_token_s, None, int(request.num_preemptions))  # type: ignore[arg-type]
            )
            if self._eq_gate is not None and status == "finished":
                self._eq_gate.observe(eq, int(request.num_output_tokens))
        track = self._eq_tracks.pop(rid, None)
        if track is not None and self._eq_log is not None:
            if math.isnan(track.first_token_s) and request.num_output_tokens > 0:
                track.first_token_s = now
            self._eq_log.request(
                track, status, int(request.num_output_tokens), now, int(request.num_preemptions)
            )
        return super()._free_request(request, delay_free_blocks)

    # --- the KV gate (EQUINOX_KV_GATE=1, any policy) ------------------------------------------------
    # vLLM admits while a request's prompt fits, then preempts when decodes outgrow the cache. With
    # a predicted output, admit only while the running batch's predicted *peak* need over time
    # (core/kv_budget.py: requests finish at staggered times) fits the whole cache; an empty batch
    # always admits. Under-prediction is left to vLLM's preemption, as in the simulator.
    def _eq_need(self, eq: Request) -> float:
        assert self._eq_gate is not None
        return self._eq_gate.predict_output_tokens(eq)

    def _eq_admit_gate(self, eq: Request) -> bool:
        if not self.running:
            return True
        need = max(1, math.ceil(self._eq_need(eq)))
        batch = [(eq.prompt_tokens, need)]
        for request in self.running:
            now = int(request.num_tokens)
            final = self._eq_promise_tokens.get(request.request_id, now + 1)
            batch.append((now, max(1, final - now)))
        return peak_need_blocks(batch, self.block_size) <= self._kv_total_blocks()

    def _eq_on_pop(self, eq: Request) -> None:
        self._eq_promise_tokens[eq.request_id] = eq.prompt_tokens + max(1, math.ceil(self._eq_need(eq)))

    # --- Equinox bookkeeping ------------------------------------------------------------------
    def _eq_charge(self, step: _Step, end_s: float) -> None:
        record = getattr(self._eq_sampler, "record_step", None)
        if record is not None:
            record(step.start_s, end_s)
        util = self._eq_sampler.sample()
        generated = self._eq_generated(step.scheduled)
        first = self._eq_first_token_s
        for rid, n in generated.items():
            if n > 0 and rid not in first and rid in self.requests:
                first[rid] = end_s  # the policy's latency term reads it at finish
        progress = step_progress(
            step.scheduled,
            step.computed_before,
            generated,
            self._eq_prompt,
            self._eq_clients,
            end_s,
            end_s - step.start_s,
            util,
            self._eq_state(),
        )
        if progress.by_client:
            self.equinox_policy.on_progress(progress)
        if self._eq_log is not None:
            self._eq_note_first_tokens(step.scheduled, end_s)
            self._eq_log_step(step, end_s, util, generated)

    def _eq_generated(self, scheduled: dict[str, int]) -> dict[str, int]:
        """Output tokens each request of the step gained since it was last charged."""
        generated = {}
        requests, seen, final = self.requests, self._eq_outputs, self._eq_final
        for rid in scheduled:
            request = requests.get(rid)
            if request is not None:
                now = request.num_output_tokens
                generated[rid] = now - seen.get(rid, 0)
                seen[rid] = now
            elif rid in final:  # finished in this update: freed already
                generated[rid] = final[rid] - seen.get(rid, 0)
        return generated

    def _eq_log_step(self, step: _Step, end_s: float, util: float, generated: dict[str, int]) -> None:
        assert self._eq_log is not None
        prefill = context = prefill_seqs = prefill_context = 0
        for rid, n in step.scheduled.items():
            p, k = request_service(n, step.computed_before[rid], self._eq_prompt.get(rid, 0))
            prefill, context = prefill + p, context + k
            if p > 0:  # the step's prefilling sequences, and the context their new tokens attend to
                prefill_seqs, prefill_context = prefill_seqs + 1, prefill_context + k
        decode = sum(1 for g in generated.values() if g > 0)  # sequences that produced a token
        step_time = end_s - step.start_s
        self._eq_log.step(
            {
                "start_s": self._eq_log.rel(step.start_s),
                "step_time_s": step_time,
                "prefill_tokens": prefill,
                "decode_seqs": decode,
                "context_tokens": context,
                # not report columns (the step model does not use them yet): kept in the raw log
                # to find out what a real prefill step costs (README, "How close to a real engine")
                "prefill_seqs": prefill_seqs,
                "prefill_context_tokens": prefill_context,
                "running": step.running,
                "waiting": step.waiting,
                "kv_used_blocks": step.kv_used_blocks,
                "kv_total_blocks": self._kv_total_blocks(),
                "gpu_util": util,
                "preempted": step.preempted,
                "throughput_tokens_per_s": (prefill + decode) / step_time if step_time > 0 else None,
            }
        )

    def _eq_note_admissions(self, scheduled: dict[str, int], now_s: float, state: EngineState) -> None:
        """The engine as the step that admitted a request began (waiting includes the request)."""
        for rid in scheduled:
            track = self._eq_tracks.get(rid)
            if track is not None and track.at_admit is None:
                track.admitted_s, track.at_admit = now_s, state

    def _eq_note_first_tokens(self, scheduled: dict[str, int], now_s: float) -> None:
        for rid in scheduled:
            track, request = self._eq_tracks.get(rid), self.requests.get(rid)
            waiting_first = track is not None and math.isnan(track.first_token_s)
            if waiting_first and request is not None and request.num_output_tokens > 0:
                track.first_token_s = now_s  # type: ignore[union-attr]

    def _eq_state(self) -> EngineState:
        total = self._kv_total_blocks()
        used = self._kv_used_blocks()
        waiting = len(self.waiting) + len(self.kv_holding_waiting)
        return EngineState(len(self.running), waiting, used / total if total else 0.0)

    def _eq_engine_config(self) -> dict[str, object]:
        """What the simulator needs to model this engine (api.calibrated_profile reads it)."""
        return {
            "block_size": int(self.block_size),
            "max_num_seqs": int(self.max_num_running_reqs),
            "max_num_batched_tokens": int(self.max_num_scheduled_tokens),
            "long_prefill_tokens": int(self.scheduler_config.long_prefill_token_threshold),
            "max_model_len": int(self.max_model_len),
            "kv_total_blocks": self._kv_total_blocks(),
            "prefix_caching": bool(self.cache_config.enable_prefix_caching),
        }

    def _kv_total_blocks(self) -> int:
        """Blocks requests can hold: vLLM's pool keeps one as its null block."""
        return int(self.kv_cache_manager.block_pool.num_gpu_blocks) - 1

    def _kv_used_blocks(self) -> int:
        return self._kv_total_blocks() - int(self.kv_cache_manager.block_pool.get_num_free_blocks())


class EquinoxAsyncScheduler(EquinoxScheduler, AsyncScheduler):
    """The same hooks over vLLM's AsyncScheduler (MRO: these hooks, then AsyncScheduler's)."""


def _client_request_id(request: Any) -> str:
    extra = getattr(request.sampling_params, "extra_args", None) or {}
    return str(extra.get("equinox_request") or request.request_id)
