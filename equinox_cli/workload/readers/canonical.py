"""Canonical traces: JSON Lines, Parquet or CSV with the canonical columns (DESIGN.md §4)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from equinox_cli.core.errors import UserInputError
from equinox_cli.workload.readers.raw import RawTrace, first_line, iter_jsonl, read_csv


def read_canonical(path: Path) -> RawTrace:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        try:  # pandas metadata is not needed (no index) and may be corrupt: ignore it
            table = pq.read_table(path)
            table.validate(full=True)  # invalid UTF-8 in a string column would fail later, deep in pandas
            frame = table.to_pandas(ignore_metadata=True)
        except (pa.ArrowException, OSError, ValueError, TypeError, KeyError) as exc:
            raise UserInputError(f"{path}: not a readable Parquet file: {first_line(exc)}") from None
    elif suffix == ".csv":
        frame = read_csv(path)
    else:
        rows = [obj for _, obj in iter_jsonl(path)]
        if not rows:
            raise UserInputError(f"{path}: empty trace (no rows)")
        frame = pd.DataFrame(rows)
    return RawTrace(frame=frame, format="canonical")
