"""ServeGen per-client traces: a folder of chunk-N-trace.csv (+ optional chunk-N-dataset.json).

Each trace CSV (no header) has one row per 600 s window: start_s, rate (req/s), inter-arrival CV,
family (Gamma | Weibull | Exponential | empty = no traffic), two family parameters. Each file is
one client `chunk-N`. Arrivals are generated per window: inter-arrival gaps are drawn from the
family's shape (Gamma(shape), Weibull(shape); Exponential) and rescaled so their mean is 1/rate,
which keeps the published burstiness and the published rate exactly in expectation.

chunk-N-dataset.json gives, per 6-hour window, the client's probability tables of input_tokens
and output_tokens as Python-literal dict strings (parsed with ast.literal_eval, never eval).
Clients without a table draw lengths from a lognormal (median 256 in, 256 out), with a warning.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from equinox_cli.core.errors import UserInputError
from equinox_cli.workload.readers.raw import RawTrace

WINDOW_S = 600.0
DATASET_WINDOW_S = 21600.0
_CHUNK = re.compile(r"chunk-(\d+)-trace\.csv$")


def _gaps(rng: np.random.Generator, family: str, p1: float, size: int) -> np.ndarray:
    if family == "Gamma" and p1 > 0:
        raw = rng.gamma(p1, 1.0, size)
    elif family == "Weibull" and p1 > 0:
        raw = rng.weibull(p1, size)
    else:
        raw = rng.exponential(1.0, size)
    mean = raw.mean()
    return raw / mean if mean > 0 else np.ones(size)


def _window_arrivals(rng: np.random.Generator, row: pd.Series, lo_s: float, hi_s: float) -> list:
    start, rate, family = float(row[0]), float(row[1]), str(row[3])
    if rate <= 0 or family in ("", "nan"):
        return []
    begin, end = max(start, lo_s), min(start + WINDOW_S, hi_s)
    if end <= begin:
        return []
    expected = rate * (end - begin)
    n = max(1, int(expected * 2) + 10)
    gaps = _gaps(rng, family, float(row[4]), n) / rate
    times = begin + rng.uniform(0, 1.0 / rate) + np.cumsum(gaps) - gaps[0]
    return times[times < end].tolist()


def _length_table(text: str, path: Path, key: str) -> tuple[np.ndarray, np.ndarray] | None:
    try:
        table = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise UserInputError(f"{path}: field {key!r}: not a Python dict literal") from None
    if not isinstance(table, dict) or not table:
        return None
    values = np.array([int(k) for k in table], dtype=np.int64)
    probs = np.array([float(v) for v in table.values()])
    if (probs < 0).any() or probs.sum() <= 0:
        raise UserInputError(f"{path}: field {key!r}: probabilities must be >= 0 and not all 0")
    return values, probs / probs.sum()


def _window_tables(dataset: dict | None, path: Path) -> dict[str, tuple]:
    """Parsed (input, output) tables per dataset window key; windows without both are left out."""
    tables: dict[str, tuple] = {}
    for key, window in (dataset or {}).items():
        if not isinstance(window, dict):
            continue
        tin = _length_table(str(window.get("input_tokens", "{}")), path, "input_tokens")
        tout = _length_table(str(window.get("output_tokens", "{}")), path, "output_tokens")
        if tin and tout:
            tables[key] = (tin, tout)
    return tables


def _draw_lengths(rng, tables: dict[str, tuple], times: list[float]) -> tuple[list, list, bool]:
    """Lengths for each arrival, drawn in bulk per dataset window (lognormal where no table)."""
    t = np.asarray(times)
    keys = (t // DATASET_WINDOW_S * DATASET_WINDOW_S).astype(np.int64)
    prompts, outputs = np.empty(len(t), np.int64), np.empty(len(t), np.int64)
    defaulted = False
    for key in np.unique(keys):
        mask = keys == key
        n = int(mask.sum())
        window = tables.get(str(int(key)))
        if window is None:
            defaulted = True
            prompts[mask] = np.clip(rng.lognormal(np.log(256), 0.7, n), 1, 16384)
            outputs[mask] = np.clip(rng.lognormal(np.log(256), 0.7, n), 1, 4096)
        else:
            (pv, pp), (ov, op) = window
            prompts[mask] = np.maximum(1, rng.choice(pv, size=n, p=pp))
            outputs[mask] = np.maximum(1, rng.choice(ov, size=n, p=op))
    return prompts.tolist(), outputs.tolist(), defaulted


def read_servegen(folder: Path, seed: int, start_s: float, duration_s: float) -> RawTrace:
    files = sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := _CHUNK.search(p.name)))
    if not files:
        raise UserInputError(f"{folder}: not a ServeGen folder: no chunk-N-trace.csv files")
    rows: list[dict[str, object]] = []
    defaulted: list[str] = []
    for chunk, path in files:
        rng = np.random.default_rng([seed, chunk])
        try:
            table = pd.read_csv(path, header=None)
        except (pd.errors.EmptyDataError, pd.errors.ParserError):
            raise UserInputError(f"{path}: bad or empty ServeGen trace CSV") from None
        if table.shape[1] < 6:
            raise UserInputError(f"{path}: row 1: expected 6 fields, got {table.shape[1]}")
        table = table.fillna({3: ""})
        end_s = start_s + duration_s
        live = table[(table[0] + WINDOW_S > start_s) & (table[0] < end_s) & (table[1] > 0)]
        times: list[float] = []
        for _, row in live.iterrows():
            times.extend(_window_arrivals(rng, row, start_s, end_s))
        if not times:
            continue
        data_path = path.with_name(f"chunk-{chunk}-dataset.json")
        dataset = json.loads(data_path.read_text()) if data_path.exists() else None
        keys = {str(int(t // DATASET_WINDOW_S * DATASET_WINDOW_S)) for t in times}
        tables = _window_tables({k: v for k, v in (dataset or {}).items() if k in keys}, data_path)
        prompts, outputs, used_default = _draw_lengths(rng, tables, times)
        if used_default:
            defaulted.append(f"chunk-{chunk}")
        rows.extend(
            {
                "arrival_s": t - start_s,
                "prompt_tokens": p,
                "output_tokens": o,
                "client_id": f"chunk-{chunk}",
            }
            for t, p, o in zip(times, prompts, outputs, strict=True)
        )
    if not rows:
        raise UserInputError(f"{folder}: no traffic between {start_s} s and {start_s + duration_s} s")
    warnings = []
    if defaulted:
        warnings.append(f"{folder}: {len(defaulted)} client(s) without length tables used lognormal lengths")
    return RawTrace(frame=pd.DataFrame(rows), format="servegen", warnings=warnings)
