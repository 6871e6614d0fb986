"""The collected training data (`equinox collect`): its versioned schema and a validating loader.

A collected folder holds `requests.parquet` (one row per request), `steps.parquet` (one row per
engine step) and `collect.json` (how it was made). Both Parquet files carry the schema version in
their metadata under `equinox.collect`. traces/README.md documents every column.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from equinox_cli.core.errors import UserInputError
from equinox_cli.core.schema import (
    COLLECT_META_KEY as META_KEY,
)
from equinox_cli.core.schema import (
    COLLECT_REQUEST_COLUMNS,
    COLLECT_SCHEMA,
    COLLECT_STEP_COLUMNS,
)

REQUEST_COLUMNS = COLLECT_REQUEST_COLUMNS
STEP_COLUMNS = COLLECT_STEP_COLUMNS
# What training needs of each file (the rest is context for people and notebooks).
REQUEST_NEEDS = (
    "client_id",
    "arrival_s",
    "prompt_tokens",
    "output_tokens",
    "status",
    "finish_s",
    "ttft_s",
    "e2e_s",
)
STEP_NEEDS = ("step_time_s", "prefill_tokens", "decode_seqs", "context_tokens", "gpu_util")
NUMERIC = (
    "arrival_s",
    "prompt_tokens",
    "output_tokens",
    "finish_s",
    "step_time_s",
    "prefill_tokens",
    "decode_seqs",
    "context_tokens",
    "gpu_util",
    "ttft_s",
    "e2e_s",
)


@dataclass(frozen=True, slots=True)
class Collected:
    requests: pd.DataFrame
    steps: pd.DataFrame
    sources: tuple[str, ...]


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise UserInputError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0]})") from None
    raw = (table.schema.metadata or {}).get(META_KEY)
    if raw is not None:
        try:
            version = json.loads(raw).get("schema")
        except (ValueError, AttributeError):
            version = None
        if version != COLLECT_SCHEMA:
            raise UserInputError(
                f"{path}: collected with schema {version}, this version reads {COLLECT_SCHEMA}"
            )
    return table.to_pandas()


def _check(frame: pd.DataFrame, path: Path, needs: Sequence[str]) -> None:
    if frame.empty:
        raise UserInputError(f"{path}: empty (no rows)")
    missing = [c for c in needs if c not in frame.columns]
    if missing:
        raise UserInputError(f"{path}: missing column(s) {', '.join(missing)}")
    for column in needs:
        if column not in NUMERIC:
            continue
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() & frame[column].notna() | ~np.isfinite(values.fillna(0.0))
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0]) + 1
            raise UserInputError(
                f"{path}: row {row}: field {column!r}: not a number: {frame[column].iloc[row - 1]!r}"
            )


def _kind(frame: pd.DataFrame) -> str:
    return "steps" if "step_time_s" in frame.columns else "requests"


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        files = [path / "requests.parquet", path / "steps.parquet"]
        found = [f for f in files if f.exists()]
        if not found:
            raise UserInputError(f"{path}: no requests.parquet or steps.parquet (not a collected folder)")
        return found
    if not path.exists():
        raise UserInputError(f"{path}: no such file or folder")
    if path.suffix.lower() != ".parquet":
        raise UserInputError(f"{path}: expected a collected folder or a .parquet file")
    return [path]


def load_collected(paths: Sequence[Path]) -> Collected:
    """Every requests and steps table under `paths`, validated and concatenated (sources tagged)."""
    if not paths:
        raise UserInputError("no training data given (a folder written by `equinox collect`)")
    requests: list[pd.DataFrame] = []
    steps: list[pd.DataFrame] = []
    for path in paths:
        for file in _files(path):
            frame = _read_parquet(file)
            kind = _kind(frame)
            _check(frame, file, STEP_NEEDS if kind == "steps" else REQUEST_NEEDS)
            frame = frame.assign(source=str(file))
            (steps if kind == "steps" else requests).append(frame)
    if not requests:
        raise UserInputError(f"{', '.join(map(str, paths))}: no request rows (requests.parquet)")
    req = pd.concat(requests, ignore_index=True)
    stp = pd.concat(steps, ignore_index=True) if steps else pd.DataFrame(columns=list(STEP_COLUMNS))
    return Collected(req, stp, tuple(str(p) for p in paths))


def collect_meta(meta: dict[str, object]) -> bytes:
    return json.dumps({"schema": COLLECT_SCHEMA, **meta}, default=str, sort_keys=True).encode()
