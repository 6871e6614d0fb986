"""What a request costs the GPU, learned online from the engine's steps (Equinox's RFC).

The step-time model is the simulator's and `predict/step_model.py`'s form:
    t = c0 + c_p·P + c_d·n + c_kv·(C + P)
(P prefill tokens, n decoding sequences, C context tokens attended). Only the *marginal* part
c_p·P + c_d·n + c_kv·(C + P) belongs to anyone, so a client's "cost units" in a step are that sum
over its own tokens, and the GPU's busy time (step time × measured utilisation) is shared in
proportion to units: prefill is priced by compute per token, decode by one sequence plus the
context it reads (long contexts cost what they cost). The busy time also carries c0, so the price
(busy seconds per unit) absorbs the fixed overhead.

The coefficients are refitted every `refit_steps` steps by least squares with exponential forgetting
over (P, n, C + P, t) (non-negative: a coefficient that comes out negative is dropped and the rest
refitted), starting from `prior`. The default prior is relative (the price carries the scale);
a predictor with step experts (MoPE's step_time_s and gpu_util) gives an absolute one instead
(`prior_from_predictor`): its step-time predictions over a fixed grid of step shapes, fitted by the
same least squares, and the busy seconds per unit they imply (predicted step time × utilisation
over the grid's units) as the first price, so the first admissions are charged the GPU time MoPE
predicts. A request's units for P
prompt and q output tokens:
    prefill  c_p·P + c_kv·P
    decode   (q − 1)·c_d + c_kv·((q − 1)·P + q·(q − 1)/2)
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import numpy as np

from equinox_cli.core.protocols import Predictor
from equinox_cli.core.types import EngineState

# relative prior (A100 / Llama-2-7B profile): until a few hundred steps were seen
PRIOR = (0.0155, 4.4e-5, 1.0e-5, 2.7e-7)
# the step shapes a predictor's step experts are read at: prefill tokens, decoding sequences and
# context per decoder, spanning what a serving engine runs (the fit is over what the experts say)
GRID_PREFILL = (0, 64, 256, 1024, 2048)
GRID_DECODERS = (0, 1, 4, 16, 64)
GRID_CONTEXT_PER_SEQ = (128, 512, 2048)
GRID_KV_USED_FRAC = 0.5


class CostPrior(NamedTuple):
    coef: tuple[float, float, float, float]  # c0, c_p, c_d, c_kv in seconds
    price_s: float  # busy GPU seconds per unit over the grid (the fixed c0 and utilisation in)


def prior_from_predictor(predictor: Predictor) -> CostPrior | None:
    """The predictor's step-time and utilisation experts, linearised over the grid (None when it
    has none)."""
    rows, times, utils = [], [], []
    for prefill, seqs, per_seq in itertools.product(GRID_PREFILL, GRID_DECODERS, GRID_CONTEXT_PER_SEQ):
        if prefill == 0 and seqs == 0:
            continue
        context = seqs * per_seq
        load = EngineState(seqs + (prefill > 0), 0, GRID_KV_USED_FRAC)
        forecast = predictor.predict_step(prefill, seqs, context, load)
        if forecast is None:
            return None
        rows.append((1.0, float(prefill), float(seqs), float(context + prefill)))
        times.append(forecast.step_time_s)
        utils.append(forecast.gpu_util)
    x, t = np.array(rows), np.array(times)
    coef = _nonnegative_fit(x.T @ x, x.T @ t)
    if coef is None:
        return None
    # the price observe() would measure over these steps: busy seconds per marginal unit
    units = x[:, 1:] @ np.array(coef[1:])
    return CostPrior(coef, float((t * np.array(utils)).sum() / units.sum()))


def _nonnegative_fit(xtx: np.ndarray, xty: np.ndarray) -> tuple[float, float, float, float] | None:
    """Least squares from the normal equations; a negative coefficient is dropped and the rest
    refitted. None when no marginal cost is left (a fit that would price nothing)."""
    keep = [0, 1, 2, 3]
    scale = np.sqrt(np.maximum(np.diag(xtx), 1e-30))
    while keep:
        a = xtx[np.ix_(keep, keep)] / np.outer(scale[keep], scale[keep])
        b = xty[keep] / scale[keep]
        sol = np.linalg.lstsq(a, b, rcond=None)[0] / scale[keep]
        if (sol >= 0).all():
            coef = np.zeros(4)
            coef[keep] = sol
            if coef[1:].sum() <= 0:
                return None
            return (float(coef[0]), float(coef[1]), float(coef[2]), float(coef[3]))
        keep = [k for k, v in zip(keep, sol, strict=True) if v >= 0]
    return None


class GpuTimeModel:
    def __init__(self, refit_steps: int = 128, forget: float = 0.999, prior: CostPrior | None = None) -> None:
        # c0, c_p, c_d, c_kv (plain floats)
        self._coef: tuple[float, float, float, float] = PRIOR if prior is None else prior.coef
        self._xtx = [[0.0] * 4 for _ in range(4)]
        self._xty = [0.0] * 4
        self._steps = 0
        self._refit_steps = refit_steps
        self._forget = forget
        self.busy_s = 0.0  # Σ busy GPU seconds (step × utilisation) over the run
        self.units = 0.0  # Σ cost units over the run
        self._price_s: float | None = None if prior is None else prior.price_s  # recent busy s per unit (EMA)

    @property
    def coef(self) -> np.ndarray:
        return np.array(self._coef)

    # --- per step -----------------------------------------------------------------------
    def client_units(self, prefill: int, decode_seqs: int, context: int) -> float:
        _, c_p, c_d, c_kv = self._coef
        return c_p * prefill + c_d * decode_seqs + c_kv * (context + prefill)

    def observe(self, prefill: int, decode_seqs: int, context: int, step_s: float, util: float) -> None:
        """Learn from one step's totals: its (P, n, C, t) row and its price per unit (the units of a
        step are linear in its totals, so the per-client split is never needed here)."""
        # normal equations with forgetting, in plain floats (numpy per step costs more than the
        # multiply-adds it would save); solved every refit_steps steps
        x = (1.0, float(prefill), float(decode_seqs), float(context + prefill))
        f, xtx, xty = self._forget, self._xtx, self._xty
        for i, xi in enumerate(x):
            xty[i] = f * xty[i] + xi * step_s
            row = xtx[i]
            for j, xj in enumerate(x):
                row[j] = f * row[j] + xi * xj
        self._steps += 1
        if self._steps % self._refit_steps == 0:
            self._refit()
        busy = step_s * util
        total_units = self.client_units(prefill, decode_seqs, context)
        if total_units > 0 and busy > 0:
            self.busy_s += busy
            self.units += total_units
            price = busy / total_units
            self._price_s = price if self._price_s is None else self._price_s + 0.02 * (price - self._price_s)

    def _refit(self) -> None:
        coef = _nonnegative_fit(np.array(self._xtx), np.array(self._xty))
        if coef is not None:
            self._coef = coef

    # --- per request --------------------------------------------------------------------
    def request_units(self, prompt_tokens: float, output_tokens: float) -> float:
        _, c_p, c_d, c_kv = self._coef
        q = max(0.0, output_tokens - 1.0)
        prefill = (c_p + c_kv) * prompt_tokens
        decode = q * c_d + c_kv * (q * prompt_tokens + q * (q + 1.0) / 2.0)
        return float(prefill + decode)

    def prefill_s(self, prompt_tokens: float) -> float:
        """Predicted seconds of the request's prefill alone on the engine (one step's overhead in)."""
        c0, c_p, _, c_kv = self._coef
        return float(c0 + (c_p + c_kv) * prompt_tokens)

    def price_s(self) -> float:
        """Recent busy GPU seconds per unit (before the first busy step: the prior's, else 1.0)."""
        return 1.0 if self._price_s is None else self._price_s

    def mark(self) -> tuple[float, float]:
        """(busy seconds, units) so far: a request keeps its admission mark to price its lifetime."""
        return self.busy_s, self.units

    def price_since_s(self, mark: tuple[float, float]) -> float:
        """Busy seconds per unit since `mark` (the recent price when nothing ran since)."""
        d_units = self.units - mark[1]
        return (self.busy_s - mark[0]) / d_units if d_units > 0 else self.price_s()
