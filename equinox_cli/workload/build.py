"""build_workload(): one entry from a trace file, a ServeGen folder or a suite name to a Workload."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from equinox_cli.core.checks import MAX_SEED, check_number
from equinox_cli.core.errors import UserInputError, unknown_name
from equinox_cli.core.types import Workload
from equinox_cli.workload.limits import MAX_ARRIVAL_S, MAX_TOKENS
from equinox_cli.workload.readers import FORMATS, READERS, ReadOptions
from equinox_cli.workload.readers.raw import RawTrace
from equinox_cli.workload.schema import (
    CANONICAL_COLUMNS,
    check_numeric,
    frame_to_workload,
    reject_unknown_columns,
    validate_frame,
)
from equinox_cli.workload.spec import WorkloadSpec
from equinox_cli.workload.suites import FORCED_LENGTH_SUITES, SUITES
from equinox_cli.workload.tenants import TenantRule, assign_clients, parse_tenant_rule

DEFAULT_WORKLOAD = "default"


def detect_format(path: Path) -> str:
    """The trace format of a file or folder, from its name and first record."""
    if path.is_dir():
        return "servegen"
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return "canonical"
    head = path.read_bytes()[:4096].decode("utf-8", errors="replace")
    if suffix == ".csv":
        first = head.splitlines()[0] if head else ""
        if "ContextTokens" in first:
            return "azure"
        if "Response tokens" in first:
            return "burstgpt"
        if "num_prefill_tokens" in first and "num_decode_tokens" in first:
            return "vidur"
        return "canonical"
    stripped = head.lstrip()
    if stripped.startswith("["):
        return "sharegpt" if '"conversations"' in head else "lmsys"
    if '"output_tokens_llama2"' in head or ('"qid"' in head and '"model"' in head):
        return "arena"
    if '"input_length"' in head and '"output_length"' in head:
        return "mooncake"
    if '"conversation"' in head:
        return "lmsys"
    return "canonical"


def _read(path: Path, fmt: str, spec: WorkloadSpec) -> RawTrace:
    options = ReadOptions(
        seed=spec.seed, start_s=spec.start_s, duration_s=spec.duration_s, tokenizer=spec.tokenizer
    )
    return READERS[fmt].read(path, options)


def _complete(raw: RawTrace, spec: WorkloadSpec, path: str) -> pd.DataFrame:
    """Fill in arrivals, tenants and ids that the source lacks; apply scale and limits."""
    frame = raw.frame.copy().reset_index(drop=True)
    if frame.empty:
        raise UserInputError(f"{path}: empty trace (no rows)")
    if "arrival_s" in frame.columns:
        check_numeric(frame, path, "arrival_s", integer=False, positive=False, high=MAX_ARRIVAL_S)
    elif raw.format == "canonical":  # a missing column is an error, never a silent default
        raise UserInputError(
            f"{path}: missing column arrival_s (seconds from the trace's start); canonical columns: "
            f"{', '.join(CANONICAL_COLUMNS)}"
        )
    else:
        rng = np.random.default_rng(spec.seed)
        gaps = rng.exponential(1.0 / spec.rate_rps, len(frame))
        frame["arrival_s"] = np.cumsum(gaps) - gaps[0]
    frame = frame.sort_values("arrival_s", kind="stable").reset_index(drop=True)
    frame["arrival_s"] = frame["arrival_s"] / spec.time_scale
    if spec.start_s > 0 and raw.format != "servegen":
        frame = frame[frame["arrival_s"] >= spec.start_s].reset_index(drop=True)
        frame["arrival_s"] = frame["arrival_s"] - spec.start_s
    if spec.duration_s is not None and raw.format != "servegen":
        frame = frame[frame["arrival_s"] < spec.duration_s]
    if spec.limit is not None:
        frame = frame.head(spec.limit)
    rule: TenantRule | None = parse_tenant_rule(spec.tenants) if spec.tenants else None
    if rule is None and "client_id" not in frame.columns:
        rule = parse_tenant_rule("round-robin:4")
        raw.warnings.append(f"{path}: no tenant ids in the trace: assigned round-robin:4 (--tenants)")
    if rule is not None:
        frame["client_id"] = assign_clients(frame, rule, spec.seed, path).to_numpy()
    if "request_id" not in frame.columns:
        frame["request_id"] = [f"r{i}" for i in range(len(frame))]
    return frame


def check_spec(spec: WorkloadSpec) -> None:
    """Every number of the spec finite and in range, before any file is read."""
    check_number("--seed", spec.seed, 0, MAX_SEED, integer=True)
    check_number("--rate", spec.rate_rps, 0, 1e6, low_open=True)
    check_number("--time-scale", spec.time_scale, 0, 1e6, low_open=True)
    check_number("--duration", spec.duration_s, 0, 1e8, low_open=True)
    check_number("--limit", spec.limit, 1, 1e9, integer=True)
    check_number("--start", spec.start_s, 0, 1e8)
    check_number("--max-tokens", spec.max_tokens, 1, MAX_TOKENS, integer=True)


def check_source(spec: WorkloadSpec) -> None:
    """The source names a suite or an existing regular file or folder, the format and tenant rule
    are valid: what can be checked without reading the trace (a sweep checks every cell so)."""
    if spec.tenants:
        parse_tenant_rule(spec.tenants)
    if spec.source is None or (spec.source in SUITES and not Path(spec.source).exists()):
        return
    path = Path(spec.source)
    if not path.exists():
        raise UserInputError(
            f"{spec.source}: no such file, folder or suite; suites: {', '.join(sorted(SUITES))}"
        )
    if not (path.is_file() or path.is_dir()):  # a pipe or a device would block or never end
        raise UserInputError(f"{spec.source}: not a regular file or folder")
    if spec.format is not None and spec.format not in FORMATS:
        raise unknown_name("format", spec.format, FORMATS)


def cap_outputs(frame: pd.DataFrame, cap: int, name: str) -> list[str]:
    """On a validated frame: requests without a max_tokens get the client's cap, never their true
    output (no policy or predictor may learn it before the request ends); longer outputs are cut
    to the cap, as a server would cut them. Returns the warnings."""
    if "max_tokens" in frame.columns:
        return []
    longer = int((frame["output_tokens"] > cap).sum())
    frame["max_tokens"] = cap
    frame["output_tokens"] = frame["output_tokens"].clip(upper=cap)
    if not longer:
        return []
    return [f"{name}: {longer} of {len(frame)} outputs longer than --max-tokens {cap} were cut to it"]


def build_workload(spec: WorkloadSpec) -> tuple[Workload, list[str]]:
    """The workload a spec names, and the warnings a user should see (nothing is printed here)."""
    check_spec(spec)
    check_source(spec)
    name = spec.source or DEFAULT_WORKLOAD
    if spec.source is None or (spec.source in SUITES and not Path(spec.source).exists()):
        frame = SUITES[name](spec.seed, spec.duration_s)
        frame["arrival_s"] = frame["arrival_s"] / spec.time_scale
        if spec.tenants:
            frame["client_id"] = assign_clients(
                frame, parse_tenant_rule(spec.tenants), spec.seed, name
            ).to_numpy()
        if spec.limit is not None:
            frame = frame.head(spec.limit).copy()
        if name in FORCED_LENGTH_SUITES:
            frame["max_tokens"] = frame["output_tokens"]
        frame = validate_frame(frame, name)
        warnings = cap_outputs(frame, spec.max_tokens, name)
        return frame_to_workload(frame, name, {"suite": name, "seed": spec.seed}), warnings
    path = Path(spec.source)
    fmt = spec.format or detect_format(path)
    raw = _read(path, fmt, spec)
    if fmt == "canonical":  # a canonical file must not carry columns we would silently drop
        reject_unknown_columns(raw.frame, str(path))
    frame = _complete(raw, spec, str(path))
    frame = validate_frame(frame, str(path), allow_extra=True)
    raw.warnings.extend(cap_outputs(frame, spec.max_tokens, str(path)))
    source = {
        "path": str(path),
        "format": fmt,
        "seed": spec.seed,
        "tenants": spec.tenants,
        "time_scale": spec.time_scale,
    }
    return frame_to_workload(frame, path.stem, source), raw.warnings


def describe_source(spec: WorkloadSpec) -> str:
    return json.dumps({k: str(v) for k, v in spec.__dict__.items() if v is not None})
