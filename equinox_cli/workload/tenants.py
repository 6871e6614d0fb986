"""Seeded tenant assignment for traces that carry no tenant id (DESIGN.md §4).

Rules (all deterministic under the seed):
  round-robin:N      request i goes to client i mod N (in arrival order)
  zipf:N[:S]         client k in 0..N-1 drawn with probability proportional to 1/(k+1)^S (S=1.1)
  column:NAME        one client per distinct value of a source column (model, session, prefix...)
  single             every request to one client
A trace that already has client ids keeps them unless a rule is given explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from equinox_cli.core.errors import UserInputError

RULES = ("round-robin", "zipf", "column", "single")


@dataclass(frozen=True, slots=True)
class TenantRule:
    kind: str
    num_clients: int = 4
    zipf_s: float = 1.1
    column: str | None = None


def parse_tenant_rule(text: str) -> TenantRule:
    """Parse 'round-robin:4', 'zipf:8:1.2', 'column:model' or 'single'."""
    kind, _, rest = text.partition(":")
    try:
        if kind == "single":
            return TenantRule("single", num_clients=1)
        if kind == "round-robin":
            return TenantRule("round-robin", num_clients=_positive_int(rest or "4"))
        if kind == "zipf":
            n_text, _, s_text = rest.partition(":")
            s = float(s_text) if s_text else 1.1
            if not s > 0:
                raise ValueError(s_text)
            return TenantRule("zipf", num_clients=_positive_int(n_text or "4"), zipf_s=s)
        if kind == "column" and rest:
            return TenantRule("column", column=rest)
    except ValueError:
        pass
    raise UserInputError(
        f"bad --tenants value {text!r}; valid: round-robin:N, zipf:N[:S], column:NAME, single"
    )


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def assign_clients(frame: pd.DataFrame, rule: TenantRule, seed: int, path: str) -> pd.Series:
    """Client ids ('c0', 'c1', ... or 'model=...') for each row of a frame in arrival order."""
    n = len(frame)
    if rule.kind == "single":
        return pd.Series(["c0"] * n, index=frame.index)
    if rule.kind == "round-robin":
        return pd.Series([f"c{i % rule.num_clients}" for i in range(n)], index=frame.index)
    if rule.kind == "zipf":
        rng = np.random.default_rng(seed)
        ranks = np.arange(1, rule.num_clients + 1, dtype=float)
        probs = ranks**-rule.zipf_s
        picks = rng.choice(rule.num_clients, size=n, p=probs / probs.sum())
        return pd.Series([f"c{k}" for k in picks], index=frame.index)
    column = rule.column or ""
    if column not in frame.columns:
        choices = [c for c in frame.columns if c not in ("arrival_s", "prompt", "output_tokens")]
        raise UserInputError(
            f"{path}: --tenants column:{column}: no such column; valid: {', '.join(choices)}"
        )
    values = frame[column].astype(str)
    return column + "=" + values
