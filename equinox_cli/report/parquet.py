"""Parquet reports, written atomically: into a hidden temporary sibling folder, renamed at the end.

Layout of reports/<run>/:
  run.json                       full configuration: workload, seed, engine profile, policies and
                                 their parameters, library versions
  summary.parquet                one row per policy (the comparison table)
  <policy>/requests.parquet      one row per request, with latencies
  <policy>/clients.parquet       one row per client: demand, service, latencies
  <policy>/steps.parquet         one row per engine step
  <policy>/timeline.parquet      one row per (tick, client): windowed service and demand
  <policy>/counters.parquet      periodic samples of the policy's per-client counters
Every Parquet file carries run.json in its schema metadata under the key "equinox.run".
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from equinox_cli.core.errors import UserInputError


def _write(frame: pd.DataFrame, path: Path, meta: bytes) -> None:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    merged = {**(table.schema.metadata or {}), b"equinox.run": meta}
    pq.write_table(table.replace_schema_metadata(merged), path)


def write_report(
    out_dir: Path,
    run: Mapping[str, object],
    summary: pd.DataFrame,
    per_policy: Mapping[str, Mapping[str, pd.DataFrame]],
) -> Path:
    """Write every table; the folder appears complete or not at all."""
    if out_dir.exists() and any(out_dir.iterdir()):
        raise UserInputError(f"{out_dir}: --out folder exists and is not empty")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    meta = json.dumps(run, default=str, sort_keys=True).encode()
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        (tmp / "run.json").write_text(json.dumps(run, default=str, indent=2, sort_keys=True) + "\n")
        _write(summary, tmp / "summary.parquet", meta)
        for policy, tables in per_policy.items():
            folder = tmp / policy
            folder.mkdir()
            for name, frame in tables.items():
                _write(frame, folder / f"{name}.parquet", meta)
        if out_dir.exists():
            out_dir.rmdir()
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir
