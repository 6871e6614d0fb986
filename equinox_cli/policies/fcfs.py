"""FCFS: global arrival order; RPM: per-client requests-per-minute admission control + FCFS."""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from equinox_cli.core.types import Completion, Progress, Request


class FCFSPolicy:
    """Serve in (arrival_s, request_id) order; a requeued request keeps its place."""

    name = "fcfs"

    def __init__(self) -> None:
        self._heap: list[tuple[float, str, Request]] = []
        self._depth: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._heap)

    def is_backlogged(self, client_id: str) -> bool:
        return self._depth.get(client_id, 0) > 0

    def counters(self) -> Mapping[str, float]:
        return {}

    def on_arrival(self, request: Request, now_s: float) -> bool:
        self._push(request)
        return True

    def _push(self, request: Request) -> None:
        heapq.heappush(self._heap, (request.arrival_s, request.request_id, request))
        self._depth[request.client_id] = self._depth.get(request.client_id, 0) + 1

    def pick_next(self, now_s: float) -> Request | None:
        if not self._heap:
            return None
        request = heapq.heappop(self._heap)[2]
        self._depth[request.client_id] -= 1
        return request

    def requeue(self, request: Request, now_s: float) -> None:
        self._push(request)

    def remove(self, request: Request) -> bool:
        """A waiting request left without being admitted (O(n) rebuild: aborts are rare)."""
        kept = [entry for entry in self._heap if entry[2].request_id != request.request_id]
        if len(kept) == len(self._heap):
            return False
        self._heap = kept
        heapq.heapify(self._heap)
        self._depth[request.client_id] -= 1
        return True

    def on_progress(self, progress: Progress) -> None:
        return None

    def on_finish(self, completion: Completion) -> None:
        return None


@dataclass(frozen=True, slots=True)
class RPMParams:
    limit: int = 30  # accepted requests per client per window
    window_s: float = 60.0

    def validate(self) -> str | None:
        if self.limit < 1 or self.window_s <= 0:
            return "limit must be >= 1 and window_s > 0"
        return None


class RPMPolicy(FCFSPolicy):
    """Reject a request when its client already had `limit` accepted requests in the last window."""

    name = "rpm"

    def __init__(self, params: RPMParams | None = None) -> None:
        super().__init__()
        self.params = params or RPMParams()
        self._accepted: dict[str, deque[float]] = {}

    def on_arrival(self, request: Request, now_s: float) -> bool:
        recent = self._accepted.setdefault(request.client_id, deque())
        while recent and recent[0] <= now_s - self.params.window_s:
            recent.popleft()
        if len(recent) >= self.params.limit:
            return False
        recent.append(now_s)
        self._push(request)
        return True
