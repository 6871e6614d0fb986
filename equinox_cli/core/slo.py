"""Latency objectives of a run: one default and optional per-tenant ones (`--slo`). Goodput counts
the requests that met their tenant's objectives; Equinox's latency counter aims at them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from equinox_cli.core.checks import check_number
from equinox_cli.core.errors import UserInputError

DEFAULT_TTFT_SLO_S = 2.0
DEFAULT_TPOT_SLO_S = 0.2
SLO_KEYS = ("ttft", "tpot")


@dataclass(frozen=True, slots=True)
class Slo:
    ttft_s: float = DEFAULT_TTFT_SLO_S
    tpot_s: float = DEFAULT_TPOT_SLO_S


@dataclass(frozen=True, slots=True)
class SloSet:
    default: Slo = field(default_factory=Slo)
    per_client: Mapping[str, Slo] = field(default_factory=dict)

    def for_client(self, client: str) -> Slo:
        return self.per_client.get(client, self.default)


def parse_slos(values: Sequence[str]) -> SloSet:
    """`ttft=2,tpot=0.1` sets the default; `TENANT:ttft=1` one tenant's (unset keys: the default's).
    Later values win; tenant entries start from the final default."""
    default: dict[str, float] = {}
    tenants: dict[str, dict[str, float]] = {}
    for value in values:
        tenant, colon, body = value.rpartition(":") if ":" in value else ("", "", value)
        target = tenants.setdefault(tenant, {}) if colon else default
        for part in body.split(","):
            key, eq, number = part.partition("=")
            key = key.strip()
            if not eq or key not in SLO_KEYS:
                keys = ", ".join(SLO_KEYS)
                raise UserInputError(
                    f"--slo {value!r}: expected [TENANT:]ttft=SECONDS,tpot=SECONDS (keys: {keys})"
                )
            try:
                seconds = float(number)
            except ValueError:
                raise UserInputError(f"--slo {value!r}: {key}: not a number: {number!r}") from None
            check_number(f"--slo {key}", seconds, 0, 1e6, low_open=True)
            target[key] = seconds
    base = Slo(default.get("ttft", DEFAULT_TTFT_SLO_S), default.get("tpot", DEFAULT_TPOT_SLO_S))
    per_client = {t: Slo(v.get("ttft", base.ttft_s), v.get("tpot", base.tpot_s)) for t, v in tenants.items()}
    return SloSet(base, per_client)
