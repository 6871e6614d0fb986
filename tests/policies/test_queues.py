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


def test_unranked_queues_give_the_same_order_as_ranked_ones_with_every_rank_zero() -> None:
    def drain(ranked: bool) -> list[str]:
        queues = ClientQueues(ranked)
        for i in range(4):
            queues.push(make_request(f"r{i}", "a", float(i)))
        queues.push(make_request("q1", "a", 9.0), front=True)
        queues.push(make_request("q2", "a", 9.0), front=True)  # the latest requeue goes first
        assert queues.remove(make_request("r2", "a", 2.0)) and not queues.remove(make_request("x", "a"))
        assert len(queues) == 5 and queues.depth("a") == 5 and queues.backlogged("a")
        return [queues.pop("a").request_id for _ in range(5)]

    assert drain(False) == drain(True) == ["q2", "q1", "r0", "r1", "r3"]
