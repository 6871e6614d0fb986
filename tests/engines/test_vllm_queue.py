"""The policy-backed waiting queue and step charging of the vLLM plug-in, with fake vLLM requests."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from equinox_cli.engines.vllm.charging import request_service, step_progress
from equinox_cli.engines.vllm.identity import (
    DEFAULT_TENANT,
    UNVERIFIED_TENANT,
    WEIGHT_MAX,
    WEIGHT_MIN,
    Tenant,
    tag,
)
from equinox_cli.engines.vllm.queue import PolicyQueue, to_request
from equinox_cli.policies import make_policy


def vreq(rid: str, client: str | None, prompt: int = 10, max_tokens: int = 10, weight: object = None):  # type: ignore[no-untyped-def]
    extra = {} if client is None else {"equinox_client": client}
    if weight is not None:
        extra["equinox_weight"] = weight
    params = SimpleNamespace(extra_args=extra or None, max_tokens=max_tokens)
    return SimpleNamespace(request_id=rid, num_prompt_tokens=prompt, sampling_params=params, arrival_time=0.0)


def tenant_of(request: object, secret: bytes | None = None) -> tuple[str, float]:
    eq = to_request(request, 0.0, secret)
    return eq.client_id, eq.weight


@pytest.mark.parametrize(
    ("claim", "cap"),
    [
        (2048, 2048),  # a replay's declared cap: the forced max_tokens (the true output) is not used
        (5, 10),  # a smaller claim would flatter the sender: max_tokens stands
        (True, 10),
        ("4096", 10),
        (10**12, 10),
        (None, 10),
    ],
)
def test_the_policy_sees_the_declared_cap_never_a_forced_length(claim: object, cap: int) -> None:
    request = vreq("a", "acme", max_tokens=10)
    if claim is not None:
        request.sampling_params.extra_args["equinox_max_tokens"] = claim
    assert to_request(request, 0.0).max_tokens == cap


def test_tenant_comes_from_extra_args_with_a_default() -> None:
    assert tenant_of(vreq("a", "acme", weight="2")) == ("acme", 2.0)
    assert tenant_of(vreq("b", None)) == (DEFAULT_TENANT, 1.0)
    assert tenant_of(vreq("c", "x", weight="junk")) == ("x", 1.0)


@pytest.mark.parametrize(
    ("sent", "used"),
    [
        (1e308, WEIGHT_MAX),
        (float("inf"), WEIGHT_MAX),
        ("inf", WEIGHT_MAX),
        (5e-324, WEIGHT_MIN),
        (-3, WEIGHT_MIN),
        (float("nan"), 1.0),
        (10**400, WEIGHT_MAX),
        (True, 1.0),
        ([2], 1.0),
    ],
)
def test_without_a_map_client_weights_are_clamped_to_the_bounds(sent: object, used: float) -> None:
    assert tenant_of(vreq("a", "acme", weight=sent)) == ("acme", used)


def test_with_a_secret_only_a_tagged_claim_names_the_tenant() -> None:
    secret = b"s3cret"
    alice = Tenant("alice", 2.0)
    tagged = vreq("a", "alice", weight=2.0)
    tagged.sampling_params.extra_args["equinox_tag"] = tag(secret, alice)
    assert tenant_of(tagged, secret) == ("alice", 2.0)
    forged = vreq("b", "alice", weight=50.0)  # alice's tag, another weight
    forged.sampling_params.extra_args["equinox_tag"] = tag(secret, alice)
    assert tenant_of(forged, secret) == (UNVERIFIED_TENANT, WEIGHT_MIN)
    assert tenant_of(vreq("c", "alice", weight=2.0), secret) == (UNVERIFIED_TENANT, WEIGHT_MIN)
    assert tenant_of(vreq("d", None), secret) == (UNVERIFIED_TENANT, WEIGHT_MIN)
    other_server = vreq("e", "alice", weight=2.0)
    other_server.sampling_params.extra_args["equinox_tag"] = tag(b"another", alice)
    assert tenant_of(other_server, secret) == (UNVERIFIED_TENANT, WEIGHT_MIN)


def test_the_queue_reads_the_secret_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EQUINOX_TENANT_SECRET", "abc")
    queue = PolicyQueue(make_policy("fcfs", {}), clock=lambda: 0.0)
    queue.add_request(vreq("a", "alice"))
    assert queue.request_of("a").client_id == UNVERIFIED_TENANT  # type: ignore[union-attr]


def test_vtc_order_peek_is_stable_and_pop_hands_over_the_same_request() -> None:
    queue = PolicyQueue(make_policy("vtc", {}), clock=lambda: 0.0)
    for i in range(3):
        queue.add_request(vreq(f"h{i}", "heavy", prompt=100))
    queue.add_request(vreq("l0", "light", prompt=10))
    head = queue.peek_request()
    assert queue.peek_request() is head and len(queue) == 4
    assert queue.pop_request() is head and len(queue) == 3
    # after heavy's 100-token charge, light (counter lifted to 0, charged nothing yet) goes next
    order = [head.request_id] + [queue.pop_request().request_id for _ in range(3)]
    assert order[:2] in (["h0", "l0"], ["l0", "h0"]) and sorted(order) == ["h0", "h1", "h2", "l0"]
    with pytest.raises(IndexError):
        queue.peek_request()


def test_prepend_head_is_a_no_op_and_preemption_refunds() -> None:
    policy = make_policy("vtc", {})
    queue = PolicyQueue(policy, clock=lambda: 0.0)
    a = vreq("a", "c1", prompt=50)
    queue.add_request(a)
    head = queue.peek_request()
    charged = policy.counters()["c1"]
    assert charged == 50
    queue.prepend_request(head)  # skipped this step: stays first, still charged
    assert queue.peek_request() is head and policy.counters()["c1"] == 50
    running = queue.pop_request()
    queue.prepend_request(running)  # preempted: back to the policy, charge refunded
    assert policy.counters()["c1"] == 0 and len(queue) == 1
    assert queue.pop_request() is a


def test_removing_waiting_requests_and_the_head_charges_nothing() -> None:
    policy = make_policy("vtc", {})
    queue = PolicyQueue(policy, clock=lambda: 0.0)
    reqs = [vreq(f"r{i}", "c1", prompt=10) for i in range(3)]
    for r in reqs:
        queue.add_request(r)
    head = queue.peek_request()
    queue.remove_requests([head, reqs[2]])
    assert len(queue) == 1 and policy.counters()["c1"] == 0
    assert queue.pop_request() is reqs[1] and not queue
    assert list(queue) == []


def test_admission_control_rejections_are_handed_back() -> None:
    queue = PolicyQueue(make_policy("rpm", {"limit": "1", "window_s": "60"}), clock=lambda: 0.0)
    queue.add_request(vreq("a", "c1"))
    queue.add_request(vreq("b", "c1"))
    assert [r.request_id for r in queue.rejected] == ["b"] and len(queue) == 1


def test_step_charging_splits_prefill_decode_and_context() -> None:
    assert request_service(scheduled=8, computed_before=0, prompt_tokens=20) == (8, 0)
    assert request_service(scheduled=8, computed_before=16, prompt_tokens=20) == (4, 16)
    assert request_service(scheduled=1, computed_before=30, prompt_tokens=20) == (0, 30)
    progress = step_progress(
        scheduled={"a": 8, "b": 1, "c": 1, "ghost": 5},
        computed_before={"a": 0, "b": 30, "c": 10, "ghost": 0},
        generated={"a": 0, "b": 1, "c": 1, "ghost": 1},
        prompt_tokens={"a": 20, "b": 20, "c": 10, "ghost": 5},
        clients={"a": "x", "b": "x", "c": "y"},
        now_s=1.0,
        step_time_s=0.02,
        gpu_util=0.5,
    )
    assert progress.by_client["x"].prefill_tokens == 8 and progress.by_client["x"].decode_tokens == 1
    assert progress.by_client["x"].context_tokens == 30 and progress.by_client["y"].decode_tokens == 1
    assert progress.by_client["y"].prefill_tokens == 0
    assert set(progress.by_client) == {"x", "y"}


def test_arrival_is_on_the_queue_clock_not_vllms_wall_clock() -> None:
    """vLLM stamps arrival_time with time.time(); policies compare arrivals with the queue's
    monotonic now, so mixing them would make every queueing delay hugely negative."""
    now = [500.0]
    queue = PolicyQueue(make_policy("fcfs", {}), clock=lambda: now[0])
    request = vreq("a", "x")
    request.arrival_time = 1.8e9  # wall-clock seconds, as vLLM sets it
    queue.add_request(request)
    eq = queue.request_of("a")
    assert eq is not None and eq.arrival_s == 500.0


def test_a_closed_admission_gate_makes_the_queue_falsy_but_keeps_its_head() -> None:
    queue = PolicyQueue(make_policy("fcfs", {}), clock=lambda: 0.0)
    for rid in ("a", "b"):
        queue.add_request(vreq(rid, "x", prompt=10))
    popped: list[str] = []
    queue.admit_gate = lambda request: request.prompt_tokens < 5  # nothing fits
    queue.on_pop = lambda request: popped.append(request.request_id)
    assert not queue and len(queue) == 2  # vLLM's pass stops; its stats still see two waiting
    head = queue.peek_request()
    queue.admit_gate = lambda request: True
    assert queue and queue.pop_request() is head and popped == [head.request_id]
