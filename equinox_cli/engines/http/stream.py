"""Parsing of an OpenAI completions stream (server-sent events), independent of the transport."""

from __future__ import annotations

import json
from dataclasses import dataclass


class StreamError(Exception):
    """The stream broke its contract (malformed chunk, error object)."""


@dataclass(slots=True)
class Chunk:
    text_tokens: int  # 1 when the chunk carries generated text, else 0
    usage_tokens: int | None  # completion_tokens of a usage chunk
    done: bool


def parse_line(line: bytes) -> Chunk | None:
    """One SSE line → a Chunk, None for lines that carry nothing (blank, comments, other fields)."""
    text = line.decode("utf-8", errors="replace").strip()
    if not text.startswith("data:"):
        return None
    payload = text[5:].strip()
    if payload == "[DONE]":
        return Chunk(0, None, True)
    try:
        obj = json.loads(payload)
    except ValueError:
        raise StreamError(f"malformed stream chunk: {payload[:80]!r}") from None
    if not isinstance(obj, dict):
        raise StreamError(f"malformed stream chunk: {payload[:80]!r}")
    if "error" in obj:
        raise StreamError(f"server error in stream: {str(obj['error'])[:120]}")
    usage = obj.get("usage")
    usage_tokens = None
    if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
        usage_tokens = int(usage["completion_tokens"])
    choices = obj.get("choices") or []
    has_text = any(isinstance(c, dict) and c.get("text") for c in choices)
    return Chunk(1 if has_text else 0, usage_tokens, False)
