"""Two sets of runs compared per (run key, policy) and metric, with thresholds that make a CI gate.

Across seeds each side is summarised by its mean and a 95 % Student-t interval. A rule
`max_regression[m] = f` flags a regression when the metric moved the worse way by more than the
fraction f of the base mean and, when both sides have two or more seeds, the Welch 95 % interval of
the difference lies wholly on the worse side (a move the seeds cannot explain). `minimum[m]` and
`maximum[m]` bound the new mean itself. Which way is worse: core/schema.py SUMMARY_BETTER.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from equinox_cli.core.schema import SUMMARY_BETTER

HEADLINE = (
    "output_tokens_per_s",
    "ttft_mean_s",
    "ttft_p99_s",
    "e2e_p99_s",
    "jain_windowed_mean",
    "service_diff_max",
)
COMPARE_COLUMNS = (
    "key",
    "policy",
    "metric",
    "base_mean",
    "base_ci95",
    "base_n",
    "new_mean",
    "new_ci95",
    "new_n",
    "change",
    "rule",
    "verdict",
    "reason",
)


@dataclass(frozen=True, slots=True)
class Thresholds:
    max_regression: dict[str, float] = field(default_factory=dict)  # metric → fraction of base
    minimum: dict[str, float] = field(default_factory=dict)
    maximum: dict[str, float] = field(default_factory=dict)

    def metrics(self) -> list[str]:
        names = [*self.max_regression, *self.minimum, *self.maximum]
        return list(dict.fromkeys(names))

    def merged(self, other: Thresholds) -> Thresholds:
        """`other`'s rules win over ours (flags over a file)."""
        return Thresholds(
            {**self.max_regression, **other.max_regression},
            {**self.minimum, **other.minimum},
            {**self.maximum, **other.maximum},
        )


@dataclass(frozen=True, slots=True)
class Side:
    mean: float
    ci95: float  # half-width; NaN with one value
    n: int
    std: float


_EMPTY = pd.Series([], dtype=float)


def side(values: pd.Series) -> Side:
    clean = pd.to_numeric(values, errors="coerce").dropna().to_numpy(float)
    n = int(clean.size)
    if n == 0:
        return Side(math.nan, math.nan, 0, math.nan)
    mean = float(clean.mean())
    if n == 1:
        return Side(mean, math.nan, 1, math.nan)
    std = float(clean.std(ddof=1))
    return Side(mean, t_quantile(n - 1) * std / math.sqrt(n), n, std)


def t_quantile(dof: float) -> float:
    """Student t's 97.5 % quantile (scipy is imported here: ~0.3 s that `replay` should not pay)."""
    from scipy import stats

    return float(stats.t.ppf(0.975, dof))


def worse_interval(base: Side, new: Side, better: str) -> tuple[float, float]:
    """Welch 95 % interval of the difference, signed so that positive is worse."""
    sign = 1.0 if better == "lower" else -1.0
    diff = sign * (new.mean - base.mean)
    var_b, var_n = base.std**2 / base.n, new.std**2 / new.n
    se = math.sqrt(var_b + var_n)
    if se == 0:
        return diff, diff
    dof = (var_b + var_n) ** 2 / (var_b**2 / (base.n - 1) + var_n**2 / (new.n - 1))
    half = t_quantile(dof) * se
    return diff - half, diff + half


