"""`-P key=value` parsing into a policy's frozen parameter dataclass (typed, validated)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, TypeVar

from equinox_cli.core.errors import UserInputError

P = TypeVar("P")
MAX_PARAM = 1e9  # every numeric -P value: finite and within ±1e9 (ranges per key: validate())


def _convert(policy: str, key: str, raw: str, kind: type) -> object:
    try:
        if kind is bool:
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        value = kind(raw)
    except ValueError:
        raise UserInputError(f"bad -P value for {policy}: {key}={raw!r} (expected {kind.__name__})") from None
    if kind in (int, float) and not (math.isfinite(value) and abs(value) <= MAX_PARAM):
        raise UserInputError(
            f"bad -P value for {policy}: {key}={raw!r} (a finite number within ±{MAX_PARAM:g})"
        )
    return value


def parse_params(policy: str, cls: type[P], raw: Mapping[str, str]) -> P:
    """Build `cls` from string values, checking names and types; cls.validate() checks ranges."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for key, text in raw.items():
        if key not in fields:
            valid = ", ".join(sorted(fields)) or "(none)"
            raise UserInputError(f"unknown -P key {key!r} for policy {policy}; valid: {valid}")
        kind = type(fields[key].default)
        values[key] = _convert(policy, key, text, kind)
    params = cls(**values)
    problem = getattr(params, "validate", lambda: None)()
    if problem:
        raise UserInputError(f"bad -P value for {policy}: {problem}")
    return params
