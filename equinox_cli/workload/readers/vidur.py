"""Vidur's and Sarathi-Serve's processed traces: token counts per request, arrival times optional.

CSV columns `num_prefill_tokens`, `num_decode_tokens` (others such as `num_total_tokens` and
`pd_ratio` are kept for `--tenants column:X`), and `arrived_at` (seconds) when the trace has times
(e.g. Vidur's `splitwise_conv.csv`). Without times (e.g. `sharegpt_8k_filtered_stats_llama2_tokenizer
.csv`) the rows are shuffled with the seed, as Vidur's trace length generator does, and then get
Poisson arrivals at `--rate`: the file keeps a conversation's turns together, which would otherwise
send them back to back. Vidur clips a request that overflows its `max_tokens` by shrinking prompt and
output in proportion; here the model's context does what a server does (README, "The simulator").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from equinox_cli.core.errors import UserInputError
from equinox_cli.workload.limits import MAX_ARRIVAL_S
from equinox_cli.workload.readers.raw import RawTrace, read_csv, require_columns
from equinox_cli.workload.readers.timed import finish_trace, token_counts
from equinox_cli.workload.schema import check_numeric

VIDUR_COLUMNS = ("num_prefill_tokens", "num_decode_tokens")
ARRIVAL_COLUMN = "arrived_at"


def read_vidur(path: Path, seed: int) -> RawTrace:
    frame = read_csv(path)
    require_columns(frame, path, VIDUR_COLUMNS, "Vidur/Sarathi processed trace")
    if frame.empty:
        raise UserInputError(f"{path}: empty trace (no rows)")
    prompt = token_counts(frame, path, "num_prefill_tokens")
    output = token_counts(frame, path, "num_decode_tokens")
    extra = frame.drop(columns=[*VIDUR_COLUMNS, ARRIVAL_COLUMN], errors="ignore")
    out = extra.assign(prompt_tokens=prompt, output_tokens=output)
    if ARRIVAL_COLUMN in frame.columns:
        check_numeric(frame, str(path), ARRIVAL_COLUMN, integer=False, positive=False, high=MAX_ARRIVAL_S)
        return finish_trace(out.assign(arrival_s=frame[ARRIVAL_COLUMN].to_numpy(float)), path, "vidur")
    order = np.random.default_rng(seed).permutation(len(out))
    return finish_trace(out.iloc[order], path, "vidur")
