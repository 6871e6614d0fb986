"""Equinox: holistic fairness from a User Fairness Counter and a Resource Fairness Counter.

The paper (arXiv 2508.16646) names the parts but its formulas are not public; this is our exact,
documented definition. Both counters are in weighted-token units, each charge divided by the
client's weight, so that HF can add them:

  UFC_c  what c's users received. At admission: (w_p·prompt + w_q·predicted_output) − credit, where
         credit = γ · max(0, queueing_s − ttft_slo_s) (tokens per second of excess wait), capped at
         the request's own charge, so a client whose users waited long is favoured. At finish the
         prediction is corrected: + w_q·(actual − predicted). Proactive: the predictor is charged
         before the request runs (DESIGN.md §1).
  RFC_c  what c cost the operator. Each step, c's share of GPU time,
         step_s · util · work_c / Σ work, with work = a_p·prefill + a_d·decode + a_kv·context
         (long contexts and big prefills cost what they really cost), converted to token units by
         the engine's measured exchange rate (an EMA of weighted tokens per busy GPU-second).
  HF_c = α·UFC_c + β·RFC_c   (α + β = 1; both terms already in the same unit, so norms are 1).

Admitting against predicted KV need is an engine feature (`-E kv_gate=true`, with the engine's own
predictor), open to every policy, not part of this ordering.

Admit from the backlogged client with the lowest HF. The counter lift raises UFC and RFC by the
same amount d so that HF reaches the minimum HF of the other backlogged clients (VTC's lift on HF).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from equinox_cli.core.protocols import OutputPredictor
from equinox_cli.core.types import Completion, Progress, Request
from equinox_cli.policies.counter_base import CounterPolicy


@dataclass(frozen=True, slots=True)
class EquinoxParams:
    alpha: float = 0.5  # weight of the user counter; beta = 1 - alpha
    w_p: float = 1.0
    w_q: float = 2.0
    gamma: float = 100.0  # token credit per second of queueing beyond the SLO
    ttft_slo_s: float = 2.0
    a_p: float = 1.0  # RFC work weights: prefill token, decode token, context token attended
    a_d: float = 1.0
    a_kv: float = 0.003
    rate_ema: float = 0.05  # smoothing of the tokens-per-GPU-second exchange rate

    def validate(self) -> str | None:
        if not 0.0 <= self.alpha <= 1.0:
            return f"alpha must be in [0, 1], got {self.alpha}"
        if min(self.w_p, self.w_q, self.gamma, self.ttft_slo_s, self.a_p, self.a_d, self.a_kv) < 0:
            return "w_p, w_q, gamma, ttft_slo_s, a_p, a_d, a_kv must be >= 0"
        if not 0.0 < self.rate_ema <= 1.0:
            return f"rate_ema must be in (0, 1], got {self.rate_ema}"
        return None


class EquinoxPolicy(CounterPolicy):
    name = "equinox"

    def __init__(self, params: EquinoxParams | None, predictor: OutputPredictor) -> None:
        super().__init__()
        self.params = params or EquinoxParams()
        self._predictor = predictor
        self._ufc: dict[str, float] = {}
        self._rfc: dict[str, float] = {}
        self._predicted: dict[str, float] = {}
        self._tokens_per_gpu_s: float | None = None

    @property
    def beta(self) -> float:
        return 1.0 - self.params.alpha

    def user_counters(self) -> Mapping[str, float]:
        return self._ufc

    def resource_counters(self) -> Mapping[str, float]:
        return self._rfc

    def on_arrival(self, request: Request, now_s: float) -> bool:
        self._ufc.setdefault(request.client_id, 0.0)
        self._rfc.setdefault(request.client_id, 0.0)
        self._predictor.prepare(request)  # text features at arrival, not in the admission path
        return super().on_arrival(request, now_s)

    def _raise_counter(self, client: str, floor: float) -> None:
        lift = floor - self._counter[client]
        if lift > 0:
            self._ufc[client] += lift
            self._rfc[client] += lift
            self._counter[client] = floor

    def _admission_cost(self, request: Request, now_s: float) -> float:
        p = self.params
        predicted = self._predictor.predict_output_tokens(request)
        self._predicted[request.request_id] = predicted
        charge = p.w_p * request.prompt_tokens + p.w_q * predicted
        excess_wait_s = max(0.0, now_s - request.arrival_s - p.ttft_slo_s)
        user = (charge - min(charge, p.gamma * excess_wait_s)) / request.weight
        self._ufc[request.client_id] += user
        return p.alpha * user  # HF grows by alpha * UFC charge

    def requeue(self, request: Request, now_s: float) -> None:
        refund = self._admission_charge.get(request.request_id, 0.0)
        if self.params.alpha > 0:
            self._ufc[request.client_id] -= refund / self.params.alpha
        super().requeue(request, now_s)

    def on_progress(self, progress: Progress) -> None:
        p = self.params
        works = {
            c: p.a_p * s.prefill_tokens + p.a_d * s.decode_tokens + p.a_kv * s.context_tokens
            for c, s in progress.by_client.items()
        }
        total_work = sum(works.values())
        busy_s = progress.step_time_s * progress.gpu_util
        if total_work <= 0 or busy_s <= 0:
            return
        tokens = sum(p.w_p * s.prefill_tokens + p.w_q * s.decode_tokens for s in progress.by_client.values())
        rate = tokens / busy_s
        ema = self._tokens_per_gpu_s
        ema = rate if ema is None else ema + p.rate_ema * (rate - ema)
        self._tokens_per_gpu_s = ema
        beta = self.beta
        for client, work in works.items():
            charge = busy_s * work / total_work * ema / self._weight[client]
            self._rfc[client] += charge
            self._counter[client] += beta * charge

    def on_finish(self, completion: Completion) -> None:
        request = completion.request
        predicted = self._predicted.pop(request.request_id, None)
        if predicted is not None:
            correction = self.params.w_q * (completion.output_tokens - predicted) / request.weight
            self._ufc[request.client_id] += correction
            self._add(request.client_id, self.params.alpha * correction)
        if completion.status == "finished":
            self._predictor.observe(request, completion.output_tokens)
        super().on_finish(completion)
