"""Trace fuzzing shared by the test suite (tests/workload/test_fuzz.py, hypothesis) and the long
campaign (benchmarks/fuzz_workload.py): real trace snippets from ../shared/traces, mutated, fed to
build_workload(). An input may be refused (UserInputError, one line) or accepted; any other
exception is a crash, and an accepted workload must satisfy INVARIANTS."""

from __future__ import annotations

import io
import json
import math
import random
import shutil
import traceback
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from equinox_cli.core.errors import UserInputError
from equinox_cli.workload.build import WorkloadSpec, build_workload
from equinox_cli.workload.limits import MAX_TOKENS

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "traces"
SNIPPET_LINES = 40
# values a careless or hostile trace may hold
TOKENS = [
    b"0",
    b"-1",
    b"1e20",
    b"18446744073709551615",
    b"9223372036854775808",
    b"1" * 400,
    b"true",
    b"false",
    b"null",
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"1.5",
    b'""',
    b'"x"',
    b"{}",
    b"[]",
    b"[" * 2000,
    b'{"a":' * 2000,
    b"\xff\xfe",
    b"\x00",
    b",",
    b"\n",
    b'"',
    b"1e308",
    b"5e-324",
    b"-0",
    b"0x10",
    b'"12"',
    b"  ",
    b"1_000",
]


@dataclass(frozen=True)
class Seed:
    name: str  # file name the mutant is written as (its suffix drives detection)
    fmt: str | None  # --format, or None to detect
    data: bytes


def _head(path: Path, lines: int = SNIPPET_LINES) -> bytes:
    with path.open("rb") as handle:
        return b"".join(handle.readline() for _ in range(lines))


def _canonical_rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "request_id": [f"r{i}" for i in range(8)],
            "client_id": ["a", "b"] * 4,
            "arrival_s": [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5],
            "prompt_tokens": [10, 20, 30, 40, 50, 60, 70, 80],
            "output_tokens": [5, 6, 7, 8, 9, 10, 11, 12],
            "weight": [1.0, 2.0] * 4,
            "max_tokens": [64] * 8,
        }
    )


LMSYS = [
    {
        "conversation_id": f"c{i}",
        "model": ["vicuna-13b", "koala-13b"][i % 2],
        "conversation": [
            {"role": "user", "content": "How do fair schedulers share a GPU? " * (i + 1)},
            {"role": "assistant", "content": "They charge each tenant for its service. " * (2 * i + 1)},
        ],
    }
    for i in range(6)
]


def _servegen_dataset() -> bytes:
    """The first dataset windows of a real ServeGen client (the whole file is large)."""
    windows = json.loads((SHARED / "servegen_m_small" / "chunk-30-dataset.json").read_text())
    first = dict(list(windows.items())[:2])
    return json.dumps(first).encode()


def seeds() -> list[Seed]:
    """One snippet per format, from the shared real traces (and a generated canonical table)."""
    canonical = _canonical_rows()
    parquet = io.BytesIO()
    canonical.to_parquet(parquet, index=False)
    sharegpt = (SHARED / "sharegpt_prompts_500" / "ShareGPT_V3_filtered_500.json").read_bytes()[:6000]
    return [
        Seed("trace.csv", None, canonical.to_csv(index=False).encode()),
        Seed("trace.jsonl", None, canonical.to_json(orient="records", lines=True).encode()),
        Seed("trace.parquet", "canonical", parquet.getvalue()),
        Seed("sharegpt.json", "sharegpt", sharegpt[: sharegpt.rfind(b"}, {") + 1] + b"]"),
        Seed("arena.jsonl", "arena", _head(SHARED / "arena_hard_auto" / "arena_hard_flat.jsonl", 12)),
        Seed("conv.csv", "azure", _head(SHARED / "azure_llm_2023" / "AzureLLMInferenceTrace_conv.csv")),
        Seed("mooncake.jsonl", "mooncake", _head(SHARED / "mooncake" / "conversation_trace.jsonl")),
        Seed("lmsys.json", "lmsys", json.dumps(LMSYS).encode()),
        Seed(
            "vidur.csv",
            "vidur",
            _head(SHARED / "sharegpt_lengths_sarathi" / "sharegpt_8k_filtered_stats_llama2_tokenizer.csv"),
        ),
        Seed("chunk-30-trace.csv", "servegen", _head(SHARED / "servegen_m_small" / "chunk-30-trace.csv", 20)),
        Seed(
            "chunk-30-dataset.json",
            "servegen",
            _servegen_dataset(),
        ),
    ]


