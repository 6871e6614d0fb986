"""Arena-Hard-Auto flattened answers (`arena_hard_flat.jsonl`): real prompt text and real output lengths.

One record per (prompt, model answer) with `prompt`, `model`, `set`, `category` and Llama-2 token counts
`prompt_tokens_llama2` / `output_tokens_llama2`. The answering model is kept as a column (`--tenants
column:model`, the default for this format, since output length belongs to the model as much as to
the prompt). No arrival times: Poisson arrivals at `--rate` are drawn in the order of a seeded
shuffle within each benchmark set (the file groups answers by model, which would make tenants take
turns instead of sharing the engine); the sets keep their file order (v1, then the harder v0.1 and
v2.0), so the later part of the trace is a real distribution shift.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from equinox_cli.core.errors import UserInputError
from equinox_cli.workload.readers.raw import RawTrace, int_field, iter_jsonl

PROMPT_FIELD = "prompt_tokens_llama2"
OUTPUT_FIELD = "output_tokens_llama2"


def read_arena(path: Path, seed: int) -> RawTrace:
    rows: list[dict[str, object]] = []
    for row, record in iter_jsonl(path):
        prompt = record.get("prompt")
        if not isinstance(prompt, str):
            raise UserInputError(f"{path}: row {row}: field 'prompt': missing or not text")
        output = int_field(record, OUTPUT_FIELD, path, row)
        if output == 0:
            continue  # an empty answer is not a request anyone waited for
        rows.append(
            {
                "prompt": prompt,
                "prompt_tokens": max(1, int_field(record, PROMPT_FIELD, path, row)),
                "output_tokens": output,
                "model": str(record.get("model", "unknown")),
                "set": str(record.get("set", "")),
                "category": str(record.get("category", "")),
            }
        )
    if not rows:
        raise UserInputError(f"{path}: empty trace (no answers)")
    frame = pd.DataFrame(rows)
    rng = np.random.default_rng(seed)
    set_rank = {name: i for i, name in enumerate(dict.fromkeys(frame["set"]))}
    order = np.lexsort((rng.random(len(frame)), frame["set"].map(set_rank).to_numpy()))
    frame = frame.iloc[order].reset_index(drop=True)
    frame["client_id"] = frame["model"]
    return RawTrace(frame=frame, format="arena")
