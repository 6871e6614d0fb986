"""The simulator profile of a run: a named one, a MoPE artifact's calibration, or a real engine's."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import pandas as pd

from equinox_cli.api.params import split_key_values
from equinox_cli.engines.sim.engine import apply_engine_args
from equinox_cli.engines.sim.profiles import DEFAULT_PROFILE, Profile, get_profile
from equinox_cli.predict.artifact import engine_config, step_fit, step_residuals
from equinox_cli.predict.step_model import fit_step_time


def resolve_profile(name: str, engine_params: Sequence[str]) -> Profile:
    """A named profile, or a MoPE artifact folder: its fitted step-time model on the default profile."""
    base = calibrated_profile(Path(name)) if Path(name).is_dir() else get_profile(name)
    return apply_engine_args(base, dict(split_key_values(engine_params, "-E")))


def calibrated_profile(artifact: Path) -> Profile:
    """A profile of the engine an artifact's data came from: c0, c_p, c_d, c_kv and their scatter
    fitted on its step rows, and, when the real engine recorded it, that engine's block size, batch
    caps, KV pool and prefix caching (else the default profile's)."""
    base = get_profile(DEFAULT_PROFILE)
    source = f"step-time model fitted by `equinox train-mope` on the step rows of {artifact}"
    engine = engine_config(artifact)
    if engine is not None:
        base = replace(engine_base(engine), prefix_caching=bool(engine["prefix_caching"]))
        source += "; block size, batch caps, KV pool and prefix caching recorded by the engine's plug-in"
    return profile_from_fit(
        base, step_fit(artifact), step_residuals(artifact), f"calibrated:{artifact.name}", source
    )


def profile_from_steps(steps: pd.DataFrame, engine: Mapping[str, float], name: str, sources: str) -> Profile:
    """A profile of a real engine: its configuration (`engine`: block_size, max_num_seqs,
    max_num_batched_tokens, long_prefill_tokens, api_overhead_s; the KV pool from the step
    rows) and its step-time model and scatter fitted on its step rows."""
    base = engine_base({**engine, "kv_total_blocks": int(steps["kv_total_blocks"].max())})
    fit = fit_step_time(steps)
    return profile_from_fit(base, fit.to_dict(), fit.residual_ratios, name, sources)  # type: ignore[arg-type]


def engine_base(engine: Mapping[str, float | int | bool]) -> Profile:
    """The default profile with a real engine's block size, batch caps, KV pool (kv_total_blocks),
    context (max_model_len) and HTTP overhead (api_overhead_s, 0 when unknown)."""
    block = int(engine["block_size"])
    return replace(
        get_profile(DEFAULT_PROFILE),
        kv_capacity_tokens=int(engine["kv_total_blocks"]) * block,
        block_size=block,
        max_num_seqs=int(engine["max_num_seqs"]),
        max_num_batched_tokens=int(engine["max_num_batched_tokens"]),
        long_prefill_tokens=int(engine.get("long_prefill_tokens", 0)),  # older logs: vLLM's default
        # older logs did not record it: the default profile's (Llama-2's 4,096)
        max_model_len=int(engine.get("max_model_len", get_profile(DEFAULT_PROFILE).max_model_len)),
        api_overhead_s=float(engine.get("api_overhead_s", 0.0)),
    )


def profile_from_fit(
    base: Profile, fit: Mapping[str, float], residuals: Sequence[float], name: str, sources: str
) -> Profile:
    """`base` with a fitted step-time model (predict/step_model.py) and its residual ratios."""
    return replace(
        base,
        name=name,
        sources=sources,
        c0_s=fit["c0_s"],
        c_p_s=max(0.0, fit["c_prefill_s"] - fit["c_kv_s"]),  # the profile's c_kv covers P too
        c_d_s=fit["c_decode_s"],
        c_kv_s=fit["c_kv_s"],
        step_residuals=tuple(residuals),
    )
