"""One reader per external trace format, and the registry that `build_workload` and the CLI's help
use: each format's one-line description and its reader, called the same way."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

from equinox_cli.workload.tokens import load_token_counter

if TYPE_CHECKING:
    from equinox_cli.workload.readers.raw import RawTrace


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """What a reader may need beyond the path (most need none of it)."""

    seed: int = 42
    start_s: float = 0.0
    duration_s: float | None = None
    tokenizer: Path | None = None


@dataclass(frozen=True, slots=True)
class Reader:
    summary: str
    read: Callable[[Path, ReadOptions], RawTrace]


def _reader(name: str) -> Callable[..., RawTrace]:
    """`module.function` of this package, imported when a trace is read (the readers need pandas,
    which the CLI's help and option checks must not wait for)."""
    module, function = name.split(".")
    reader: Callable[..., RawTrace] = getattr(import_module(f"{__name__}.{module}"), function)
    return reader


def _call(name: str, *args: Any) -> RawTrace:
    return _reader(name)(*args)


def _text(name: str, seeded: bool) -> Callable[[Path, ReadOptions], RawTrace]:
    """A reader of text conversations: token counts from --tokenizer, else approximated (warned)."""

    def read(path: Path, options: ReadOptions) -> RawTrace:
        count, exact = load_token_counter(options.tokenizer)
        reader = _reader(name)
        raw = reader(path, count, options.seed) if seeded else reader(path, count)
        if not exact:
            raw.warnings.append(f"{path}: no --tokenizer given: token counts approximated as ceil(chars / 4)")
        return raw

    return read


READERS: dict[str, Reader] = {
    "canonical": Reader(
        "this toolkit's columns, Parquet/CSV/JSONL (traces convert writes it)",
        lambda p, o: _call("canonical.read_canonical", p),
    ),
    "sharegpt": Reader(
        "ShareGPT conversations (text: token counts from --tokenizer)",
        _text("sharegpt.read_sharegpt", seeded=True),
    ),
    "lmsys": Reader("LMSYS-Chat-1M conversations (text)", _text("lmsys.read_lmsys", seeded=False)),
    "arena": Reader(
        "Arena-Hard-Auto answers with token counts per model",
        lambda p, o: _call("arena.read_arena", p, o.seed),
    ),
    "burstgpt": Reader(
        "BurstGPT request log (timestamps and token counts)", lambda p, o: _call("timed.read_burstgpt", p)
    ),
    "azure": Reader(
        "Azure LLM inference trace 2023 (timestamps and token counts)",
        lambda p, o: _call("timed.read_azure", p),
    ),
    "mooncake": Reader(
        "Mooncake trace (timestamps, lengths, prefix hash_ids)", lambda p, o: _call("timed.read_mooncake", p)
    ),
    "vidur": Reader(
        "Vidur / Sarathi-Serve processed trace (token counts; arrived_at if timed, else --rate)",
        lambda p, o: _call("vidur.read_vidur", p, o.seed),
    ),
    "servegen": Reader(
        "a ServeGen folder of per-client rate and length distributions (sampled, seeded)",
        lambda p, o: _call("servegen.read_servegen", p, o.seed, o.start_s, o.duration_s or 600.0),
    ),
}
FORMATS = tuple(READERS)


def formats_help() -> str:
    return "; ".join(f"{name} ({reader.summary})" for name, reader in READERS.items())
