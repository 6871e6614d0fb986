"""ShareGPT JSON: a list of {id, conversations: [{from: human|gpt, value: text}, ...]}.

Each human turn followed by a gpt turn is one request (prompt = the human text, output = the
reply's token count). A file of prompts only (no gpt turns) needs output lengths from elsewhere:
they are drawn from a seeded lognormal (median 200 tokens), with a warning. ShareGPT has no
arrival times; build_workload() gives it Poisson arrivals at --rate.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from equinox_cli.core.errors import UserInputError
from equinox_cli.workload.readers.raw import RawTrace, read_json_any
from equinox_cli.workload.tokens import TokenCounter

HUMAN = ("human", "user")
MODEL = ("gpt", "chatgpt", "bard", "bing", "model", "assistant")


def read_sharegpt(path: Path, count: TokenCounter, seed: int) -> RawTrace:
    data = read_json_any(path)
    if not isinstance(data, list):
        raise UserInputError(f"{path}: not a ShareGPT file: expected a JSON list of conversations")
    rows: list[dict[str, object]] = []
    prompts_only = 0
    for index, conv in enumerate(data, start=1):
        turns = conv.get("conversations") if isinstance(conv, dict) else None
        if not isinstance(turns, list):
            raise UserInputError(f"{path}: row {index}: field 'conversations': missing or not a list")
        conv_id = str(conv.get("id", index))
        for turn_no, turn in enumerate(turns):
            if not isinstance(turn, dict) or not isinstance(turn.get("value"), str):
                raise UserInputError(f"{path}: row {index}: field 'value': missing or not text")
            if turn.get("from") not in HUMAN:
                continue
            reply = turns[turn_no + 1] if turn_no + 1 < len(turns) else None
            # a reply without text is refused when the loop reaches it (row and field named)
            has_reply = isinstance(reply, dict) and reply.get("from") in MODEL and "value" in reply
            text = turn["value"]
            out = count(str(reply["value"])) if has_reply and reply is not None else -1
            prompts_only += out < 0
            rows.append(
                {
                    "prompt": text,
                    "prompt_tokens": count(text),
                    "output_tokens": out,
                    "session": conv_id,
                    "turn": turn_no // 2,
                }
            )
    if not rows:
        raise UserInputError(f"{path}: empty trace (no human turns)")
    frame = pd.DataFrame(rows)
    warnings = []
    if prompts_only:
        rng = np.random.default_rng(seed)
        missing = frame["output_tokens"] < 0
        drawn = np.clip(rng.lognormal(np.log(200.0), 0.8, int(missing.sum())), 1, 2048)
        frame.loc[missing, "output_tokens"] = drawn.round().astype(int)
        warnings.append(
            f"{path}: {prompts_only} prompt(s) have no reply; output lengths drawn from a seeded "
            "lognormal (median 200 tokens)"
        )
    return RawTrace(frame=frame, format="sharegpt", warnings=warnings)
