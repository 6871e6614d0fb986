"""Reading what replay and sweep wrote back, checked: one line naming the path for anything wrong.

`summary_rows(path)` gives one row per (run, policy) with `key` (what was run, seed excluded),
`policy`, `seed` and the summary metrics, from any of:
  - a replay report folder (run.json + summary.parquet);
  - a folder of report folders (e.g. one per seed), searched one level deep;
  - a sweep folder (sweep.json + cells.parquet).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from equinox_cli.core.errors import UserInputError
from equinox_cli.core.schema import REPORT_SCHEMA

SWEEP_SCHEMA = "equinox.sweep/1"


def read_json(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserInputError(f"{path}: missing") from None
    except (OSError, ValueError) as exc:
        raise UserInputError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise UserInputError(f"{path}: expected a JSON object")
    return data


def read_table(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise UserInputError(f"{path}: missing")
    try:
        return pq.read_table(path).to_pandas()
    except (pa.ArrowInvalid, OSError) as exc:
        raise UserInputError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0]})") from None


def check_schema(path: Path, meta: dict[str, object], expected: str) -> None:
    found = meta.get("schema")
    if found != expected:
        raise UserInputError(
            f"{path}: written with schema {found or 'equinox.report/1'}; this version reads {expected}"
        )


def report_meta(folder: Path) -> dict[str, object]:
    """run.json of a replay report folder, schema-checked."""
    meta = read_json(folder / "run.json")
    check_schema(folder / "run.json", meta, REPORT_SCHEMA)
    return meta


def is_report(folder: Path) -> bool:
    return (folder / "run.json").is_file()


def is_sweep(folder: Path) -> bool:
    return (folder / "sweep.json").is_file()


def report_folders(path: Path) -> list[Path]:
    """The report folders at `path`: itself, or its subfolders that are reports."""
    if not path.is_dir():
        raise UserInputError(f"{path}: not a folder (expected a report or sweep folder)")
    if is_report(path):
        return [path]
    found = sorted(p for p in path.iterdir() if p.is_dir() and is_report(p))
    if not found:
        raise UserInputError(f"{path}: no run.json here or in its subfolders (not a report folder)")
    return found


def run_key(meta: dict[str, object]) -> str:
    """What a run ran, seed excluded: workload, profile, engine and its -E settings."""
    profile = meta.get("profile")
    profile_name = profile.get("name") if isinstance(profile, dict) else profile
    parts = [str(meta.get("workload_name")), f"profile={profile_name}", f"engine={meta.get('engine')}"]
    engine_params = meta.get("engine_params") or []
    assert isinstance(engine_params, list)
    parts += [f"-E {p}" for p in engine_params]
    return " ".join(parts)


def summary_rows(path: Path) -> pd.DataFrame:
    """One row per (run, policy): key, policy, seed and every summary metric."""
    if is_sweep(path):
        meta = read_json(path / "sweep.json")
        check_schema(path / "sweep.json", meta, SWEEP_SCHEMA)
        return read_table(path / "cells.parquet")
    frames = []
    for folder in report_folders(path):
        meta = report_meta(folder)
        summary = read_table(folder / "summary.parquet")
        frames.append(summary.assign(key=run_key(meta), seed=meta.get("seed")))
    return pd.concat(frames, ignore_index=True)
