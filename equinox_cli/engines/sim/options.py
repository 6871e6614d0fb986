"""`-E key=value`: the simulated engine's settings a user may override, typed and validated."""

from __future__ import annotations

from dataclasses import fields, replace

from equinox_cli.core.errors import UserInputError
from equinox_cli.core.kv_budget import RULES
from equinox_cli.engines.sim.profiles import ADMISSION_RULES, Profile

ENGINE_KEYS = (
    "kv_capacity_tokens",
    "max_model_len",
    "block_size",
    "max_num_seqs",
    "max_num_batched_tokens",
    "chunked_prefill",
    "long_prefill_tokens",
    "admission",
    "admit_every_steps",
    "prefill_cap_tokens",
    "kv_gate",
    "gate_rule",
    "prefix_caching",
    "step_noise",
)
_POSITIVE = (
    "kv_capacity_tokens",
    "max_model_len",
    "block_size",
    "max_num_seqs",
    "max_num_batched_tokens",
    "admit_every_steps",
    "prefill_cap_tokens",
)
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def _typed(key: str, text: str, kind: type) -> object:
    try:
        if kind is bool:
            if text.lower() not in _TRUE + _FALSE:
                raise ValueError(text)
            return text.lower() in _TRUE
        value = kind(text)
    except ValueError:
        raise UserInputError(f"bad -E value {key}={text!r} (expected {kind.__name__})") from None
    if isinstance(value, int | float) and not 0 <= value <= 1e9:
        raise UserInputError(f"bad -E value {key}={text!r} (a number in [0, 1e9])")
    return value


def apply_engine_args(profile: Profile, raw: dict[str, str]) -> Profile:
    """The profile with `-E key=value` engine overrides applied (typed, validated)."""
    kinds = {f.name: type(getattr(profile, f.name)) for f in fields(profile) if f.name in ENGINE_KEYS}
    values: dict[str, object] = {}
    for key, text in raw.items():
        if key not in kinds:
            raise UserInputError(f"unknown -E key {key!r}; valid: {', '.join(ENGINE_KEYS)}")
        values[key] = _typed(key, text, kinds[key])
    result = replace(profile, **values)  # type: ignore[arg-type]
    if result.admission not in ADMISSION_RULES:
        valid = ", ".join(ADMISSION_RULES)
        raise UserInputError(f"bad -E value admission={result.admission!r}; valid: {valid}")
    if result.gate_rule not in RULES:
        raise UserInputError(f"bad -E value gate_rule={result.gate_rule!r}; valid: {', '.join(RULES)}")
    if result.kv_gate and result.admission != "vllm":
        raise UserInputError(
            "-E kv_gate=true works with admission=vllm (slora and reserve-max budget max_tokens themselves)"
        )
    if min(getattr(result, key) for key in _POSITIVE) < 1:
        raise UserInputError(f"bad -E value: {', '.join(_POSITIVE)} must be >= 1")
    return result
