"""LMSYS-Chat-1M style records (JSON Lines or a JSON list).

Each record: {conversation_id, model, conversation: [{role: user|assistant, content}], ...}.
Each user turn followed by an assistant turn is one request; `model` and `conversation_id` are
kept as columns, so `--tenants column:model` maps each model to a tenant. No arrival times.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from equinox_cli.core.errors import UserInputError
from equinox_cli.workload.readers.raw import RawTrace, iter_jsonl, read_json_any
from equinox_cli.workload.tokens import TokenCounter


def _records(path: Path) -> list[tuple[int, dict[str, object]]]:
    with path.open(encoding="utf-8", errors="replace") as handle:
        head = handle.read(1).strip() if handle else ""
    if head == "[":
        data = read_json_any(path)
        assert isinstance(data, list)
        return [(i, obj) for i, obj in enumerate(data, start=1)]
    return list(iter_jsonl(path))


def read_lmsys(path: Path, count: TokenCounter) -> RawTrace:
    rows: list[dict[str, object]] = []
    for row, record in _records(path):
        turns = record.get("conversation") if isinstance(record, dict) else None
        if not isinstance(turns, list):
            raise UserInputError(f"{path}: row {row}: field 'conversation': missing or not a list")
        for i, turn in enumerate(turns[:-1]):
            nxt = turns[i + 1]
            if not (isinstance(turn, dict) and isinstance(nxt, dict)):
                raise UserInputError(f"{path}: row {row}: field 'conversation': turn not an object")
            if turn.get("role") != "user" or nxt.get("role") != "assistant":
                continue
            prompt, reply = turn.get("content"), nxt.get("content")
            if not isinstance(prompt, str) or not isinstance(reply, str):
                raise UserInputError(f"{path}: row {row}: field 'content': missing or not text")
            rows.append(
                {
                    "prompt": prompt,
                    "prompt_tokens": count(prompt),
                    "output_tokens": count(reply),
                    "model": str(record.get("model", "unknown")),
                    "session": str(record.get("conversation_id", row)),
                }
            )
    if not rows:
        raise UserInputError(f"{path}: empty trace (no user/assistant turn pairs)")
    return RawTrace(frame=pd.DataFrame(rows), format="lmsys")
