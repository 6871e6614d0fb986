"""Per-client FIFO queues and a lazy min-heap of backlogged clients keyed by a counter.

The heap never scans clients: each entry is (key, version, client). A counter that only grew since
its entry was pushed is fixed when the entry reaches the top (the old key is a lower bound); a
counter that shrank bumps the client's version and pushes a fresh entry, making the old one stale.
"""

from __future__ import annotations

import heapq
from collections import deque

from equinox_cli.core.types import Request


class ClientQueues:
    """FIFO per client; requeued requests go back to the front of their client's queue."""

    def __init__(self) -> None:
        self._queues: dict[str, deque[Request]] = {}
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def backlogged(self, client: str) -> bool:
        return bool(self._queues.get(client))

    def push(self, request: Request, front: bool = False) -> None:
        queue = self._queues.setdefault(request.client_id, deque())
        if front:
            queue.appendleft(request)
        else:
            queue.append(request)
        self._size += 1

    def pop(self, client: str) -> Request:
        self._size -= 1
        return self._queues[client].popleft()

    def remove(self, request: Request) -> bool:
        """Drop a waiting request (O(client's depth): aborts are rare); False if it is not here."""
        queue = self._queues.get(request.client_id)
        if not queue or request not in queue:
            return False
        queue.remove(request)
        self._size -= 1
        return True

    def depth(self, client: str) -> int:
        return len(self._queues.get(client, ()))


class CounterHeap:
    """Min-heap over backlogged clients by a counter the owner keeps in `counters`."""

    def __init__(self, counters: dict[str, float]) -> None:
        self._counters = counters
        self._heap: list[tuple[float, int, str]] = []
        self._version: dict[str, int] = {}
        self._members: set[str] = set()

    def add(self, client: str) -> None:
        """(Re)insert a client with its current counter; any older entry becomes stale."""
        version = self._version.get(client, 0) + 1
        self._version[client] = version
        self._members.add(client)
        heapq.heappush(self._heap, (self._counters[client], version, client))

    def discard(self, client: str) -> None:
        self._members.discard(client)

    def peek(self) -> str | None:
        """The member with the smallest counter (ties: lowest version, then client id)."""
        heap = self._heap
        while heap:
            key, version, client = heap[0]
            if client not in self._members or version != self._version[client]:
                heapq.heappop(heap)
                continue
            current = self._counters[client]
            if key < current:
                heapq.heapreplace(heap, (current, version, client))
                continue
            return client
        return None

    def min_counter(self) -> float | None:
        client = self.peek()
        return None if client is None else self._counters[client]
