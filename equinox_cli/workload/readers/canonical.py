"""Canonical traces: JSON Lines, Parquet or CSV with the canonical columns (DESIGN.md §4)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from equinox_cli.core.errors import UserInputError
from equinox_cli.workload.readers.raw import RawTrace, iter_jsonl, read_csv


def read_canonical(path: Path) -> RawTrace:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        try:
            frame = pq.read_table(path).to_pandas()
        except (pa.ArrowInvalid, OSError) as exc:
            raise UserInputError(f"{path}: not a Parquet file: {exc}") from None
    elif suffix == ".csv":
        frame = read_csv(path)
    else:
        rows = [obj for _, obj in iter_jsonl(path)]
        if not rows:
            raise UserInputError(f"{path}: empty trace (no rows)")
        frame = pd.DataFrame(rows)
    return RawTrace(frame=frame, format="canonical")
