"""Synthetic multi-tenant arrivals and lengths (seeded), the building blocks of the suites.

Arrival kinds, as in VTC's artifact:
  uniform  deterministic at rate λ with a random phase in [0, 1/λ)
  gamma    gamma inter-arrivals with coefficient of variation `cv` (cv = 1 is Poisson)
A client may be on/off (on during [2kP, (2k+1)P), off during the next P seconds), active only in
[start_s, end_s), or ramp its rate linearly from rate_rps to ramp_to_rps over its active span.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # imported where frames are made: the suites' names and summaries need no pandas
    import pandas as pd


@dataclass(frozen=True, slots=True)
class Lengths:
    """A token-length distribution: fixed at `median`, or lognormal(median, sigma) clipped."""

    median: float
    sigma: float = 0.0
    lo: int = 1
    hi: int = 32768

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        if self.sigma == 0.0:
            return np.full(size, round(self.median), dtype=np.int64)
        values = rng.lognormal(np.log(self.median), self.sigma, size)
        return np.clip(np.round(values), self.lo, self.hi).astype(np.int64)


@dataclass(frozen=True, slots=True)
class ClientSpec:
    client_id: str
    rate_rps: float
    prompt: Lengths
    output: Lengths
    arrival: str = "uniform"  # uniform | gamma
    cv: float = 1.0
    weight: float = 1.0
    on_off_period_s: float | None = None
    start_s: float = 0.0
    end_s: float | None = None
    ramp_to_rps: float | None = None


def _uniform_times(rng: np.random.Generator, spec: ClientSpec, end_s: float) -> np.ndarray:
    span = end_s - spec.start_s
    phase = rng.uniform(0.0, 1.0)  # in units of one inter-arrival
    if spec.ramp_to_rps is None:
        count = int(np.ceil(span * spec.rate_rps)) + 1
        times = (phase + np.arange(count)) / spec.rate_rps
    else:
        # Cumulative arrivals Λ(t) = r0 t + (r1 - r0) t² / (2 span); the k-th arrival solves Λ = k + phase.
        r0, r1 = spec.rate_rps, spec.ramp_to_rps
        total = (r0 + r1) * span / 2
        k = phase + np.arange(int(np.ceil(total)) + 1)
        a = (r1 - r0) / (2 * span)
        times = k / r0 if a == 0 else (-r0 + np.sqrt(r0 * r0 + 4 * a * k)) / (2 * a)
    return spec.start_s + times


def _gamma_times(rng: np.random.Generator, rate_rps: float, cv: float, span_s: float) -> np.ndarray:
    shape = 1.0 / (cv * cv)
    count = int(span_s * rate_rps * 1.5) + 20
    gaps = rng.gamma(shape, 1.0 / (rate_rps * shape), count)
    times = np.cumsum(gaps)
    while times[-1] < span_s:  # rare: a very bursty draw ran short
        more = rng.gamma(shape, 1.0 / (rate_rps * shape), count)
        times = np.concatenate([times, times[-1] + np.cumsum(more)])
    return times


def client_arrivals(rng: np.random.Generator, spec: ClientSpec, duration_s: float) -> np.ndarray:
    end_s = min(spec.end_s if spec.end_s is not None else duration_s, duration_s)
    if spec.arrival == "uniform":
        times = _uniform_times(rng, spec, end_s)
    else:
        times = spec.start_s + _gamma_times(rng, spec.rate_rps, spec.cv, end_s - spec.start_s)
    times = times[(times >= spec.start_s) & (times < end_s)]
    if spec.on_off_period_s:
        times = times[(times // spec.on_off_period_s) % 2 == 0]
    return times


def generate(specs: list[ClientSpec], duration_s: float, seed: int) -> pd.DataFrame:
    """One canonical frame for clients that arrive independently (each with its own RNG stream)."""
    frames = []
    for index, spec in enumerate(specs):
        rng = np.random.default_rng([seed, index])
        times = client_arrivals(rng, spec, duration_s)
        frames.append(_rows(rng, spec, times))
    return _canonical(frames)


def generate_shared_poisson(specs: list[ClientSpec], duration_s: float, seed: int) -> pd.DataFrame:
    """VTC's 'poisson': gamma (cv 1) arrivals on the total rate, each assigned to a client ∝ rate."""
    rng = np.random.default_rng(seed)
    rates = np.array([s.rate_rps for s in specs])
    times = _gamma_times(rng, float(rates.sum()), 1.0, duration_s)
    times = times[times < duration_s]
    owners = rng.choice(len(specs), size=len(times), p=rates / rates.sum())
    frames = [_rows(rng, spec, times[owners == i]) for i, spec in enumerate(specs)]
    return _canonical(frames)


def _rows(rng: np.random.Generator, spec: ClientSpec, times: np.ndarray) -> pd.DataFrame:
    import pandas as pd

    n = len(times)
    return pd.DataFrame(
        {
            "client_id": spec.client_id,
            "arrival_s": times,
            "prompt_tokens": spec.prompt.draw(rng, n),
            "output_tokens": spec.output.draw(rng, n),
            "weight": spec.weight,
        }
    )


def _canonical(frames: list[pd.DataFrame]) -> pd.DataFrame:
    import pandas as pd

    frame = pd.concat(frames, ignore_index=True).sort_values(["arrival_s", "client_id"], kind="stable")
    frame = frame.reset_index(drop=True)
    frame.insert(0, "request_id", [f"r{i}" for i in range(len(frame))])
    return frame
