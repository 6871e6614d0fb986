"""Baseline output-token predictors.

MovingAveragePredictor is VTC's per-client moving average (window 5): the mean of the client's last
5 finished output lengths; a client with no history gets the mean over all finished requests, and
before anything finished, `prior_tokens` (capped by the request's max_tokens).
OraclePredictor returns the true output length (an upper bound for experiments).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

from equinox_cli.core.types import Request


class MovingAveragePredictor:
    name = "moving-average"

    def __init__(self, window: int = 5, prior_tokens: float = 128.0) -> None:
        self.window = window
        self.prior_tokens = prior_tokens
        self._history: dict[str, deque[int]] = {}
        self._sum = 0
        self._count = 0

    def prepare(self, request: Request) -> None:
        return None

    def predict_output_tokens(self, request: Request) -> float:
        history = self._history.get(request.client_id)
        if history:
            guess = sum(history) / len(history)
        elif self._count:
            guess = self._sum / self._count
        else:
            guess = self.prior_tokens
        return float(min(guess, request.max_tokens))

    def observe(self, request: Request, output_tokens: int) -> None:
        history = self._history.setdefault(request.client_id, deque(maxlen=self.window))
        history.append(output_tokens)
        self._sum += output_tokens
        self._count += 1


class OraclePredictor:
    name = "oracle"

    def __init__(self, truth: Mapping[str, int]) -> None:
        self._truth = truth

    def prepare(self, request: Request) -> None:
        return None

    def predict_output_tokens(self, request: Request) -> float:
        return float(self._truth[request.request_id])

    def observe(self, request: Request, output_tokens: int) -> None:
        return None
