"""A learned predictor guarded by a simple one: blend the two, weighted by recent accuracy.

MoPE can be worse than VTC's moving average when traffic shifts away from what it was trained on
(a new tenant mix, new prompts). Both predict every request; when a request finishes, each one's
absolute error updates its exponential average (`ema`). Until `warmup` requests have finished the
primary predicts alone; after that the prediction is the inverse-error weighted mean

    w = e_fallback / (e_primary + e_fallback),   guess = w * primary + (1 - w) * fallback

so the one that has been more accurate lately weighs more, and where the two err on different
requests the blend beats both (chosen over switching to the better one and over keeping the
errors per client on bench_ablation's tuning seeds 1 and 2; docs/equinox.md has the figures).
Deterministic: the weight depends only on the finished requests seen so far. Latency and step
forecasts come from the primary (the moving average has none).
"""

from __future__ import annotations

from equinox_cli.core.protocols import Predictor, RequestForecast, StepForecast
from equinox_cli.core.types import EngineState, Request


class GuardedPredictor:
    def __init__(
        self,
        primary: Predictor,
        fallback: Predictor,
        name: str = "guarded",
        ema: float = 0.05,
        warmup: int = 20,
    ) -> None:
        self.primary, self.fallback = primary, fallback
        self.name = name
        self._ema, self._warmup = ema, warmup
        self.error = [0.0, 0.0]  # recent mean absolute error of primary, fallback
        self.finished = 0
        self._pending: dict[str, tuple[float, float]] = {}

    def primary_weight(self) -> float:
        """The primary's share of the blend (1.0 during warm-up, or while both are exact)."""
        total = self.error[0] + self.error[1]
        if self.finished < self._warmup or total <= 0.0:
            return 1.0
        return self.error[1] / total

    @property
    def forecasts_latency(self) -> bool:
        return self.primary.forecasts_latency

    def prepare(self, request: Request) -> None:
        self.primary.prepare(request)
        self.fallback.prepare(request)

    def predict_output_tokens(self, request: Request) -> float:
        guesses = (
            self.primary.predict_output_tokens(request),
            self.fallback.predict_output_tokens(request),
        )
        if len(self._pending) > 100_000:  # requests that never finished (aborted) must not pile up
            self._pending.clear()
        self._pending[request.request_id] = guesses
        weight = self.primary_weight()
        return weight * guesses[0] + (1.0 - weight) * guesses[1]

    def forecast(self, request: Request, load: EngineState) -> RequestForecast:
        latency = self.primary.forecast(request, load)
        return RequestForecast(self.predict_output_tokens(request), latency.ttft_s, latency.e2e_s)

    def predict_step(
        self, prefill_tokens: int, decode_seqs: int, context_tokens: int, load: EngineState
    ) -> StepForecast | None:
        return self.primary.predict_step(prefill_tokens, decode_seqs, context_tokens, load)

    def observe(self, request: Request, output_tokens: int) -> None:
        guesses = self._pending.pop(request.request_id, None)
        if guesses is not None:
            self.finished += 1
            rate = max(self._ema, 1.0 / self.finished)  # a plain mean until 1/ema requests
            for i, guess in enumerate(guesses):
                self.error[i] += rate * (abs(guess - output_tokens) - self.error[i])
        self.primary.observe(request, output_tokens)
        self.fallback.observe(request, output_tokens)