def judge(metric: str, base: Side, new: Side, rules: Thresholds) -> tuple[str, str, str]:
    """(rule, verdict, reason) of one metric: verdict regression | ok | info."""
    better = SUMMARY_BETTER[metric]
    texts: list[str] = []
    reasons: list[str] = []
    if metric in rules.max_regression:
        limit = rules.max_regression[metric]
        texts.append(f"worse ≤ {limit:.0%}")
        reasons += _relative_regression(base, new, better, limit)
    if metric in rules.minimum:
        texts.append(f"≥ {rules.minimum[metric]:g}")
        if math.isnan(new.mean) or new.mean < rules.minimum[metric]:
            reasons.append(f"new mean {new.mean:.4g} below the minimum {rules.minimum[metric]:g}")
    if metric in rules.maximum:
        texts.append(f"≤ {rules.maximum[metric]:g}")
        if math.isnan(new.mean) or new.mean > rules.maximum[metric]:
            reasons.append(f"new mean {new.mean:.4g} above the maximum {rules.maximum[metric]:g}")
    if not texts:
        return "", "info", ""
    return ", ".join(texts), "regression" if reasons else "ok", "; ".join(reasons)


def _relative_regression(base: Side, new: Side, better: str, limit: float) -> list[str]:
    if math.isnan(base.mean):
        return []  # nothing to regress from (e.g. a counter gap of FCFS)
    if math.isnan(new.mean):
        return ["no value in the new runs"]
    sign = 1.0 if better == "lower" else -1.0
    worse = sign * (new.mean - base.mean)
    allowed = limit * abs(base.mean)
    if worse <= allowed:
        return []
    if base.n >= 2 and new.n >= 2:
        low, _ = worse_interval(base, new, better)
        if low <= 0:
            return []  # within what the seeds scatter
    return [f"{_relative(base.mean, new.mean):+.1%} ({better} is better), beyond {limit:.0%}"]


def _relative(base: float, new: float) -> float:
    if base == 0:
        return 0.0 if new == 0 else math.copysign(math.inf, new)
    return (new - base) / abs(base)


def compare_runs(base: pd.DataFrame, new: pd.DataFrame, rules: Thresholds) -> pd.DataFrame:
    """One row per (key, policy, metric) present on both sides: headline metrics and every metric
    with a rule."""
    metrics = list(dict.fromkeys([*HEADLINE, *rules.metrics()]))
    common = base[["key", "policy"]].drop_duplicates().merge(new[["key", "policy"]].drop_duplicates())
    rows = []
    for key, policy in common.itertuples(index=False):
        b = base[(base["key"] == key) & (base["policy"] == policy)]
        n = new[(new["key"] == key) & (new["policy"] == policy)]
        for metric in metrics:
            # a column an older report lacks (e.g. engine_ttft_mean_s) is an empty side, not an error
            bs, ns = side(b.get(metric, _EMPTY)), side(n.get(metric, _EMPTY))
            rule, verdict, reason = judge(metric, bs, ns, rules)
            change = _relative(bs.mean, ns.mean) if not np.isnan(bs.mean + ns.mean) else math.nan
            rows.append(
                (
                    key,
                    policy,
                    metric,
                    bs.mean,
                    bs.ci95,
                    bs.n,
                    ns.mean,
                    ns.ci95,
                    ns.n,
                    change,
                    rule,
                    verdict,
                    reason,
                )
            )
    return pd.DataFrame(rows, columns=list(COMPARE_COLUMNS))


def unmatched(base: pd.DataFrame, new: pd.DataFrame) -> list[str]:
    """(key, policy) pairs on one side only, as lines for a warning."""
    b = set(map(tuple, base[["key", "policy"]].drop_duplicates().to_numpy()))
    n = set(map(tuple, new[["key", "policy"]].drop_duplicates().to_numpy()))
    lines = [f"only in BASE: {k} / {p}" for k, p in sorted(b - n)]
    return lines + [f"only in NEW: {k} / {p}" for k, p in sorted(n - b)]


def pareto_front(higher: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """Indices of the points that no other point beats on both (higher `higher`, lower `lower`)."""
    keep = []
    for i in range(len(higher)):
        dominated = np.any(
            (higher >= higher[i]) & (lower <= lower[i]) & ((higher > higher[i]) | (lower < lower[i]))
        )
        if not dominated and np.isfinite(higher[i]) and np.isfinite(lower[i]):
            keep.append(i)
    return np.array(keep, dtype=int)
