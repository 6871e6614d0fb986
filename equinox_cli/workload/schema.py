"""The canonical trace schema (DESIGN.md §4), validated on load.

One row per request: request_id, client_id, arrival_s, prompt_tokens, output_tokens, plus optional
prompt, weight, max_tokens, and prefix_hashes with prefix_block_tokens (the prompt's leading blocks by
content, space-separated ids as Mooncake's hash_ids: equal ids mean equal tokens; the simulator's
prefix cache uses them). Every check names the file, the row (1-based, as a person counts data
rows) and the field.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from equinox_cli.core.errors import UserInputError
from equinox_cli.core.types import Request, Workload, WorkloadItem
from equinox_cli.workload.limits import MAX_ARRIVAL_S, MAX_TOKENS, WEIGHT_RANGE

REQUIRED_COLUMNS = ("request_id", "client_id", "arrival_s", "prompt_tokens", "output_tokens")
OPTIONAL_COLUMNS = ("prompt", "weight", "max_tokens", "prefix_hashes", "prefix_block_tokens")
CANONICAL_COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS


def shown(name: object) -> str:
    """A column name or value fit for a one-line message (repr when it holds line breaks etc.)."""
    text = str(name)[:80]
    return text if text.isprintable() else repr(text)


def _bad(path: str, row: int, column: str, why: str) -> UserInputError:
    return UserInputError(f"{path}: row {row}: field {column!r}: {why}")


def _as_float(value: object) -> float:
    """A cell as a float: NaN for anything that is not a number (booleans, text, None, objects);
    ±inf for integers too large for a float (they are then refused as out of range)."""
    if isinstance(value, bool | np.bool_) or value is None:
        return math.nan
    if isinstance(value, int | np.integer):
        try:
            return float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf
    if isinstance(value, float | np.floating):
        return float(value)
    if isinstance(value, str) and len(value) <= 64:
        try:
            return float(value.strip())
        except ValueError:
            return math.nan
    return math.nan


def numeric_values(series: pd.Series) -> np.ndarray:
    """Floats of a column, NaN where a cell is not a number (booleans included: `true` is no count)."""
    if series.dtype == bool:
        return np.full(len(series), math.nan)
    if series.dtype.kind in "iuf":
        return series.to_numpy(dtype=float)
    return np.fromiter((_as_float(v) for v in series), dtype=float, count=len(series))


def check_numeric(
    frame: pd.DataFrame,
    path: str,
    column: str,
    integer: bool,
    positive: bool,
    high: float = MAX_TOKENS,
    low: float = 0.0,
) -> None:
    """The column as finite numbers in range (bounded before any cast), or a one-line error."""
    if frame[column].dtype.kind in "mM":
        raise _bad(path, 1, column, f"a {frame[column].dtype} column; give plain seconds as numbers")
    values = numeric_values(frame[column])
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        shown = str(frame[column].iloc[row])[:40]
        why = "not a number" if np.isnan(values[row]) else "out of range"
        raise _bad(path, row + 1, column, f"{why}: {shown!r}")
    out = ((values <= low) if positive else (values < low)) | (values > high)
    if out.any():
        row = int(np.flatnonzero(out)[0])
        opening = "(" if positive else "["
        raise _bad(path, row + 1, column, f"must be in {opening}{low:g}, {high:g}], got {values[row]:g}")
    if integer:
        frac = (values % 1) != 0
        if frac.any():
            row = int(np.flatnonzero(frac)[0])
            raise _bad(path, row + 1, column, f"not an integer: {values[row]!r}")
    frame[column] = values.astype("int64" if integer else "float64")


def reject_unknown_columns(frame: pd.DataFrame, path: str) -> None:
    extra = [c for c in frame.columns if c not in CANONICAL_COLUMNS]
    if extra:
        raise UserInputError(
            f"{path}: unknown column(s) {', '.join(map(shown, extra))}; canonical columns: "
            f"{', '.join(CANONICAL_COLUMNS)}"
        )


def validate_frame(frame: pd.DataFrame, path: str, allow_extra: bool = False) -> pd.DataFrame:
    """Return a clean canonical frame sorted by arrival, or raise a one-line UserInputError."""
    if frame.empty:
        raise UserInputError(f"{path}: empty trace (no rows)")
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise UserInputError(
            f"{path}: missing column(s) {', '.join(missing)}; canonical columns: "
            f"{', '.join(CANONICAL_COLUMNS)}"
        )
    if not allow_extra:
        reject_unknown_columns(frame, path)
    frame = frame[[c for c in CANONICAL_COLUMNS if c in frame.columns]].copy()
    frame = frame.reset_index(drop=True)
    for column in ("request_id", "client_id"):
        empty = frame[column].isna() | (frame[column].astype(str).str.len() == 0)
        if empty.any():
            raise _bad(path, int(np.flatnonzero(empty.to_numpy())[0]) + 1, column, "empty")
        frame[column] = frame[column].astype(str)
    check_numeric(frame, path, "arrival_s", integer=False, positive=False, high=MAX_ARRIVAL_S)
    check_numeric(frame, path, "prompt_tokens", integer=True, positive=True)
    check_numeric(frame, path, "output_tokens", integer=True, positive=True)
    if "weight" in frame.columns:
        low, high = WEIGHT_RANGE
        check_numeric(frame, path, "weight", integer=False, positive=False, low=low, high=high)
    if "max_tokens" in frame.columns:
        check_numeric(frame, path, "max_tokens", integer=True, positive=True)
        short = frame["max_tokens"] < frame["output_tokens"]
        if short.any():
            row = int(np.flatnonzero(short.to_numpy())[0])
            raise _bad(path, row + 1, "max_tokens", "smaller than output_tokens")
    if "prefix_hashes" in frame.columns:
        _check_prefix(frame, path)
    dup = frame["request_id"].duplicated()
    if dup.any():
        row = int(np.flatnonzero(dup.to_numpy())[0])
        raise _bad(path, row + 1, "request_id", f"duplicate id {frame['request_id'].iloc[row]!r}")
    return frame.sort_values(["arrival_s", "request_id"], kind="stable").reset_index(drop=True)


def parse_hashes(cell: object) -> tuple[int, ...]:
    """A prefix_hashes cell (space-separated ids, or a list of ids) as ids; ValueError if bad."""
    if cell is None or (isinstance(cell, float) and math.isnan(cell)):
        return ()
    parts = cell.split() if isinstance(cell, str) else list(cell)  # type: ignore[call-overload]
    if len(parts) > MAX_TOKENS:
        raise ValueError("too many ids")
    ids = tuple(int(p) for p in parts if not isinstance(p, bool | float))
    if len(ids) != len(parts) or any(not 0 <= i < 2**63 for i in ids):
        raise ValueError("not a list of ids in [0, 2^63)")
    return ids


def _check_prefix(frame: pd.DataFrame, path: str) -> None:
    for row, cell in enumerate(frame["prefix_hashes"], start=1):
        try:
            parse_hashes(cell)
        except (ValueError, TypeError):
            raise _bad(path, row, "prefix_hashes", f"not space-separated ids: {shown(cell)!r}") from None
    if "prefix_block_tokens" not in frame.columns:
        raise UserInputError(f"{path}: prefix_hashes needs a prefix_block_tokens column (tokens per id)")
    check_numeric(frame, path, "prefix_block_tokens", integer=True, positive=True)


def frame_to_workload(frame: pd.DataFrame, name: str, source: dict[str, object]) -> Workload:
    """Turn a validated canonical frame with max_tokens (build.cap_outputs) into a Workload."""
    n = len(frame)

    def column(key: str, kind: type, default: object) -> list[object]:
        if key not in frame.columns:
            return [default] * n
        return [kind(v) for v in frame[key].tolist()]  # plain Python values, one pass per column

    prompts = frame["prompt"].tolist() if "prompt" in frame.columns else [None] * n
    prompts = [None if isinstance(p, float) and math.isnan(p) else p for p in prompts]
    hashes = (
        [parse_hashes(h) for h in frame["prefix_hashes"]] if "prefix_hashes" in frame.columns else [()] * n
    )
    rows = zip(
        column("request_id", str, ""),
        column("client_id", str, ""),
        column("arrival_s", float, 0.0),
        column("prompt_tokens", int, 0),
        column("max_tokens", int, 0),
        column("weight", float, 1.0),
        prompts,
        hashes,
        column("prefix_block_tokens", int, 0),
        column("output_tokens", int, 0),
        strict=True,
    )
    items = tuple(WorkloadItem(Request(*fields[:-1]), fields[-1]) for fields in rows)
    return Workload(name=name, items=items, source=source)


def workload_to_frame(workload: Workload | Sequence[WorkloadItem]) -> pd.DataFrame:
    """The canonical frame of a workload (inverse of frame_to_workload)."""
    items = workload.items if isinstance(workload, Workload) else workload
    frame = pd.DataFrame(
        {
            "request_id": [it.request.request_id for it in items],
            "client_id": [it.request.client_id for it in items],
            "arrival_s": [it.request.arrival_s for it in items],
            "prompt_tokens": [it.request.prompt_tokens for it in items],
            "output_tokens": [it.output_tokens for it in items],
            "weight": [it.request.weight for it in items],
            "max_tokens": [it.request.max_tokens for it in items],
        }
    )
    prompts = [it.request.prompt for it in items]
    if any(p is not None for p in prompts):
        frame.insert(5, "prompt", prompts)
    if any(it.request.prefix_hashes for it in items):
        frame["prefix_hashes"] = [" ".join(map(str, it.request.prefix_hashes)) for it in items]
        frame["prefix_block_tokens"] = [it.request.prefix_block_tokens for it in items]
    return frame
