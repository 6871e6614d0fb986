"""`equinox traces stats` and `equinox traces convert`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from equinox_cli.core.errors import UserInputError
from equinox_cli.core.types import Workload
from equinox_cli.engines.sim.profiles import PROFILES
from equinox_cli.workload.build import WorkloadSpec, build_workload
from equinox_cli.workload.schema import workload_to_frame


def workload_frame(spec: WorkloadSpec) -> tuple[pd.DataFrame, Workload, list[str]]:
    workload, warnings = build_workload(spec)
    return workload_to_frame(workload), workload, warnings


def trace_stats(spec: WorkloadSpec) -> tuple[dict[str, object], pd.DataFrame, list[str]]:
    """Overall and per-client statistics of any trace or suite."""
    frame, workload, warnings = workload_frame(spec)
    duration = float(frame["arrival_s"].max() - frame["arrival_s"].min())
    overall: dict[str, object] = {
        "workload": workload.name,
        "requests": len(frame),
        "clients": frame["client_id"].nunique(),
        "duration_s": duration,
        "rate_rps": len(frame) / duration if duration > 0 else float("nan"),
        "prompt_mean": float(frame["prompt_tokens"].mean()),
        "output_mean": float(frame["output_tokens"].mean()),
        "prompt_max": int(frame["prompt_tokens"].max()),
        **over_context(frame),
    }
    grouped = frame.groupby("client_id", sort=True)
    per_client = pd.DataFrame(
        {
            "requests": grouped.size(),
            "rate_rps": grouped.size() / duration if duration > 0 else float("nan"),
            "prompt_p50": grouped["prompt_tokens"].median(),
            "prompt_p99": grouped["prompt_tokens"].quantile(0.99),
            "output_p50": grouped["output_tokens"].median(),
            "output_p99": grouped["output_tokens"].quantile(0.99),
            "interarrival_cv": grouped["arrival_s"].agg(_interarrival_cv),
        }
    ).reset_index()
    return overall, per_client, warnings


def over_context(frame: pd.DataFrame) -> dict[str, int]:
    """For each built-in profile's model context (max_model_len), how many requests a server with
    it refuses (`prompts_over_N`: a prompt of N tokens or more) and how many more it cuts
    (`max_tokens_cut_N`: prompt + max_tokens over N): a trace made for a longer-context model
    otherwise just looks fast (Mooncake's conversations: 45 % refused at 8,192)."""
    prompt, cap = frame["prompt_tokens"], frame["max_tokens"]
    out: dict[str, int] = {}
    for context in sorted({p.max_model_len for p in PROFILES.values()}):
        out[f"prompts_over_{context}"] = int((prompt >= context).sum())
        out[f"max_tokens_cut_{context}"] = int(((prompt < context) & (prompt + cap > context)).sum())
    return out


def _interarrival_cv(arrivals: pd.Series) -> float:
    gaps = arrivals.sort_values().diff().dropna()
    return float(gaps.std(ddof=0) / gaps.mean()) if len(gaps) > 1 and gaps.mean() > 0 else float("nan")


def convert_trace(spec: WorkloadSpec, out: Path) -> tuple[Path, int, list[str]]:
    """Write a trace as canonical Parquet (atomically: a temporary file renamed at the end)."""
    if out.suffix.lower() != ".parquet":
        raise UserInputError(f"{out}: the output must be a .parquet file")
    frame, _, warnings = workload_frame(spec)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        frame.to_parquet(tmp, index=False)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return out, len(frame), warnings
