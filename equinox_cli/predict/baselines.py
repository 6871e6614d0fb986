"""Baseline output-token predictors.

MovingAveragePredictor is VTC's per-client moving average (window 5): the mean of the client's last
5 finished output lengths; a client with no history gets the mean over all finished requests, and
before anything finished, `prior_tokens` (capped by the request's max_tokens).
OraclePredictor returns the true output length (an upper bound for experiments).
NoPredictor knows nothing (0 tokens: the ablation's 'none' row).
None has a latency or step model (OutputOnly): their forecasts carry the output alone.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

from equinox_cli.core.protocols import RequestForecast, StepForecast
from equinox_cli.core.types import EngineState, Request


class OutputOnly:
    """The Predictor methods of a predictor that knows output lengths only."""

    @property
    def forecasts_latency(self) -> bool:
        # a subclass that overrides forecast() may carry latency: it is then asked every time
        return type(self).forecast is not OutputOnly.forecast

    def predict_output_tokens(self, request: Request) -> float:
        raise NotImplementedError

    def forecast(self, request: Request, load: EngineState) -> RequestForecast:
        return RequestForecast(self.predict_output_tokens(request), None, None)

    def predict_step(
        self, prefill_tokens: int, decode_seqs: int, context_tokens: int, load: EngineState
    ) -> StepForecast | None:
        return None


class MovingAveragePredictor(OutputOnly):
    name = "moving-average"

    def __init__(self, window: int = 5, prior_tokens: float = 128.0) -> None:
        self.window = window
        self.prior_tokens = prior_tokens
        self._history: dict[str, deque[int]] = {}
        self._window_sum: dict[str, int] = {}  # Σ of each client's window, kept as it slides
        self._sum = 0
        self._count = 0

    def prepare(self, request: Request) -> None:
        return None

    def predict_output_tokens(self, request: Request) -> float:
        history = self._history.get(request.client_id)
        if history:
            guess = self._window_sum[request.client_id] / len(history)
        elif self._count:
            guess = self._sum / self._count
        else:
            guess = self.prior_tokens
        return float(min(guess, request.max_tokens))

    def observe(self, request: Request, output_tokens: int) -> None:
        client = request.client_id
        history = self._history.get(client)
        if history is None:
            history = self._history[client] = deque(maxlen=self.window)
        dropped = history[0] if len(history) == self.window else 0
        history.append(output_tokens)
        self._window_sum[client] = self._window_sum.get(client, 0) + output_tokens - dropped
        self._sum += output_tokens
        self._count += 1


class OraclePredictor(OutputOnly):
    name = "oracle"

    def __init__(self, truth: Mapping[str, int]) -> None:
        self._truth = truth

    def prepare(self, request: Request) -> None:
        return None

    def predict_output_tokens(self, request: Request) -> float:
        # the engine may have cut max_tokens to the model's context: the output is cut with it
        return float(min(self._truth[request.request_id], request.max_tokens))

    def observe(self, request: Request, output_tokens: int) -> None:
        return None


class NoPredictor(OutputOnly):
    """The 'none' row of the ablation: nothing is known in advance (predicts 0 output tokens)."""

    name = "none"

    def prepare(self, request: Request) -> None:
        return None

    def predict_output_tokens(self, request: Request) -> float:
        return 0.0

    def observe(self, request: Request, output_tokens: int) -> None:
        return None
