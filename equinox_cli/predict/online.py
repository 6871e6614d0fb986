"""MoPE as the scheduler's predictor: features from the request, live client history and the
engine's load.

History is updated by observe() when a request finishes (the same ClientHistory the training
features replayed), so the online features match the offline ones. Text features of a request are
computed once and cached until it finishes (a requeued request is predicted again). The latency
experts (ttft_s, e2e_s) take the engine's load as their last three features, and the step experts
(step_time_s, gpu_util) a step's shape and load, as in training (features.py); an artifact trained
without a target predicts None for it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from equinox_cli.core.protocols import RequestForecast, StepForecast
from equinox_cli.core.types import EngineState, Request
from equinox_cli.predict.artifact import Artifact
from equinox_cli.predict.features import ClientHistory, text_features
from equinox_cli.predict.mope import TargetModel

KINDS = ("mope", "single")


class ArtifactPredictor:
    """Predictor backed by an artifact's models (`kind`: mope or single)."""

    def __init__(self, artifact: Artifact, kind: str = "mope") -> None:
        if kind not in KINDS:
            raise ValueError(kind)
        models = artifact.mope if kind == "mope" else artifact.single
        self._model = models["output_tokens"]
        self._others: dict[str, TargetModel] = {
            n: models[n] for n in ("ttft_s", "e2e_s", "step_time_s", "gpu_util") if n in models
        }
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

    @property
    def forecasts_latency(self) -> bool:
        return "ttft_s" in self._others

    def forecast(self, request: Request, load: EngineState) -> RequestForecast:
        row = np.array([[*self._row(request), *load]], dtype=np.float64)
        x = row[:, : len(self._model.spec.features)]
        output = float(self._model.predict(x, x[:, self._route_index])[0])
        ttft, e2e = (_one(self._others.get(name), row) for name in ("ttft_s", "e2e_s"))
        return RequestForecast(output, ttft, e2e)

    def predict_step(
        self, prefill_tokens: int, decode_seqs: int, context_tokens: int, load: EngineState
    ) -> StepForecast | None:
        time_model, util_model = self._others.get("step_time_s"), self._others.get("gpu_util")
        if time_model is None or util_model is None:
            return None
        row = np.array(
            [[prefill_tokens, decode_seqs, context_tokens, load.running, load.kv_used_frac]], dtype=np.float64
        )
        tokens = prefill_tokens + decode_seqs
        route = np.array([prefill_tokens / tokens if tokens else 0.0])  # the step router's prefill share
        step_s = float(time_model.predict(row, route)[0])
        util = float(util_model.predict(row, route)[0])
        return StepForecast(step_s, min(max(util, 0.0), 1.0))

    def observe(self, request: Request, output_tokens: int) -> None:
        self._text.pop(request.request_id, None)
        self._history.observe(request.client_id, output_tokens)


def _one(model: TargetModel | None, row: np.ndarray) -> float | None:
    """One request's prediction from a latency model (its features are the row's first columns)."""
    if model is None:
        return None
    x = row[:, : len(model.spec.features)]
    route = x[:, list(model.spec.features).index(model.router.column)] if model.router else x[:, 0]
    return float(model.predict(x, route)[0])
