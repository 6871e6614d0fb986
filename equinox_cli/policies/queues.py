"""Per-client waiting queues and a lazy min-heap of backlogged clients keyed by a counter.

Each client's queue is a min-heap on (rank, arrival sequence): a rank of 0 for every request is
FIFO; a policy that orders within a client (Equinox's shortest-predicted-first) passes a rank when
it pushes. A requeued (picked but not admitted, or preempted) request goes back to the very front.

The client heap never scans clients: each entry is (key, version, client). A counter that only grew
since its entry was pushed is fixed when the entry reaches the top (the old key is a lower bound); a
counter that shrank bumps the client's version and pushes a fresh entry, making the old one stale.
"""

from __future__ import annotations

import heapq
import math
from collections import deque

from equinox_cli.core.types import Request

FRONT = -math.inf  # the rank of a requeued request: ahead of everything its client has waiting


class ClientQueues:
    """One queue per client, ordered by (rank, push order). Unranked (every rank 0, VTC's case),
    each queue is a deque: the same order, without a heap's comparisons on deep backlogs."""

    def __init__(self, ranked: bool = True) -> None:
        self.ranked = ranked
        self._queues: dict[str, list[tuple[float, int, Request]]] = {}
        self._fifos: dict[str, deque[Request]] = {}
        self._size = 0
        self._pushes = 0
        self._front = 0  # requeues count down so that the latest requeue is first (LIFO, like deque)

    def __len__(self) -> int:
        return self._size

    def backlogged(self, client: str) -> bool:
        return bool(self._queues.get(client) if self.ranked else self._fifos.get(client))

    def push(self, request: Request, rank: float = 0.0, front: bool = False) -> None:
        self._size += 1
        if not self.ranked:
            fifo = self._fifos.get(request.client_id)
            if fifo is None:
                fifo = self._fifos[request.client_id] = deque()
            if front:
                fifo.appendleft(request)
            else:
                fifo.append(request)
            return
        queue = self._queues.setdefault(request.client_id, [])
        if front:
            self._front -= 1
            entry = (FRONT, self._front, request)
        else:
            self._pushes += 1
            entry = (rank, self._pushes, request)
        heapq.heappush(queue, entry)

    def pop(self, client: str) -> Request:
        self._size -= 1
        if not self.ranked:
            return self._fifos[client].popleft()
        return heapq.heappop(self._queues[client])[2]

    def remove(self, request: Request) -> bool:
        """Drop a waiting request (O(client's depth): aborts are rare); False if it is not here."""
        if not self.ranked:
            fifo = self._fifos.get(request.client_id)
            if not fifo or request not in fifo:
                return False
            fifo.remove(request)
            self._size -= 1
            return True
        queue = self._queues.get(request.client_id)
        if not queue:
            return False
        for i, entry in enumerate(queue):
            if entry[2] == request:
                queue[i] = queue[-1]
                queue.pop()
                heapq.heapify(queue)
                self._size -= 1
                return True
        return False

    def depth(self, client: str) -> int:
        return len(self._queues.get(client, ()) if self.ranked else self._fifos.get(client, ()))

    def head(self, client: str) -> tuple[float, Request]:
        """(rank, request) of the request the client would send next (its queue must not be
        empty); unranked, the rank is 0."""
        if not self.ranked:
            return 0.0, self._fifos[client][0]
        rank, _, request = self._queues[client][0]
        return rank, request


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

    def within(self, slack: float) -> list[str]:
        """The members whose counter is at most the smallest one + `slack`, smallest first."""
        first = self.peek()
        if first is None:
            return []
        limit = self._counters[first] + slack
        heap, taken = self._heap, []
        while heap:
            key, version, client = heap[0]
            if client not in self._members or version != self._version[client]:
                heapq.heappop(heap)
            elif key < self._counters[client]:
                heapq.heapreplace(heap, (self._counters[client], version, client))
            elif key > limit:
                break
            else:
                taken.append(heapq.heappop(heap))
        for entry in taken:
            heapq.heappush(heap, entry)
        return [client for _, _, client in taken]

    def min_counter(self) -> float | None:
        client = self.peek()
        return None if client is None else self._counters[client]
