"""Parsing of an OpenAI completions stream (server-sent events), independent of the transport."""

from __future__ import annotations

import json
from dataclasses import dataclass


class StreamError(Exception):
    """The stream broke its contract (malformed chunk, error object)."""


@dataclass(slots=True)
class Chunk:
    text_tokens: int  # tokens the chunk carries: len(token_ids) when sent, else 1 if it has text
    usage_tokens: int | None  # completion_tokens of a usage chunk (a count >= 0; else None)
    done: bool


def parse_line(line: bytes) -> Chunk | None:
    """One SSE line → a Chunk, None for lines that carry nothing (blank, comments, other fields)."""
    if not line.startswith(b"data:"):  # SSE fields start their line; blank lines and comments don't
        line = line.lstrip()
        if not line.startswith(b"data:"):
            return None
    payload = line[5:].strip().decode("utf-8", errors="replace")  # a bad byte in a text still counts
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
    if isinstance(usage, dict):
        claimed = usage.get("completion_tokens")
        if isinstance(claimed, int) and not isinstance(claimed, bool) and claimed >= 0:
            usage_tokens = claimed
    choices = obj.get("choices")
    if choices is None:
        return Chunk(0, usage_tokens, False)
    if not isinstance(choices, list):
        raise _not_objects(payload)
    tokens = 0
    for choice in choices:  # a plain loop: this runs for every token streamed
        if not isinstance(choice, dict):
            raise _not_objects(payload)
        tokens += _tokens(choice)
    return Chunk(tokens, usage_tokens, False)


def _not_objects(payload: str) -> StreamError:
    return StreamError(f"malformed stream chunk: 'choices' is not a list of objects: {payload[:80]!r}")


def _tokens(choice: dict[str, object]) -> int:
    """Tokens in one streamed choice: its token ids when the server sends them (vLLM's
    `return_token_ids`), else one for a non-empty text delta."""
    ids = choice.get("token_ids")
    if isinstance(ids, list):
        return len(ids)
    delta = choice.get("delta")
    content = delta.get("content") if isinstance(delta, dict) else None  # chat completions
    return 1 if choice.get("text") or content else 0
