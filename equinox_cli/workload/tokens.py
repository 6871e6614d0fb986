"""Token counts for traces that carry text, not counts.

With `--tokenizer PATH` (a Hugging Face `tokenizer.json`, or a model folder holding one, read with
the optional `tokenizers` package) counts are exact for that tokenizer; `--engine vllm` with a
model folder uses that model's. Without one, a documented approximation is used:
ceil(characters / 4), the usual rule of thumb for English text with BPE tokenizers; callers warn.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from equinox_cli.core.errors import UserInputError

CHARS_PER_TOKEN = 4.0

TokenCounter = Callable[[str], int]


def approximate_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / CHARS_PER_TOKEN))


def load_token_counter(tokenizer_path: Path | None) -> tuple[TokenCounter, bool]:
    """(counter, exact): the tokenizer file's counter, or the approximation when none is given."""
    if tokenizer_path is None:
        return approximate_tokens, False
    if tokenizer_path.is_dir():
        if not (tokenizer_path / "tokenizer.json").is_file():
            raise UserInputError(f"{tokenizer_path}: --tokenizer folder has no tokenizer.json")
        tokenizer_path = tokenizer_path / "tokenizer.json"
    if not tokenizer_path.is_file():
        raise UserInputError(f"{tokenizer_path}: --tokenizer file not found")
    try:
        from tokenizers import Tokenizer  # optional dependency, imported only when asked for
    except ImportError:
        raise UserInputError("--tokenizer needs the 'tokenizers' package: pip install tokenizers") from None
    try:
        tokenizer = Tokenizer.from_file(str(tokenizer_path))
    except Exception as exc:  # the library raises its own untyped errors
        raise UserInputError(f"{tokenizer_path}: not a tokenizer.json file: {exc}") from None

    def count(text: str) -> int:
        return max(1, len(tokenizer.encode(text, add_special_tokens=False).ids))

    return count, True
