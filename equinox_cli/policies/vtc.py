"""VTC (Sheng et al., OSDI'24, "Fairness in Serving Large Language Models") and its variants.

vtc       charge w_p per prompt token at admission and w_q per decode token as generated, each
          divided by the client's weight (weighted VTC); admit the smallest counter; counter lift.
vtc-pred  charge w_q x predicted output tokens at admission instead, correct with the truth at finish.
lcf       VTC without the counter lift (least counter first), to show why the lift matters.
"""

from __future__ import annotations

from dataclasses import dataclass

from equinox_cli.core.protocols import OutputPredictor
from equinox_cli.core.types import Completion, Progress, Request
from equinox_cli.policies.counter_base import CounterPolicy


@dataclass(frozen=True, slots=True)
class VTCParams:
    w_p: float = 1.0
    w_q: float = 2.0

    def validate(self) -> str | None:
        if self.w_p < 0 or self.w_q < 0:
            return "w_p and w_q must be >= 0"
        return None


class VTCPolicy(CounterPolicy):
    name = "vtc"

    def __init__(self, params: VTCParams | None = None) -> None:
        super().__init__()
        self.params = params or VTCParams()

    def _admission_cost(self, request: Request, now_s: float) -> float:
        return self.params.w_p * request.prompt_tokens / request.weight

    def on_progress(self, progress: Progress) -> None:
        w_q = self.params.w_q
        counter, weight = self._counter, self._weight
        for client, (_, decode_tokens, _) in progress.by_client.items():
            if decode_tokens:
                counter[client] += w_q * decode_tokens / weight[client]


class LCFPolicy(VTCPolicy):
    name = "lcf"
    lift = False


class VTCPredPolicy(VTCPolicy):
    name = "vtc-pred"

    def __init__(self, params: VTCParams | None, predictor: OutputPredictor) -> None:
        super().__init__(params)
        self._predictor = predictor
        self._predicted: dict[str, float] = {}

    def on_arrival(self, request: Request, now_s: float) -> bool:
        self._predictor.prepare(request)
        return super().on_arrival(request, now_s)

    def _admission_cost(self, request: Request, now_s: float) -> float:
        predicted = self._predictor.predict_output_tokens(request)
        self._predicted[request.request_id] = predicted
        prompt = self.params.w_p * request.prompt_tokens
        return (prompt + self.params.w_q * predicted) / request.weight

    def on_progress(self, progress: Progress) -> None:
        return None  # decode was charged up front

    def on_finish(self, completion: Completion) -> None:
        request = completion.request
        predicted = self._predicted.pop(request.request_id, None)
        if predicted is not None:
            error = completion.output_tokens - predicted
            self._add(request.client_id, self.params.w_q * error / request.weight)
        if completion.status == "finished":
            self._predictor.observe(request, completion.output_tokens)
        super().on_finish(completion)
