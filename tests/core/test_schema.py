"""The schema module is the one declaration of every column: the files hold exactly its columns, and
the READMEs document each of them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from equinox_cli import api
from equinox_cli.core import schema
from equinox_cli.workload.schema import CANONICAL_COLUMNS

ROOT = Path(__file__).resolve().parents[2]


def _documented(readme: Path) -> set[str]:
    return set(re.findall(r"`([a-z0-9_]+)`", readme.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("schema") / "run"
    config = api.ReplayConfig(
        workload=api.WorkloadSpec(source="default", duration_s=20, seed=7), baselines=("vtc",), out=out
    )
    api.replay(config)
    return out


def test_report_files_hold_exactly_the_declared_columns(report: Path) -> None:
    summary = pd.read_parquet(report / "summary.parquet")
    assert tuple(summary.columns) == schema.SUMMARY_COLUMNS
    for policy in ("equinox", "vtc"):
        for table, columns in schema.REPORT_TABLES.items():
            frame = pd.read_parquet(report / policy / f"{table}.parquet")
            assert tuple(frame.columns) == columns, table
            assert set(frame["policy"]) <= {policy}, table


def test_run_json_and_parquet_metadata_carry_schema_and_seed(report: Path) -> None:
    run = json.loads((report / "run.json").read_text())
    assert run["schema"] == schema.REPORT_SCHEMA
    assert run["seed"] == 7
    assert run["engine"] == "sim" and run["profile"]["name"]
    meta = pq.read_schema(report / "vtc" / "requests.parquet").metadata[schema.REPORT_META_KEY]
    assert json.loads(meta)["schema"] == schema.REPORT_SCHEMA


def test_every_report_column_is_documented() -> None:
    documented = _documented(ROOT / "reports" / "README.md")
    declared = set(schema.SUMMARY_COLUMNS) | set(schema.HTTP_REQUEST_COLUMNS)
    for columns in schema.REPORT_TABLES.values():
        declared |= set(columns)
    assert sorted(declared - documented) == []


def test_every_collect_column_is_documented() -> None:
    documented = _documented(ROOT / "traces" / "README.md")
    declared = set(schema.COLLECT_REQUEST_COLUMNS) | set(schema.COLLECT_STEP_COLUMNS)
    declared |= set(CANONICAL_COLUMNS)  # canonical traces
    assert sorted(declared - documented) == []


def test_undeclared_column_cannot_reach_a_file() -> None:
    with pytest.raises(ValueError, match="not declared"):
        schema.report_columns("requests", frozenset({*schema.REPORT_TABLES["requests"], "secret"}))
    assert (
        schema.report_columns("requests", frozenset({*schema.REPORT_TABLES["requests"], "sent_s"}))[-1]
        == "sent_s"
    )
