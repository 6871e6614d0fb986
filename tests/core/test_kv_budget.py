"""The KV gate's peak-need arithmetic on hand-worked batches."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from equinox_cli.core.kv_budget import need_blocks, peak_need_blocks, sum_need_blocks


def test_staggered_finishes_need_less_than_the_sum() -> None:
    # blocks of 10 tokens; (current, remaining): 10 + 90 | 10 + 10 | 10 + 10
    batch = [(10, 90), (10, 10), (10, 10)]
    # after 10 steps the two short ones leave: peak = max(1 + 9, 2 + 2·1, 3 + 3·1) = 10
    assert peak_need_blocks(batch, 10) == 10
    assert sum_need_blocks(batch, 10) == 1 + 9 + 1 + 1 + 1 + 1 == 14


def test_uniform_lengths_need_the_sum_so_admission_comes_in_waves() -> None:
    batch = [(40, 40)] * 12  # 12 requests of 40 + 40 tokens, blocks of 16
    assert peak_need_blocks(batch, 16) == sum_need_blocks(batch, 16) == 12 * (3 + 3)
    assert need_blocks("peak", batch, 16) == 72 and need_blocks("sum", batch, 16) == 72


batches = st.lists(st.tuples(st.integers(0, 5000), st.integers(1, 5000)), min_size=1, max_size=40)


@given(batches, st.integers(1, 64))
def test_peak_never_exceeds_the_sum_and_covers_the_largest_request(batch, block) -> None:  # type: ignore[no-untyped-def]
    peak = peak_need_blocks(batch, block)
    assert peak <= sum_need_blocks(batch, block)
    assert peak >= max(-(-c // block) + -(-r // block) for c, r in batch)
