"""MoPE as the scheduler's output predictor: features from the request and live client history.

History is updated by observe() when a request finishes (the same ClientHistory the training
features replayed), so the online features match the offline ones. Text features of a request are
computed once and cached until it finishes (a requeued request is predicted again).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from equinox_cli.core.types import Request
from equinox_cli.predict.artifact import Artifact
from equinox_cli.predict.features import ClientHistory, text_features

KINDS = ("mope", "single")


class ArtifactPredictor:
    """OutputPredictor backed by an artifact's output_tokens model (`kind`: mope or single)."""

    def __init__(self, artifact: Artifact, kind: str = "mope") -> None:
        if kind not in KINDS:
            raise ValueError(kind)
        models = artifact.mope if kind == "mope" else artifact.single
        self._model = models["output_tokens"]
        self.name = f"{kind}:{artifact.name}"
        self._history = ClientHistory()
        self._text: dict[str, tuple[float, ...]] = {}
        self._route_index = (
            list(self._model.spec.features).index(self._model.router.column) if self._model.router else 0
        )

    def prepare(self, request: Request) -> None:
        if request.request_id not in self._text:
            if len(self._text) > 100_000:  # requests that never finished (aborted) must not pile up
                self._text.clear()
            self._text[request.request_id] = text_features(request.prompt)

    def _row(self, request: Request) -> list[float]:
        text = self._text.get(request.request_id)
        if text is None:
            self.prepare(request)
            text = self._text[request.request_id]
        return [float(np.log1p(request.prompt_tokens)), *text, *self._history.features(request.client_id)]

    def predict_batch(self, requests: Sequence[Request]) -> np.ndarray:
        x = np.array([self._row(r) for r in requests], dtype=np.float64)
        return self._model.predict(x, x[:, self._route_index])

    def predict_output_tokens(self, request: Request) -> float:
        return float(self.predict_batch((request,))[0])

    def observe(self, request: Request, output_tokens: int) -> None:
        self._text.pop(request.request_id, None)
        self._history.observe(request.client_id, output_tokens)


class NoPredictor:
    """The 'none' row of the ablation: nothing is known in advance (predicts 0 output tokens)."""

    name = "none"

    def prepare(self, request: Request) -> None:
        return None

    def predict_output_tokens(self, request: Request) -> float:
        return 0.0

    def observe(self, request: Request, output_tokens: int) -> None:
        return None
