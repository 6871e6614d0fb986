"""The KV ledger and the simulator's prefix cache: hits, LRU eviction, what is computed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from equinox_cli.core.types import Request, Workload, WorkloadItem
from equinox_cli.engines.sim.engine import SimEngine
from equinox_cli.engines.sim.kv import KVLedger, block_keys
from equinox_cli.engines.sim.profiles import get_profile
from equinox_cli.policies import make_policy
from equinox_cli.workload.build import WorkloadSpec, build_workload

MOONCAKE = Path(__file__).resolve().parents[3] / "shared" / "traces" / "mooncake" / "conversation_trace.jsonl"


def test_ledger_evicts_the_least_recently_released_cached_blocks_first() -> None:
    kv = KVLedger(6)
    kv.take(3)
    kv.register([10, 11, 12])  # request A's three computed blocks
    kv.release([10, 11, 12])  # A leaves: 12 queued first (a prefix's tail goes first), then 11, 10
    assert kv.free == 6 and list(kv.evictable) == [12, 11, 10]
    kv.take(4)  # 3 unallocated + one eviction
    assert kv.evicted_blocks == 1 and kv.cached_prefix([10, 11, 12]) == 2
    kv.acquire([10, 11])  # a hit takes cached blocks out of the free pool
    assert kv.free == 0 and kv.refs == {10: 1, 11: 1}
    with pytest.raises(RuntimeError, match="over capacity"):
        kv.take(1)


def test_block_keys_depend_on_the_whole_prefix() -> None:
    def keys(hashes: tuple[int, ...], prompt: int = 1024) -> tuple[int, ...]:
        request = Request("r", "c", 0.0, prompt, 10, prefix_hashes=hashes, prefix_block_tokens=512)
        return block_keys(request, 16)

    same, other = keys((1, 2)), keys((9, 2))
    assert len(same) == 64 and same == keys((1, 2))
    assert other[32:] != same[32:]  # block id 2 after a different first block is different content
    assert keys((1, 2), prompt=600)[:32] == same[:32] and len(keys((1, 2), prompt=600)) == 37
    assert keys(()) == ()


def _shared(rows: list[tuple[str, float, int, int, tuple[int, ...]]]) -> Workload:
    items = [
        WorkloadItem(Request(f"r{i}", c, t, p, o, prefix_hashes=h, prefix_block_tokens=64), o)
        for i, (c, t, p, o, h) in enumerate(rows)
    ]
    return Workload("prefix", tuple(items))


def _run(
    workload: Workload, capacity: int = 100_000, caching: bool = True
) -> tuple[pd.DataFrame, pd.DataFrame]:
    # a long-context model: Mooncake's prompts (up to ~85k tokens) must all run
    profile = replace(
        get_profile("a100-llama2-7b"),
        kv_capacity_tokens=capacity,
        prefix_caching=caching,
        max_model_len=200_000,
    )
    result = SimEngine(profile).run(workload, make_policy("fcfs", {}))
    return pd.DataFrame(result.requests).set_index("request_id"), pd.DataFrame(result.steps)


def test_a_shared_prefix_is_computed_once_and_the_last_token_always() -> None:
    """Two 256-token prompts with the same four 64-token blocks, one after the other: the second
    finds 240 tokens cached (15 blocks of 16: the last token is always computed, so its last block
    is not taken from the cache) and computes 16."""
    rows = [("a", 0.0, 256, 4, (1, 2, 3, 4)), ("b", 5.0, 256, 4, (1, 2, 3, 4))]
    requests, steps = _run(_shared(rows))
    assert requests["cached_tokens"].tolist() == [0, 240]
    assert steps["prefill_tokens"].sum() == 256 + 16
    plain, plain_steps = _run(_shared(rows), caching=False)
    assert plain["cached_tokens"].tolist() == [0, 0] and plain_steps["prefill_tokens"].sum() == 512


def test_a_different_prefix_shares_only_the_common_blocks() -> None:
    rows = [("a", 0.0, 256, 4, (1, 2, 3, 4)), ("b", 5.0, 256, 4, (1, 2, 7, 8))]
    requests, _ = _run(_shared(rows))
    assert requests.loc["r1", "cached_tokens"] == 128


def test_cached_blocks_are_evicted_when_the_pool_needs_them() -> None:
    """A 640-token pool: after A (prefix 1..4) a 636-token request with other content evicts A's
    blocks, so C (prefix 1..4 again) finds nothing; without the intruder it finds 240 tokens."""
    a, c = ("a", 0.0, 256, 4, (1, 2, 3, 4)), ("c", 10.0, 256, 4, (1, 2, 3, 4))
    intruder = ("b", 5.0, 636, 4, (20, 21, 22, 23, 24, 25, 26, 27, 28, 29))
    evicted, _ = _run(_shared([a, intruder, c]), capacity=640)
    kept, _ = _run(_shared([a, c]), capacity=640)
    assert evicted.loc["r2", "cached_tokens"] == 0
    assert kept.loc["r1", "cached_tokens"] == 240


def _ideal_reuse(workload: Workload) -> float:
    """Share of prompt tokens an unbounded cache would hold: leading 512-token blocks seen before."""
    seen: set[tuple[int, ...]] = set()
    hit = total = 0
    for item in workload.items:
        ids, k = item.request.prefix_hashes, 0
        while k < len(ids) and ids[: k + 1] in seen:
            k += 1
        hit += min(k * 512, item.request.prompt_tokens)
        total += item.request.prompt_tokens
        seen.update(ids[: i + 1] for i in range(len(ids)))
    return hit / total


@pytest.mark.skipif(not MOONCAKE.exists(), reason="needs ../shared/traces/mooncake")
def test_prefix_caching_on_a_mooncake_trace_finds_every_reusable_prefix_and_saves_ttft() -> None:
    """At low load (no queueing) with a cache large enough to keep everything, the simulator finds
    what an unbounded cache would (less the always-computed last token); the real-sized cache
    evicts conversations before their next turn and finds less."""
    workload, _ = build_workload(WorkloadSpec(source=str(MOONCAKE), duration_s=2400, time_scale=0.05))
    ideal = _ideal_reuse(workload)
    big, _ = _run(workload, capacity=4_000_000)
    small, _ = _run(workload, capacity=412_000)
    off, _ = _run(workload, capacity=4_000_000, caching=False)
    share = lambda r: r["cached_tokens"].sum() / r["prompt_tokens"].sum()  # noqa: E731
    assert ideal > 0.05 and share(big) == pytest.approx(ideal, rel=0.02)
    assert 0 < share(small) < share(big)
    ttft = lambda r: (r["first_token_s"] - r["arrival_s"]).mean()  # noqa: E731
    assert ttft(big) < ttft(off)
