"""EquinoxScheduler: vLLM's v1 Scheduler with an Equinox policy in place of its waiting queue.

Loaded by vLLM in the EngineCore process through `--scheduler-cls
equinox_cli.engines.vllm.plugin.EquinoxScheduler`; configured by environment variables that
`equinox serve` sets (the engine process inherits them):
  EQUINOX_POLICY      equinox | vtc | vtc-pred | lcf | fcfs | rpm (default equinox)
  EQUINOX_PARAMS      JSON object of -P key=value pairs
  EQUINOX_PREDICTOR   moving-average (default), none, or a MoPE artifact folder
vLLM's own schedule() runs unchanged: this class only swaps the queue, charges each step's
scheduled tokens to the policy after the model ran (with the measured step time and utilisation),
and forwards finishes and aborts.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from vllm.v1.core.sched.scheduler import Scheduler
from vllm.v1.request import RequestStatus

from equinox_cli.core.protocols import Policy
from equinox_cli.core.types import Completion
from equinox_cli.engines.telemetry import best_sampler
from equinox_cli.engines.vllm.charging import step_progress
from equinox_cli.engines.vllm.queue import PolicyQueue
from equinox_cli.policies import NEEDS_PREDICTOR, make_policy
from equinox_cli.predict.registry import predictor_from_spec


def policy_from_env() -> Policy:
    name = os.environ.get("EQUINOX_POLICY", "equinox")
    params = {str(k): str(v) for k, v in json.loads(os.environ.get("EQUINOX_PARAMS", "{}")).items()}
    spec = os.environ.get("EQUINOX_PREDICTOR", "moving-average")
    predictor = predictor_from_spec(spec, None, {}) if name in NEEDS_PREDICTOR else None
    return make_policy(name, params, predictor)


class EquinoxScheduler(Scheduler):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.equinox_policy = policy_from_env()  # `self.policy` is vLLM's own attribute
        self.waiting = PolicyQueue(self.equinox_policy)
        self._eq_sampler = best_sampler()
        self._eq_clients: dict[str, str] = {}
        self._eq_prompt: dict[str, int] = {}
        self._eq_step: tuple[float, dict[str, int]] | None = None

    def add_request(self, request: Any) -> None:
        super().add_request(request)
        queue: PolicyQueue = self.waiting
        eq = queue.request_of(request.request_id)
        if eq is not None:
            self._eq_clients[request.request_id] = eq.client_id
            self._eq_prompt[request.request_id] = eq.prompt_tokens
        if queue.rejected:  # admission control (RPM): abort, never queue
            rejected = [r.request_id for r in queue.rejected]
            queue.rejected.clear()
            self.finish_requests(rejected, RequestStatus.FINISHED_ABORTED)

    def schedule(self, *args: Any, **kwargs: Any) -> Any:
        start = time.monotonic()
        output = super().schedule(*args, **kwargs)
        self._eq_step = (start, dict(output.num_scheduled_tokens))
        return output

    def update_from_output(self, scheduler_output: Any, model_runner_output: Any) -> Any:
        result = super().update_from_output(scheduler_output, model_runner_output)
        if self._eq_step is not None:
            start, scheduled = self._eq_step
            self._eq_step = None
            end = time.monotonic()
            record = getattr(self._eq_sampler, "record_step", None)
            if record is not None:
                record(start, end)
            computed = {rid: self._computed(rid, n) for rid, n in scheduled.items()}
            progress = step_progress(
                scheduled,
                computed,
                self._eq_prompt,
                self._eq_clients,
                end,
                end - start,
                self._eq_sampler.sample(),
            )
            if progress.by_client:
                self.equinox_policy.on_progress(progress)
        return result

    def _computed(self, request_id: str, scheduled: int) -> int:
        request = self.requests.get(request_id)
        return int(request.num_computed_tokens) if request is not None else scheduled

    def _free_request(self, request: Any, delay_free_blocks: bool = False) -> Any:
        queue: PolicyQueue = self.waiting
        eq = queue.forget(request.request_id)
        self._eq_clients.pop(request.request_id, None)
        self._eq_prompt.pop(request.request_id, None)
        if eq is not None:
            status = "finished" if request.status != RequestStatus.FINISHED_ABORTED else "aborted"
            now = time.monotonic()
            self.equinox_policy.on_finish(
                Completion(eq, status, int(request.num_output_tokens), now, None, None, 0)  # type: ignore[arg-type]
            )
        return super()._free_request(request, delay_free_blocks)
