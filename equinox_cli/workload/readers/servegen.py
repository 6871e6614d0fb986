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
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from equinox_cli.core.errors import UserInputError
from equinox_cli.workload.limits import MAX_ARRIVAL_S, MAX_REQUESTS, MAX_TOKENS
from equinox_cli.workload.readers.raw import RawTrace, first_line, read_json_any
from equinox_cli.workload.schema import numeric_values

WINDOW_S = 600.0
DATASET_WINDOW_S = 21600.0
_CHUNK = re.compile(r"chunk-(\d+)-trace\.csv$")
FAMILIES = ("Gamma", "Weibull", "Exponential", "")
MAX_RATE_RPS = 10_000.0  # per client window: far above any published ServeGen client
MAX_TABLE_CHARS = 4_000_000  # one length table's text
# column: (name, low, high) of the numeric fields of a trace row
FIELDS = {
    0: ("start_s", 0.0, MAX_ARRIVAL_S),
    1: ("rate", 0.0, MAX_RATE_RPS),
    2: ("cv", 0.0, 1e6),
    4: ("shape", 0.0, 1e6),
    5: ("scale", 0.0, 1e12),
}


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
    """{tokens: probability} from its Python-literal text: counts in [0, MAX_TOKENS], finite
    non-negative probabilities not all zero."""
    if len(text) > MAX_TABLE_CHARS:
        raise UserInputError(f"{path}: field {key!r}: table longer than {MAX_TABLE_CHARS} characters")
    try:
        table = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError):
        raise UserInputError(f"{path}: field {key!r}: not a Python dict literal") from None
    if not isinstance(table, dict) or not table:
        return None
    counts, weights = list(table), list(table.values())
    if not all(isinstance(k, int) and not isinstance(k, bool) and 0 <= k <= MAX_TOKENS for k in counts):
        raise UserInputError(
            f"{path}: field {key!r}: token counts must be whole numbers in [0, {MAX_TOKENS}]"
        )
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v < math.inf for v in weights):
        raise UserInputError(f"{path}: field {key!r}: probabilities must be finite numbers >= 0")
    values = np.array(counts, dtype=np.int64)
    try:
        probs = np.array([float(v) for v in weights])
    except OverflowError:  # an integer too large for a float (found by the fuzz campaign, seed 4)
        raise UserInputError(f"{path}: field {key!r}: a probability too large for a number") from None
    if not 0 < probs.sum() < math.inf:
        raise UserInputError(f"{path}: field {key!r}: probabilities must not be all 0")
    return values, probs / probs.sum()


def _read_trace_csv(path: Path) -> pd.DataFrame:
    """A chunk's window rows, every field checked (row and field named on error)."""
    try:
        table = pd.read_csv(path, header=None, dtype=str, keep_default_na=False)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise UserInputError(f"{path}: bad or empty ServeGen trace CSV ({first_line(exc)})") from None
    if table.shape[1] != 6:
        raise UserInputError(f"{path}: row 1: expected 6 fields, got {table.shape[1]}")
    for column, (name, low, high) in FIELDS.items():
        values = numeric_values(table[column].replace("", "0"))
        bad = ~((values >= low) & (values <= high))  # NaN fails too
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            shown = str(table[column].iloc[row])[:40]
            raise UserInputError(
                f"{path}: row {row + 1}: field {name!r}: not a number in [{low:g}, {high:g}]: {shown!r}"
            )
        table[column] = values
    unknown = ~table[3].isin(FAMILIES)
    if unknown.any():
        row = int(np.flatnonzero(unknown.to_numpy())[0])
        raise UserInputError(
            f"{path}: row {row + 1}: field 'family': one of {', '.join(FAMILIES[:3])} or empty"
        )
    return table


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
    expected = 0.0
    for chunk, path in files:
        rng = np.random.default_rng([seed, chunk])
        table = _read_trace_csv(path)
        end_s = start_s + duration_s
        live = table[(table[0] + WINDOW_S > start_s) & (table[0] < end_s) & (table[1] > 0)]
        overlap_s = (np.minimum(live[0] + WINDOW_S, end_s) - np.maximum(live[0], start_s)).clip(lower=0)
        expected += float((live[1] * overlap_s).sum())  # checked before any arrival is drawn
        if expected > MAX_REQUESTS:
            raise UserInputError(
                f"{folder}: over {MAX_REQUESTS} requests between {start_s:g} and {end_s:g} s; "
                "use a shorter --duration"
            )
        times: list[float] = []
        for _, row in live.iterrows():
            times.extend(_window_arrivals(rng, row, start_s, end_s))
        if not times:
            continue
        data_path = path.with_name(f"chunk-{chunk}-dataset.json")
        dataset = read_json_any(data_path) if data_path.exists() else None
        if dataset is not None and not isinstance(dataset, dict):
            raise UserInputError(f"{data_path}: expected a JSON object of windows")
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
