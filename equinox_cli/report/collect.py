"""Writer of collected training data: requests.parquet, steps.parquet and collect.json, atomically."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from equinox_cli.core.files import atomic_folder
from equinox_cli.core.types import Workload
from equinox_cli.metrics.latency import with_latencies
from equinox_cli.predict.dataset import (
    COLLECT_SCHEMA,
    META_KEY,
    REQUEST_COLUMNS,
    STEP_COLUMNS,
    collect_meta,
)
from equinox_cli.report.parquet import write_parquet


def collected_requests(requests: pd.DataFrame, workload: Workload) -> pd.DataFrame:
    """Engine request rows in the collect schema: latencies derived, prompt text joined back."""
    frame = with_latencies(requests)
    text = {it.request.request_id: it.request.prompt for it in workload.items}
    frame["prompt"] = pd.Series([text.get(rid) for rid in frame["request_id"]], dtype="string")
    return frame[list(REQUEST_COLUMNS)]


def collected_steps(steps: pd.DataFrame) -> pd.DataFrame:
    frame = steps.copy()
    tokens = frame["prefill_tokens"].astype(float) + frame["decode_seqs"].astype(float)
    time_s = frame["step_time_s"].astype(float)
    frame["throughput_tokens_per_s"] = np.where(time_s > 0, tokens / time_s.where(time_s > 0, 1.0), np.nan)
    return frame[list(STEP_COLUMNS)]


def write_collected(
    out_dir: Path, meta: Mapping[str, object], requests: pd.DataFrame, steps: pd.DataFrame
) -> Path:
    blob = collect_meta(dict(meta))
    with atomic_folder(out_dir) as tmp:
        document = {"schema": COLLECT_SCHEMA, **meta}
        (tmp / "collect.json").write_text(json.dumps(document, default=str, indent=2, sort_keys=True) + "\n")
        write_parquet(requests, tmp / "requests.parquet", blob, key=META_KEY)
        write_parquet(steps, tmp / "steps.parquet", blob, key=META_KEY)
    return out_dir
