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
refitted), starting from `prior` (relative values only matter; the price carries the scale). A
request's units for P prompt and q output tokens:
    prefill  c_p·P + c_kv·P
    decode   (q − 1)·c_d + c_kv·((q − 1)·P + q·(q − 1)/2)
"""

from __future__ import annotations

import numpy as np

# relative prior (A100 / Llama-2-7B profile): until a few hundred steps were seen
PRIOR = (0.0155, 4.4e-5, 1.0e-5, 2.7e-7)


class GpuTimeModel:
    def __init__(self, refit_steps: int = 128, forget: float = 0.999) -> None:
        self._coef: tuple[float, float, float, float] = PRIOR  # c0, c_p, c_d, c_kv (plain floats)
        self._xtx = [[0.0] * 4 for _ in range(4)]
        self._xty = [0.0] * 4
        self._steps = 0
        self._refit_steps = refit_steps
        self._forget = forget
        self.busy_s = 0.0  # Σ busy GPU seconds (step × utilisation) over the run
        self.units = 0.0  # Σ cost units over the run
        self._price_s: float | None = None  # recent busy seconds per unit (EMA)

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
        keep = [0, 1, 2, 3]
        xtx, xty = np.array(self._xtx), np.array(self._xty)
        scale = np.sqrt(np.maximum(np.diag(xtx), 1e-30))
        while keep:
            a = xtx[np.ix_(keep, keep)] / np.outer(scale[keep], scale[keep])
            b = xty[keep] / scale[keep]
            sol = np.linalg.lstsq(a, b, rcond=None)[0] / scale[keep]
            if (sol >= 0).all():
                coef = np.zeros(4)
                coef[keep] = sol
                if coef[1:].sum() > 0:  # a fit without any marginal cost would price nothing
                    self._coef = (float(coef[0]), float(coef[1]), float(coef[2]), float(coef[3]))
                return
            keep = [k for k, v in zip(keep, sol, strict=True) if v >= 0]

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
        """Recent busy GPU seconds per unit (1.0 before the first busy step)."""
        return 1.0 if self._price_s is None else self._price_s

    def mark(self) -> tuple[float, float]:
        """(busy seconds, units) so far: a request keeps its admission mark to price its lifetime."""
        return self.busy_s, self.units

    def price_since_s(self, mark: tuple[float, float]) -> float:
        """Busy seconds per unit since `mark` (the recent price when nothing ran since)."""
        d_units = self.units - mark[1]
        return (self.busy_s - mark[0]) / d_units if d_units > 0 else self.price_s()
