"""The client queues and the lazy counter heap: ranks within a client, stale entries, the window."""

from __future__ import annotations

from equinox_cli.policies.queues import ClientQueues, CounterHeap
from tests.conftest import make_request


def test_within_returns_the_clients_inside_the_window_smallest_first_and_keeps_the_heap() -> None:
    counters = {"a": 10.0, "b": 40.0, "c": 15.0, "d": 11.0}
    heap = CounterHeap(counters)
    for client in counters:
        heap.add(client)
    counters["a"] = 30.0  # grew since pushed: its entry is a lower bound, fixed on the way
    heap.discard("d")  # left: its entry is stale
    assert heap.within(16.0) == ["c", "a"]  # 15 is the smallest; 15 + 16 = 31 keeps a, not b
    assert heap.within(0.0) == ["c"]
    assert heap.peek() == "c"  # nothing was lost from the heap
    counters["c"] = 50.0
    assert heap.within(10.0) == ["a", "b"]
    assert CounterHeap({}).within(5.0) == []


def test_head_is_the_next_request_of_a_client_with_its_rank() -> None:
    queues = ClientQueues()
    queues.push(make_request("late", "a", 1.0), rank=5.0)
    queues.push(make_request("early", "a", 0.0), rank=3.0)
    assert queues.head("a")[0] == 3.0 and queues.head("a")[1].request_id == "early"
    queues.push(make_request("back", "a", 2.0), front=True)  # a requeue goes before any rank
    assert queues.head("a")[1].request_id == "back"
