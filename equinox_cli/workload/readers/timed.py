"""Readers for production traces that carry arrival times: Azure, BurstGPT, Mooncake.

Azure LLM inference CSV (2023 and 2024): TIMESTAMP (wall clock), ContextTokens, GeneratedTokens.
BurstGPT CSV: Timestamp (s), Model, Request tokens, Response tokens, Total tokens, Log Type.
Mooncake JSONL: timestamp (ms), input_length, output_length, hash_ids (512-token prefix blocks).
Arrivals are shifted so that the first request arrives at 0 s. Rows whose output is 0 tokens
(failed or empty responses) are dropped with a warning: they put no decode load on an engine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from equinox_cli.core.errors import UserInputError
from equinox_cli.workload.limits import MAX_ARRIVAL_S, MAX_TOKENS
from equinox_cli.workload.readers.raw import (
    RawTrace,
    first_line,
    int_field,
    iter_jsonl,
    read_csv,
    require_columns,
)
from equinox_cli.workload.schema import numeric_values

AZURE_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
BURSTGPT_COLUMNS = ("Timestamp", "Request tokens", "Response tokens")


def token_counts(frame: pd.DataFrame, path: Path, column: str) -> np.ndarray:
    values = numeric_values(frame[column])  # booleans and text are NaN; bounded before the cast
    with np.errstate(invalid="ignore"):  # inf % 1 is NaN: flagged below, not warned about
        bad = ~((values >= 0) & (values <= MAX_TOKENS)) | (values % 1 != 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        shown = str(frame[column].iloc[row])[:40]
        raise UserInputError(f"{path}: row {row + 1}: field {column!r}: not a count in [0, 1e7]: {shown!r}")
    return values.astype(np.int64)


def finish_trace(frame: pd.DataFrame, path: Path, fmt: str) -> RawTrace:
    """Drop rows without output (warned) or without prompt; shift arrivals, if any, to start at 0."""
    warnings = []
    empty = frame["output_tokens"] <= 0
    if empty.all():
        raise UserInputError(f"{path}: no request with output tokens > 0")
    if empty.any():
        warnings.append(f"{path}: dropped {int(empty.sum())} row(s) with 0 output tokens")
        frame = frame[~empty]
    no_prompt = frame["prompt_tokens"] <= 0
    if no_prompt.all():
        raise UserInputError(f"{path}: no request with prompt tokens > 0")
    if no_prompt.any():  # a server needs at least one prompt token
        warnings.append(f"{path}: dropped {int(no_prompt.sum())} row(s) with 0 prompt tokens")
        frame = frame[~no_prompt]
    if "arrival_s" in frame.columns:
        frame = frame.assign(arrival_s=frame["arrival_s"] - frame["arrival_s"].min())
    return RawTrace(frame=frame.reset_index(drop=True), format=fmt, warnings=warnings)


def read_azure(path: Path) -> RawTrace:
    frame = read_csv(path)
    require_columns(frame, path, AZURE_COLUMNS, "Azure LLM inference")
    if frame.empty:
        raise UserInputError(f"{path}: empty trace (no rows)")
    try:
        times = pd.to_datetime(frame["TIMESTAMP"], errors="coerce", format="mixed", utc=True)
    except (OverflowError, ValueError) as exc:  # a date pandas cannot hold (beyond year 2262)
        raise UserInputError(
            f"{path}: field 'TIMESTAMP': not a time pandas can hold ({first_line(exc)})"
        ) from None
    if times.isna().any():
        row = int(np.flatnonzero(times.isna().to_numpy())[0])
        raise UserInputError(
            f"{path}: row {row + 1}: field 'TIMESTAMP': not a time: {frame['TIMESTAMP'].iloc[row]!r}"
        )
    seconds = (times - times.min()).dt.total_seconds().to_numpy()
    out = pd.DataFrame(
        {
            "arrival_s": seconds,
            "prompt_tokens": token_counts(frame, path, "ContextTokens"),
            "output_tokens": token_counts(frame, path, "GeneratedTokens"),
        }
    )
    return finish_trace(out, path, "azure")


def read_burstgpt(path: Path) -> RawTrace:
    frame = read_csv(path)
    require_columns(frame, path, BURSTGPT_COLUMNS, "BurstGPT")
    if frame.empty:
        raise UserInputError(f"{path}: empty trace (no rows)")
    times = pd.to_numeric(frame["Timestamp"], errors="coerce")
    if times.isna().any():
        row = int(np.flatnonzero(times.isna().to_numpy())[0])
        raise UserInputError(f"{path}: row {row + 1}: field 'Timestamp': not a number")
    out = pd.DataFrame(
        {
            "arrival_s": times.to_numpy(dtype=float),
            "prompt_tokens": token_counts(frame, path, "Request tokens"),
            "output_tokens": token_counts(frame, path, "Response tokens"),
        }
    )
    for column, name in (("Model", "model"), ("Log Type", "log_type")):
        if column in frame.columns:
            out[name] = frame[column].astype(str).to_numpy()
    return finish_trace(out, path, "burstgpt")


MOONCAKE_BLOCK_TOKENS = 512  # each of Mooncake's hash_ids names a 512-token block of the prompt


def read_mooncake(path: Path) -> RawTrace:
    rows = []
    for row, obj in iter_jsonl(path):
        hashes = obj.get("hash_ids", [])
        rows.append(
            {
                "arrival_s": int_field(obj, "timestamp", path, row, MAX_ARRIVAL_S * 1000) / 1000.0,
                "prompt_tokens": int_field(obj, "input_length", path, row),
                "output_tokens": int_field(obj, "output_length", path, row),
                "prefix": str(hashes[0]) if isinstance(hashes, list) and hashes else "none",
                "prefix_hashes": " ".join(map(str, hashes)) if isinstance(hashes, list) else "",
                "prefix_block_tokens": MOONCAKE_BLOCK_TOKENS,
            }
        )
    if not rows:
        raise UserInputError(f"{path}: empty trace (no rows)")
    return finish_trace(pd.DataFrame(rows), path, "mooncake")
