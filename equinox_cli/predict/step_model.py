"""The step-time model fitted from collected step rows: t = c0 + c_p·P + c_d·n + c_kv·C.

The same form as the simulator's profiles (engines/sim/profiles.py), fitted by non-negative least
squares, so a live engine's rows calibrate a simulator profile (`--profile PATH/TO/PREDICTOR`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

RESIDUAL_QUANTILES = 64


@dataclass(frozen=True, slots=True)
class StepFit:
    c0_s: float
    c_prefill_s: float
    c_decode_s: float
    c_kv_s: float
    rows: int
    mae_s: float
    r2: float
    # measured / fitted step time at RESIDUAL_QUANTILES evenly spaced quantiles: the scatter the
    # simulator replays (`step_residuals`), so that queueing is not underestimated
    residual_ratios: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def predict(self, prefill: np.ndarray, decode: np.ndarray, context: np.ndarray) -> np.ndarray:
        return self.c0_s + self.c_prefill_s * prefill + self.c_decode_s * decode + self.c_kv_s * context


def fit_step_time(steps: pd.DataFrame) -> StepFit:
    from scipy.optimize import nnls

    p = steps["prefill_tokens"].to_numpy(dtype=float)
    n = steps["decode_seqs"].to_numpy(dtype=float)
    c = steps["context_tokens"].to_numpy(dtype=float)
    t = steps["step_time_s"].to_numpy(dtype=float)
    design = np.column_stack([np.ones_like(p), p, n, c])
    scale = np.maximum(design.max(axis=0), 1e-12)  # conditioning: columns differ by 10^5
    coef, _ = nnls(design / scale, t)
    c0, cp, cd, ckv = (float(v) for v in coef / scale)
    pred = c0 + cp * p + cd * n + ckv * c
    ss_res = float(((t - pred) ** 2).sum())
    ss_tot = float(((t - t.mean()) ** 2).sum())
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")
    mae = float(np.abs(t - pred).mean())
    return StepFit(c0, cp, cd, ckv, rows=len(t), mae_s=mae, r2=r2, residual_ratios=_ratios(t, pred))


def _ratios(measured: np.ndarray, fitted: np.ndarray) -> tuple[float, ...]:
    ok = fitted > 0
    if ok.sum() < RESIDUAL_QUANTILES:
        return ()
    ratio = measured[ok] / fitted[ok]
    levels = (np.arange(RESIDUAL_QUANTILES) + 0.5) / RESIDUAL_QUANTILES
    return tuple(float(round(q, 4)) for q in np.quantile(ratio, levels))
