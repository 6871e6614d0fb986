"""The KV gate's arithmetic, shared by the simulator and the vLLM plug-in.

A running batch does not need the sum of its requests' final sizes at once: they finish at staggered
times and free their blocks. With each request's current tokens and predicted remaining tokens,
sort by remaining, longest first (r_1 ≥ r_2 ≥ … ≥ r_n). When request j finishes (at r_j steps from
now) the ones still holding memory are 1..j, each grown by r_j, so the batch's need then is
    Σ_{i≤j} current_i + j·r_j   tokens (+ at most one partly filled block per live request),
and the peak need over time is the largest of these (S-LoRA's admission rule, `req_queue.py`).
The "sum" rule budgets Σ (current_i + r_i): every request at its final size at once.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

RULES = ("peak", "sum")


def peak_need_blocks(batch: Iterable[tuple[int, float]], block_size: int) -> int:
    """Peak KV blocks over time of requests given as (current tokens, predicted remaining tokens)."""
    ordered = sorted(batch, key=lambda item: item[1], reverse=True)
    peak = 0
    held = 0
    for j, (current, remaining) in enumerate(ordered, start=1):
        held += current
        tokens = held + j * math.ceil(remaining)
        need = -(-(tokens + j * (block_size - 1)) // block_size)  # each live request: ≤ 1 partial block
        peak = max(peak, need)
    return peak


def sum_need_blocks(batch: Iterable[tuple[int, float]], block_size: int) -> int:
    """Every request at its final size at once."""
    return sum(-(-int(current + math.ceil(remaining)) // block_size) for current, remaining in batch)


def need_blocks(rule: str, batch: Iterable[tuple[int, float]], block_size: int) -> int:
    return peak_need_blocks(batch, block_size) if rule == "peak" else sum_need_blocks(batch, block_size)
