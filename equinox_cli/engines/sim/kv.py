"""The KV-cache ledger: how many blocks are free, and which full prompt blocks are cached.

Blocks are counted, not placed. A block is either held (by one request, or by several through the
prefix cache), cached but unreferenced (evictable, kept in LRU order), or unallocated. `free` counts
the last two: vLLM's free-block queue also holds cached blocks until they are needed again.

Prefix caching as vLLM v1 does it: a full block is identified by the hash of its tokens and of every
block before it (`prefix_keys`), so two requests share a block only when their whole prefixes agree.
A request's computed full prompt blocks enter the cache when its prefill completes; a later request
whose leading keys are cached references those blocks instead of computing them; an unreferenced
block goes to the end of the LRU queue and is evicted only when unallocated blocks run out.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from equinox_cli.core.types import Request


def block_keys(request: Request, block_size: int) -> tuple[int, ...]:
    """Cache keys of a request's full prompt blocks of `block_size` tokens, from its prefix hashes.

    A trace block's key chains every id before it (equal keys, equal prefixes); a simulator block
    takes the key of the trace block holding its last token, and its own index.
    """
    span = request.prefix_block_tokens
    if not request.prefix_hashes or span <= 0:
        return ()
    chain, key = [], 0
    for block_id in request.prefix_hashes:
        key = hash((key, block_id))
        chain.append(key)
    full = min(request.prompt_tokens, len(chain) * span) // block_size
    return tuple(hash((chain[((k + 1) * block_size - 1) // span], k)) for k in range(full))


class KVLedger:
    def __init__(self, total_blocks: int) -> None:
        self.total = total_blocks
        self.free = total_blocks  # unallocated + cached-but-unreferenced
        self.refs: dict[int, int] = {}  # cached block key -> requests holding it
        self.evictable: OrderedDict[int, None] = OrderedDict()  # refs == 0, least recently used first
        self.hit_blocks = 0
        self.evicted_blocks = 0

    @property
    def used(self) -> int:
        return self.total - self.free

    def take(self, n: int) -> None:
        """Allocate `n` blocks, evicting the least recently used cached blocks when needed."""
        if n > self.free:
            raise RuntimeError(f"KV ledger over capacity: {n} > {self.free} free")  # a bug, never input
        short = n - (self.free - len(self.evictable))
        while short > 0:  # (a while, not a range per call: most calls evict nothing)
            key, _ = self.evictable.popitem(last=False)
            del self.refs[key]
            self.evicted_blocks += 1
            short -= 1
        self.free -= n

    def give(self, n: int) -> None:
        self.free += n

    def cached_prefix(self, keys: Sequence[int]) -> int:
        """How many of `keys`, from the first, are cached (held or evictable)."""
        n = 0
        for key in keys:
            if key not in self.refs:
                break
            n += 1
        return n

    def acquire(self, keys: Sequence[int]) -> None:
        """Reference cached blocks (a cache hit): an evictable one leaves the free pool."""
        for key in keys:
            if self.refs[key] == 0:
                del self.evictable[key]
                self.free -= 1
            self.refs[key] += 1
        self.hit_blocks += len(keys)

    def register(self, keys: Sequence[int]) -> list[int]:
        """Blocks a request computed (already allocated to it) enter the cache; returns the keys it
        now holds through the cache (a key already cached by another request is left out)."""
        added = [key for key in keys if key not in self.refs]
        for key in added:
            self.refs[key] = 1
        return added

    def release(self, keys: Sequence[int]) -> None:
        """Drop references; the last block of a prefix is queued for eviction first, as in vLLM."""
        for key in reversed(keys):
            self.refs[key] -= 1
            if self.refs[key] == 0:
                self.evictable[key] = None
                self.free += 1
