"""The common result of every format reader, and helpers they share."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from equinox_cli.core.checks import reject_constant
from equinox_cli.core.errors import UserInputError
from equinox_cli.workload.limits import MAX_TOKENS
from equinox_cli.workload.schema import shown


@dataclass
class RawTrace:
    """A reader's rows before tenant assignment and validation.

    frame has at least prompt_tokens and output_tokens; arrival_s when the source has times;
    client_id when the source has tenants; any other columns may serve as `--tenants column:X`.
    """

    frame: pd.DataFrame
    format: str
    warnings: list[str] = field(default_factory=list)


def first_line(exc: BaseException) -> str:
    """An exception's message as one line (libraries' messages span several)."""
    text = " ".join(str(exc).split())
    return text[:300] if text else type(exc).__name__


def read_json_any(path: Path) -> object:
    """A JSON document, with a one-line error naming the file and the position."""
    try:
        with path.open(encoding="utf-8") as handle:
            text = handle.read()
        return _without_surrogates(json.loads(text, parse_constant=reject_constant), text)
    except json.JSONDecodeError as exc:
        raise UserInputError(f"{path}: line {exc.lineno}: bad JSON: {exc.msg}") from None
    except UnicodeDecodeError as exc:
        raise UserInputError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except (RecursionError, ValueError) as exc:
        raise UserInputError(f"{path}: bad JSON: {first_line(exc)}") from None


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _without_surrogates(data: object, text: str) -> object:
    """JSON may escape lone UTF-16 surrogates ("\\ud800"), which no UTF-8 column can hold:
    replace them with U+FFFD (walked only when the text has such an escape)."""
    if not _SURROGATE_ESCAPE.search(text):
        return data

    def clean(value: object) -> object:
        if isinstance(value, str):
            return _SURROGATE.sub("\ufffd", value)
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, dict):
            return {clean(k): clean(v) for k, v in value.items()}
        return value

    return clean(data)


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, object]]]:
    """(line number, object) for each non-blank line of a JSON Lines file."""
    try:
        with path.open(encoding="utf-8") as handle:
            for lineno, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    obj = _without_surrogates(json.loads(line, parse_constant=reject_constant), line)
                except json.JSONDecodeError as exc:
                    raise UserInputError(f"{path}: row {lineno}: bad JSON: {exc.msg}") from None
                except (RecursionError, ValueError) as exc:
                    raise UserInputError(f"{path}: row {lineno}: bad JSON: {first_line(exc)}") from None
                if not isinstance(obj, dict):
                    raise UserInputError(f"{path}: row {lineno}: expected a JSON object")
                yield lineno, obj
    except UnicodeDecodeError as exc:
        raise UserInputError(f"{path}: not UTF-8 text ({exc.reason})") from None


def read_csv(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise UserInputError(f"{path}: empty file") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OverflowError) as exc:
        raise UserInputError(f"{path}: bad CSV: {first_line(exc)}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def require_columns(frame: pd.DataFrame, path: Path, columns: tuple[str, ...], fmt: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise UserInputError(
            f"{path}: not a {fmt} file: missing column(s) {', '.join(missing)} "
            f"(found: {', '.join(map(shown, frame.columns))})"
        )


def int_field(obj: dict[str, object], key: str, path: Path, row: int, high: float = MAX_TOKENS) -> int:
    """A non-negative integer field of a JSON record, at most `high`, or a one-line error."""
    if key not in obj:
        raise UserInputError(f"{path}: row {row}: field {key!r}: missing")
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UserInputError(f"{path}: row {row}: field {key!r}: not a number: {str(value)[:40]!r}")
    if not 0 <= value <= high or value != int(value):  # bounded before any cast; NaN fails
        raise UserInputError(
            f"{path}: row {row}: field {key!r}: not a count in [0, {high:g}]: {str(value)[:40]}"
        )
    return int(value)
