"""MoPE: a Mixture of Prediction Experts with a fixed, documented router per target.

Routing rules (deterministic; thresholds are fixed at training time and stored in the manifest):
  output_tokens   by prompt-length regime: log(1 + prompt_tokens), cut at the training tertiles
                  (short, medium, long prompts).
  ttft_s, e2e_s   by the queue at arrival: waiting_at_arrival, cut at the training tertiles.
  step_time_s,    by the step's mix: prefill share of the step's tokens, cut at (0, 0.5]: decode-only,
  gpu_util        decode-heavy, prefill-heavy.
Expert k serves rows with t[k-1] < value <= t[k] (k = number of thresholds below the value).

Each expert is a small boosted model fitted to the residuals of a pooled model (trained on every
row) within its regime: a specialist correction that keeps what all the data teach. Partitioning
the data instead (one independent model per regime) was measured worse on every split of the
arena-hard data: each expert saw a third of the rows. A regime with fewer than `min_expert_rows`
training rows gets no expert (the pooled model alone), and the manifest says so. The "single"
baseline is the pooled model: same learner, same features, no routing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from equinox_cli.predict.config import FitConfig
from equinox_cli.predict.features import LATENCY_FEATURES, OUTPUT_FEATURES, STEP_FEATURES
from equinox_cli.predict.trees import TreeEnsemble, fit_trees, fuse


@dataclass(frozen=True, slots=True)
class Router:
    column: str  # the routed value's column in the feature frame
    thresholds: tuple[float, ...]

    def route(self, values: np.ndarray) -> np.ndarray:
        return np.searchsorted(np.asarray(self.thresholds), values, side="left")

    @property
    def n_experts(self) -> int:
        return len(self.thresholds) + 1


@dataclass(frozen=True, slots=True)
class TargetSpec:
    name: str
    table: str  # "requests" or "steps"
    features: tuple[str, ...]
    route_column: str
    fixed_thresholds: tuple[float, ...] | None  # None: tertiles of the training values
    loss: str
    log_offset: float | None  # train on log(y + offset) when set (heavy-tailed, positive targets)


TARGETS: dict[str, TargetSpec] = {
    spec.name: spec
    for spec in (
        TargetSpec(
            "output_tokens", "requests", OUTPUT_FEATURES, "prompt_tokens_log", None, "absolute_error", 1.0
        ),
        TargetSpec(
            "ttft_s", "requests", LATENCY_FEATURES, "waiting_at_arrival", None, "absolute_error", 1e-3
        ),
        TargetSpec("e2e_s", "requests", LATENCY_FEATURES, "waiting_at_arrival", None, "absolute_error", 1e-3),
        TargetSpec("step_time_s", "steps", STEP_FEATURES, "route_step", (0.0, 0.5), "squared_error", None),
        TargetSpec("gpu_util", "steps", STEP_FEATURES, "route_step", (0.0, 0.5), "squared_error", None),
    )
}


def tertiles(values: np.ndarray) -> tuple[float, float]:
    """Two cut points splitting `values` in three; spread apart when many values tie."""
    clean = values[np.isfinite(values)]
    if clean.size == 0:
        return (0.0, 1.0)
    low, high = (float(q) for q in np.quantile(clean, [1 / 3, 2 / 3]))
    if high <= low:
        above = clean[clean > low]
        high = float(np.median(above)) if above.size else low + 1.0
    return (low, high)


@dataclass(frozen=True)
class TargetModel:
    """One target's predictor: a pooled model plus routed residual experts (MoPE), or the pooled
    model alone (router None: the single-model baseline). Predictions are made in the transformed
    space: pooled(x) + expert_k(x), then mapped back and clipped at 0."""

    spec: TargetSpec
    base: TreeEnsemble
    router: Router | None = None
    experts: tuple[TreeEnsemble | None, ...] = ()  # None: too few rows in that regime, no correction

    def __post_init__(self) -> None:
        # pooled ⊕ expert_k fused once, so each row walks one ensemble (same sums, less overhead)
        fused = tuple(self.base if e is None else fuse(self.base, e) for e in self.experts)
        object.__setattr__(self, "_fused", fused)

    def predict(self, x: np.ndarray, route_values: np.ndarray) -> np.ndarray:
        if self.router is None:
            return self._inverse(self.base.predict(x))
        fused: tuple[TreeEnsemble, ...] = self._fused  # type: ignore[attr-defined]
        slot = self.router.route(route_values)
        if x.shape[0] == 1:
            return self._inverse(fused[int(slot[0])].predict(x))
        raw = np.empty(x.shape[0])
        for k in np.unique(slot):
            rows = slot == k
            raw[rows] = fused[int(k)].predict(x[rows])
        return self._inverse(raw)

    def _inverse(self, raw: np.ndarray) -> np.ndarray:
        offset = self.spec.log_offset
        out = np.exp(raw) - offset if offset is not None else raw
        return np.maximum(out, 0.0)


def _transform(y: np.ndarray, spec: TargetSpec) -> np.ndarray:
    return np.log(np.maximum(y, 0.0) + spec.log_offset) if spec.log_offset is not None else y


def fit_target(
    spec: TargetSpec, x: np.ndarray, y: np.ndarray, route_values: np.ndarray, config: FitConfig
) -> tuple[TargetModel, TargetModel]:
    """(MoPE, single) for one target, trained on the same rows; they share the pooled model."""
    z = _transform(y, spec)
    pooled = fit_trees(x, z, replace(config.trees, loss=spec.loss), config.seed)
    residual = z - pooled.predict(x)
    router = Router(spec.route_column, tuple(spec.fixed_thresholds or tertiles(route_values)))
    slots = router.route(route_values)
    expert_params = replace(config.expert_trees, loss=spec.loss)
    experts: list[TreeEnsemble | None] = []
    for k in range(router.n_experts):
        rows = slots == k
        if int(rows.sum()) < config.min_expert_rows:
            experts.append(None)
        else:
            experts.append(fit_trees(x[rows], residual[rows], expert_params, config.seed + k + 1))
    return TargetModel(spec, pooled, router, tuple(experts)), TargetModel(spec, pooled)
