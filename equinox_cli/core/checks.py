"""Range checks for option values: one-line errors naming the option, before anything runs.

Every numeric option must be a finite number inside a stated range (NaN, inf and values that would
make a run empty or endless are refused, never silently replaced by a default).
"""

from __future__ import annotations

import math

from equinox_cli.core.errors import UserInputError

MAX_SEED = 2**63 - 1


def check_number(
    option: str,
    value: float | int | None,
    low: float,
    high: float,
    *,
    low_open: bool = False,
    integer: bool = False,
) -> None:
    """`low <= value <= high` (`low < value` with low_open), finite, whole with `integer`; None passes."""
    if value is None:
        return
    valid = f"{'(' if low_open else '['}{_show(low)}, {_show(high)}]"
    wrong_type = not isinstance(value, int | float) or (integer and not isinstance(value, int))
    if isinstance(value, bool) or wrong_type:
        raise UserInputError(f"{option} {value!r}: expected a {'whole ' if integer else ''}number in {valid}")
    if not isinstance(value, int) and not math.isfinite(value):
        raise UserInputError(f"{option} {value}: expected a finite number in {valid}")
    if value > high or value < low or (low_open and value == low):
        raise UserInputError(f"{option} {_show(value)}: must be in {valid}")


def _show(number: float) -> str:
    """A bound or value as a person writes it: whole numbers in full (up to 20 digits)."""
    if isinstance(number, int) or float(number).is_integer():
        text = str(int(number))
        return text if len(text) <= 20 else f"{float(number):.3g}"
    return f"{number:g}"


def reject_constant(name: str) -> float:
    """json.loads(parse_constant=...): NaN, Infinity and -Infinity are not numbers in our files."""
    raise ValueError(f"{name} is not a number")
