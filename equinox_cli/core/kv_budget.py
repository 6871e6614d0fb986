"""The KV gate's arithmetic, shared by the simulator and the vLLM plug-in.

A running batch does not need the sum of its requests' final sizes at once: they finish at staggered
times and free their blocks. With each request's current tokens and predicted remaining tokens,
sort by remaining, longest first (r_1 ≥ r_2 ≥ … ≥ r_n). When request j finishes (r_j steps from
now) the ones still holding memory are 1..j, each grown by r_j, so the batch then holds
    Σ_{i≤j} ⌈current_i / B⌉ + j·⌈r_j / B⌉   blocks (B tokens each; exact when sizes are whole
blocks, at most one block per request too many otherwise: the gate never over-commits),
and the peak need over time is the largest of these (S-LoRA's admission rule, `req_queue.py`).
The "sum" rule budgets Σ ⌈current_i / B⌉ + ⌈r_i / B⌉: every request at its final size at once.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

RULES = ("peak", "sum")


def _blocks(tokens: float, block_size: int) -> int:
    return -(-math.ceil(tokens) // block_size)


def peak_need_blocks(batch: Iterable[tuple[int, float]], block_size: int) -> int:
    """Peak KV blocks over time of requests given as (current tokens, predicted remaining tokens)."""
    peak = held = 0
    for j, (current, remaining) in enumerate(sorted(batch, key=lambda x: x[1], reverse=True), start=1):
        held += _blocks(current, block_size)
        peak = max(peak, held + j * _blocks(remaining, block_size))
    return peak


def sum_need_blocks(batch: Iterable[tuple[int, float]], block_size: int) -> int:
    """Every request at its final size at once."""
    return sum(_blocks(current, block_size) + _blocks(remaining, block_size) for current, remaining in batch)


def need_blocks(rule: str, batch: Iterable[tuple[int, float]], block_size: int) -> int:
    return peak_need_blocks(batch, block_size) if rule == "peak" else sum_need_blocks(batch, block_size)
