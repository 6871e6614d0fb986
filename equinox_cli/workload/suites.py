"""Built-in workloads: VTC's synthetic suites (DESIGN.md §4) and Equinox's default mix.

Each suite is a function (seed, duration_s | None) -> canonical frame. Rates, lengths and durations
of the VTC suites follow VTC's artifact (Sheng et al., OSDI'24) as summarised in DESIGN.md §4.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from equinox_cli.workload.synthetic import ClientSpec, Lengths, generate, generate_shared_poisson

if TYPE_CHECKING:  # frames are made when a suite is built; its name and summary need no pandas
    import pandas as pd

Suite = Callable[[int, "float | None"], "pd.DataFrame"]

L256 = Lengths(256)


def _fixed(cid: str, rate: float, p: int = 256, o: int = 256, **kw: object) -> ClientSpec:
    return ClientSpec(cid, rate, Lengths(p), Lengths(o), **kw)  # type: ignore[arg-type]


def overload(seed: int, duration_s: float | None) -> pd.DataFrame:
    """VTC: two tenants at 1.5 and 3 req/s of 256+256 tokens, both above their share."""
    return generate([_fixed("c0", 1.5), _fixed("c1", 3.0)], duration_s or 360.0, seed)


def overload_multi(seed: int, duration_s: float | None) -> pd.DataFrame:
    """VTC: eight tenants, three at 0.4 and five at 0.6 req/s, together over capacity."""
    specs = [_fixed(f"c{i}", 0.4 if i < 3 else 0.6) for i in range(8)]
    return generate(specs, duration_s or 360.0, seed)


def overload_weighted(seed: int, duration_s: float | None) -> pd.DataFrame:
    """VTC: four tenants with weights 1-4 sending 0.4-1.6 req/s in proportion."""
    specs = [_fixed(f"c{i}", 0.4 * (i + 1), weight=float(i + 1)) for i in range(4)]
    return generate(specs, duration_s or 360.0, seed)


def proportional(seed: int, duration_s: float | None) -> pd.DataFrame:
    """VTC: three tenants at 0.25, 0.5 and 1.5 req/s, the last one over its share."""
    specs = [_fixed("c0", 0.25), _fixed("c1", 0.5), _fixed("c2", 1.5)]
    return generate(specs, duration_s or 600.0, seed)


def on_off_less(seed: int, duration_s: float | None) -> pd.DataFrame:
    """VTC: an on-off tenant (0.5 req/s, 60 s periods) under its share beside a steady 2 req/s one."""
    specs = [_fixed("c0", 0.5, on_off_period_s=60.0), _fixed("c1", 2.0)]
    return generate(specs, duration_s or 600.0, seed)


def on_off_overload(seed: int, duration_s: float | None) -> pd.DataFrame:
    """VTC: an on-off tenant (2 req/s, 60 s periods) over its share beside a steady 3 req/s one."""
    specs = [_fixed("c0", 2.0, on_off_period_s=60.0), _fixed("c1", 3.0)]
    return generate(specs, duration_s or 600.0, seed)


def poisson_short_long(seed: int, duration_s: float | None) -> pd.DataFrame:
    """VTC: a short-request tenant (8 req/s of 64+64) beside a long one (1.5 req/s of 256+256)."""
    specs = [_fixed("c0", 8.0, 64, 64), _fixed("c1", 1.5, 256, 256)]
    return generate_shared_poisson(specs, duration_s or 600.0, seed)


def poisson_short_long_2(seed: int, duration_s: float | None) -> pd.DataFrame:
    """VTC: prompt-heavy (8 req/s of 512+32) beside output-heavy (1.5 req/s of 32+512) tenants."""
    specs = [_fixed("c0", 8.0, 512, 32), _fixed("c1", 1.5, 32, 512)]
    return generate_shared_poisson(specs, duration_s or 600.0, seed)


def increase(seed: int, duration_s: float | None) -> pd.DataFrame:
    """VTC: a steady 0.5 req/s tenant beside one ramping from 0.2 to 2 req/s."""
    specs = [_fixed("c0", 0.5), _fixed("c1", 0.2, ramp_to_rps=2.0)]
    return generate(specs, duration_s or 600.0, seed)


def dist_shift(seed: int, duration_s: float | None) -> pd.DataFrame:
    """VTC: two tenants whose rates shift in three phases (on-off, balanced, skewed)."""
    total = duration_s or 900.0
    phase = total / 3
    specs = [
        _fixed("c0", 0.5, on_off_period_s=60.0, end_s=phase),
        _fixed("c1", 2.0, end_s=phase),
        _fixed("c0", 1.0, start_s=phase, end_s=2 * phase),
        _fixed("c1", 1.0, start_s=phase, end_s=2 * phase),
        _fixed("c0", 0.5, start_s=2 * phase),
        _fixed("c1", 1.5, start_s=2 * phase),
    ]
    return generate(specs, total, seed)


def default_mix(seed: int, duration_s: float | None) -> pd.DataFrame:
    """Why holistic fairness matters, in one run (a few simulated minutes, load above capacity).

    chat: heavy ShareGPT-like chat (prompts lognormal median 200, outputs median 250, long tail);
    code: long prompts, short outputs (Azure code-like); burst: ServeGen-like gamma arrivals with
    CV 4; light-a/light-b: light interactive tenants well under their share.
    """
    sharegpt_prompt, sharegpt_output = Lengths(200, 0.9, 4, 4096), Lengths(250, 0.8, 4, 2048)
    specs = [
        ClientSpec("chat", 6.0, sharegpt_prompt, sharegpt_output, arrival="gamma"),
        ClientSpec("code", 2.0, Lengths(2000, 0.5, 256, 8000), Lengths(24, 0.7, 2, 256), arrival="gamma"),
        ClientSpec(
            "burst",
            2.0,
            Lengths(400, 0.8, 8, 4096),
            Lengths(200, 0.7, 4, 2048),
            arrival="gamma",
            cv=4.0,
        ),
        ClientSpec("light-a", 0.5, Lengths(100, 0.5), Lengths(100, 0.5), arrival="gamma"),
        ClientSpec("light-b", 0.5, Lengths(150, 0.5), Lengths(120, 0.5), arrival="gamma"),
    ]
    return generate(specs, duration_s or 180.0, seed)


def sharegpt_like(seed: int, duration_s: float | None) -> pd.DataFrame:
    """10 req/s of ShareGPT-like lengths from 8 Poisson clients (the speed benchmark's workload)."""
    specs = [
        ClientSpec(
            f"c{i}",
            10.0 / 8,
            Lengths(200, 0.9, 4, 4096),
            Lengths(250, 0.8, 4, 2048),
            arrival="gamma",
        )
        for i in range(8)
    ]
    return generate(specs, duration_s or 3600.0, seed)


# VTC's artifact forced each request's length (max_new_tokens = the output length), so these suites
# keep max_tokens = output_tokens; every other workload's max_tokens is what a client would send.
FORCED_LENGTH_SUITES = frozenset(
    {
        "overload",
        "overload-multi",
        "overload-weighted",
        "proportional",
        "on-off-less",
        "on-off-overload",
        "poisson-short-long",
        "poisson-short-long-2",
        "increase",
        "dist-shift",
    }
)

SUITES: dict[str, Suite] = {
    "default": default_mix,
    "overload": overload,
    "overload-multi": overload_multi,
    "overload-weighted": overload_weighted,
    "proportional": proportional,
    "on-off-less": on_off_less,
    "on-off-overload": on_off_overload,
    "poisson-short-long": poisson_short_long,
    "poisson-short-long-2": poisson_short_long_2,
    "increase": increase,
    "dist-shift": dist_shift,
    "sharegpt-like": sharegpt_like,
}


def suite_summaries() -> dict[str, str]:
    """Each suite's one-line description: the first sentence of its builder's docstring."""
    return {name: (fn.__doc__ or "").strip().split("\n")[0].rstrip(".") for name, fn in SUITES.items()}
