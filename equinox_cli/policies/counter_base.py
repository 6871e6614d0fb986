"""Shared machinery of counter-ordered fair policies (VTC, LCF, Equinox).

Admit from the backlogged client with the smallest counter. When a client's queue goes from empty
to non-empty its counter is lifted to max(own, min counter of the other backlogged clients), or to
the counter of the client served last when no other client is backlogged (VTC's counter lift).
Subclasses say what is charged at admission, per step and at finish.
"""

from __future__ import annotations

from collections.abc import Mapping

from equinox_cli.core.types import Completion, Progress, Request
from equinox_cli.policies.queues import ClientQueues, CounterHeap


class CounterPolicy:
    name = "counter"
    lift = True

    def __init__(self, ranked: bool = False) -> None:
        """`ranked`: `_rank` orders requests within a client (False: FIFO, every rank 0)."""
        self._queues = ClientQueues(ranked)
        self._counter: dict[str, float] = {}
        self._weight: dict[str, float] = {}
        self._heap = CounterHeap(self._counter)
        self._last_served: str | None = None
        self._admission_charge: dict[str, float] = {}

    # --- hooks for subclasses -------------------------------------------------------------
    def _admission_cost(self, request: Request, now_s: float) -> float:
        raise NotImplementedError

    def _rank(self, request: Request, now_s: float) -> float:
        """Order within the client's queue (lower first; equal ranks are FIFO)."""
        return 0.0

    def _raise_counter(self, client: str, reference: str) -> None:
        """Lift: bring the client's counter up to the reference client's (never down)."""
        self._counter[client] = max(self._counter[client], self._counter[reference])

    def _add(self, client: str, amount: float) -> None:
        """Change a counter; a decrease re-keys the client's heap entry."""
        self._counter[client] += amount
        if amount < 0 and self._queues.backlogged(client):
            self._heap.add(client)

    # --- Policy protocol ------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._queues)

    def is_backlogged(self, client_id: str) -> bool:
        return self._queues.backlogged(client_id)

    def counters(self) -> Mapping[str, float]:
        return self._counter

    def on_arrival(self, request: Request, now_s: float) -> bool:
        client = request.client_id
        self._weight[client] = request.weight
        if client not in self._counter:
            self._counter[client] = 0.0
        rank = self._rank(request, now_s)
        if not self._queues.backlogged(client):
            if self.lift:
                self._lift(client)
            self._queues.push(request, rank)
            self._heap.add(client)
        else:
            self._queues.push(request, rank)
        return True

    def _lift(self, client: str) -> None:
        reference = self._heap.peek()  # the backlogged client with the smallest counter
        if reference is None and self._last_served is not None and self._last_served != client:
            reference = self._last_served
        if reference is not None:
            self._raise_counter(client, reference)

    def _choose_client(self, now_s: float) -> str | None:
        """The backlogged client to serve next: the smallest counter (Equinox may look wider)."""
        return self._heap.peek()

    def pick_next(self, now_s: float) -> Request | None:
        client = self._choose_client(now_s)
        if client is None:
            return None
        request = self._queues.pop(client)
        cost = self._admission_cost(request, now_s)
        self._admission_charge[request.request_id] = cost
        self._counter[client] += cost
        if self._queues.backlogged(client):
            self._heap.add(client)
        else:
            self._heap.discard(client)
        self._last_served = client
        return request

    def remove(self, request: Request) -> bool:
        """A waiting request left without being admitted (a client abort): nothing is charged."""
        if not self._queues.remove(request):
            return False
        if not self._queues.backlogged(request.client_id):
            self._heap.discard(request.client_id)
        return True

    def requeue(self, request: Request, now_s: float) -> None:
        """Back to the front of its queue, admission charge refunded; no lift (not an arrival)."""
        client = request.client_id
        refund = self._admission_charge.pop(request.request_id, 0.0)
        self._counter[client] -= refund
        self._queues.push(request, front=True)
        self._heap.add(client)

    def on_progress(self, progress: Progress) -> None:
        return None

    def on_finish(self, completion: Completion) -> None:
        self._admission_charge.pop(completion.request.request_id, None)