def mutate(data: bytes, rng: random.Random, rounds: int = 3) -> bytes:
    """A few random edits: replace a number or a span, insert a token, drop or repeat a line."""
    out = bytearray(data)
    for _ in range(rng.randint(1, rounds)):
        kind = rng.randrange(6)
        pos = rng.randrange(len(out) + 1)
        if kind == 0 and out:  # replace a run of digits with a hostile token
            digits = [i for i in range(len(out)) if chr(out[i]).isdigit()]
            if digits:
                start = rng.choice(digits)
                end = start
                while end < len(out) and (chr(out[end]).isdigit() or out[end] in b".e+-"):
                    end += 1
                out[start:end] = rng.choice(TOKENS)
        elif kind == 1:
            out[pos:pos] = rng.choice(TOKENS)
        elif kind == 2 and out:
            end = min(len(out), pos + rng.randint(1, 40))
            del out[pos:end]
        elif kind == 3 and out:
            out[rng.randrange(len(out))] = rng.randrange(256)
        elif kind == 4:  # repeat or drop a line
            lines = bytes(out).split(b"\n")
            i = rng.randrange(len(lines))
            lines.insert(i, lines[i]) if rng.random() < 0.5 else lines.pop(i)
            out = bytearray(b"\n".join(lines))
        else:  # truncate
            out = out[:pos]
    return bytes(out)


@dataclass(frozen=True)
class Outcome:
    kind: str  # "accepted", "refused" or "crash"
    detail: str  # the refusal's message, or the crash's signature


def run_one(seed: Seed, data: bytes, folder: Path) -> Outcome:
    """Write the mutant (a ServeGen seed as its folder), build it, classify the result."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    if seed.fmt == "servegen":
        for other in ("chunk-30-trace.csv", "chunk-30-dataset.json"):
            original = SHARED / "servegen_m_small" / other
            (folder / other).write_bytes(
                data
                if other == seed.name
                else _head(original, 20)
                if other.endswith(".csv")
                else original.read_bytes()
            )
        source = folder
    else:
        source = folder / seed.name
        source.write_bytes(data)
    spec = WorkloadSpec(
        source=str(source), format=seed.fmt, duration_s=10.0 if seed.fmt == "servegen" else None
    )
    try:
        workload, _ = build_workload(spec)
    except UserInputError as exc:
        message = str(exc)
        if "\n" in message or not message:
            return Outcome("crash", f"multi-line or empty refusal: {message[:60]!r}")
        return Outcome("refused", message)
    except RecursionError:
        return Outcome("crash", "RecursionError")
    except Exception as exc:
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        return Outcome("crash", f"{type(exc).__name__} at {Path(frame.filename).name}:{frame.lineno}")
    problem = invariant_problem(workload)
    return (
        Outcome("crash", f"invariant: {problem.split(' ')[0]} {problem.split(' ')[1]}")
        if problem
        else Outcome("accepted", "")
    )


def invariant_problem(workload: object) -> str | None:
    """What is wrong with an accepted workload (None: nothing)."""
    items = workload.items  # type: ignore[attr-defined]
    if not items:
        return "no requests"
    ids = [it.request.request_id for it in items]
    if len(set(ids)) != len(ids):
        return "duplicate request ids"
    arrivals = [it.request.arrival_s for it in items]
    if any(not math.isfinite(a) or a < 0 for a in arrivals) or arrivals != sorted(arrivals):
        return "arrivals not finite, non-negative and sorted"
    for it in items:
        r = it.request
        for name, value in (
            ("prompt", r.prompt_tokens),
            ("output", it.output_tokens),
            ("max_tokens", r.max_tokens),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TOKENS:
                return f"{name} tokens {value!r} outside [1, {MAX_TOKENS}]"
        if not (math.isfinite(r.weight) and r.weight > 0):
            return f"weight {r.weight!r}"
        if not r.client_id:
            return "empty client id"
    return None
