"""Collected data: schema, and one-line errors for bad training files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from equinox_cli.core.errors import UserInputError
from equinox_cli.predict.dataset import REQUEST_COLUMNS, STEP_COLUMNS, load_collected


def test_collected_folder_has_the_documented_schema(collected_dir: Path) -> None:
    requests = pd.read_parquet(collected_dir / "requests.parquet")
    steps = pd.read_parquet(collected_dir / "steps.parquet")
    assert tuple(requests.columns) == REQUEST_COLUMNS and tuple(steps.columns) == STEP_COLUMNS
    assert requests["prompt"].notna().all()  # arena has text
    finished = requests[requests["status"] == "finished"]
    assert (finished["ttft_s"] >= 0).all() and (finished["e2e_s"] >= finished["ttft_s"]).all()
    assert (requests["waiting_at_arrival"] >= 0).all() and requests["kv_used_frac_at_arrival"].between(
        0, 1
    ).all()
    ratio = (steps["prefill_tokens"] + steps["decode_seqs"]) / steps["step_time_s"]
    pd.testing.assert_series_equal(steps["throughput_tokens_per_s"], ratio, check_names=False)
    meta = pq.read_schema(collected_dir / "requests.parquet").metadata
    assert b"equinox.collect/1" in meta[b"equinox.collect"]


def test_missing_target_column(collected_dir: Path, tmp_path: Path) -> None:
    frame = pd.read_parquet(collected_dir / "requests.parquet").drop(columns=["ttft_s"])
    frame.to_parquet(tmp_path / "requests.parquet")
    with pytest.raises(UserInputError, match=r"requests.parquet: missing column\(s\) ttft_s"):
        load_collected([tmp_path])


def test_malformed_value_names_row_and_field(collected_dir: Path, tmp_path: Path) -> None:
    frame = pd.read_parquet(collected_dir / "requests.parquet")
    frame["output_tokens"] = frame["output_tokens"].astype(str)  # e.g. a CSV export gone wrong
    frame.loc[3, "output_tokens"] = "lots"
    frame.to_parquet(tmp_path / "requests.parquet")
    with pytest.raises(UserInputError, match="row 4: field 'output_tokens': not a number"):
        load_collected([tmp_path])


def test_empty_unreadable_and_foreign_schema_files(collected_dir: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.parquet"
    pd.read_parquet(collected_dir / "requests.parquet").head(0).to_parquet(empty)
    with pytest.raises(UserInputError, match="empty"):
        load_collected([empty])
    junk = tmp_path / "junk.parquet"
    junk.write_text("not parquet")
    with pytest.raises(UserInputError, match="not a readable Parquet file"):
        load_collected([junk])
    table = pq.read_table(collected_dir / "requests.parquet")
    future = tmp_path / "future.parquet"
    pq.write_table(
        table.replace_schema_metadata({b"equinox.collect": b'{"schema": "equinox.collect/9"}'}), future
    )
    with pytest.raises(UserInputError, match=r"equinox\.collect/9"):
        load_collected([future])
    folder = tmp_path / "folder"
    folder.mkdir()
    with pytest.raises(UserInputError, match="not a collected folder"):
        load_collected([folder])
