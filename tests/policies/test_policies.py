"""Policy behaviour at the seam, without an engine: ordering, lift, charges, corrections."""

from __future__ import annotations

import pytest

from equinox_cli.core.errors import UserInputError
from equinox_cli.core.types import ClientStepService, Completion, Progress
from equinox_cli.policies import make_policy
from equinox_cli.predict.baselines import MovingAveragePredictor
from tests.conftest import make_request


def _decode(policy, now: float, tokens: dict[str, int]) -> None:
    by = {c: ClientStepService(0, n, 0) for c, n in tokens.items()}
    policy.on_progress(Progress(now, 0.01, 0.5, by))


def test_fcfs_is_global_arrival_order_and_requeue_keeps_place() -> None:
    policy = make_policy("fcfs", {})
    for i, (client, t) in enumerate([("b", 1.0), ("a", 0.5), ("a", 2.0)]):
        policy.on_arrival(make_request(f"r{i}", client, t), t)
    first = policy.pick_next(3.0)
    assert first is not None and first.request_id == "r1"
    policy.requeue(first, 3.0)
    assert [policy.pick_next(3.0).request_id for _ in range(3)] == ["r1", "r0", "r2"]  # type: ignore[union-attr]


def test_rpm_rejects_over_limit_within_window() -> None:
    policy = make_policy("rpm", {"limit": "2", "window_s": "60"})
    verdicts = [policy.on_arrival(make_request(f"r{i}", "a", t), t) for i, t in enumerate([0, 1, 2, 61])]
    assert verdicts == [True, True, False, True]
    assert policy.on_arrival(make_request("x", "b", 2.0), 2.0)  # per client


def test_vtc_picks_smallest_counter_and_charges_weighted() -> None:
    policy = make_policy("vtc", {})
    policy.on_arrival(make_request("a1", "a", 0, prompt=100, weight=2.0), 0)
    policy.on_arrival(make_request("b1", "b", 0, prompt=100), 0)
    policy.on_arrival(make_request("a2", "a", 0, prompt=100, weight=2.0), 0)
    assert policy.pick_next(0).client_id == "a"  # tie at 0: first inserted  # type: ignore[union-attr]
    assert policy.counters()["a"] == pytest.approx(50.0)  # w_p * 100 / weight 2
    assert policy.pick_next(0).client_id == "b"  # type: ignore[union-attr]
    _decode(policy, 1.0, {"b": 10})
    assert policy.counters()["b"] == pytest.approx(100 + 2 * 10)
    assert policy.pick_next(1.0).client_id == "a"  # type: ignore[union-attr]


def test_vtc_counter_lift_and_lcf_without_it() -> None:
    for name, expected in (("vtc", 500.0), ("lcf", 0.0)):
        policy = make_policy(name, {})
        policy.on_arrival(make_request("a1", "a", 0, prompt=500), 0)
        policy.on_arrival(make_request("a2", "a", 0, prompt=500), 0)
        policy.pick_next(0)  # a's counter 500, a still backlogged
        policy.on_arrival(make_request("b1", "b", 1, prompt=10), 1)  # b becomes backlogged
        assert policy.counters()["b"] == pytest.approx(expected), name


def test_lift_to_last_served_when_nobody_else_waits() -> None:
    policy = make_policy("vtc", {})
    policy.on_arrival(make_request("a1", "a", 0, prompt=300), 0)
    policy.pick_next(0)
    policy.on_arrival(make_request("b1", "b", 1, prompt=10), 1)
    assert policy.counters()["b"] == pytest.approx(300.0)


def test_requeue_refunds_admission_charge() -> None:
    policy = make_policy("vtc", {})
    policy.on_arrival(make_request("a1", "a", 0, prompt=300), 0)
    request = policy.pick_next(0)
    policy.requeue(request, 0)  # type: ignore[arg-type]
    assert policy.counters()["a"] == 0.0 and len(policy) == 1


def test_vtc_pred_prediction_is_corrected_at_finish_without_drift() -> None:
    """Total charged = what VTC would charge for the true outputs, whatever was predicted
    (Equinox's counterpart is in test_equinox.py)."""
    policy = make_policy("vtc-pred", {}, MovingAveragePredictor(prior_tokens=50))
    outputs = [10, 300, 7, 120]
    for i in range(len(outputs)):
        policy.on_arrival(make_request(f"r{i}", "a", 0, prompt=20, max_tokens=400), 0)
    for out in outputs:
        request = policy.pick_next(0)
        policy.on_finish(Completion(request, "finished", out, 1.0, 0.5, 0.0))  # type: ignore[arg-type]
    assert policy.counters()["a"] == pytest.approx(sum(20 + 2 * o for o in outputs))


@pytest.mark.parametrize(
    ("name", "params", "fragment"),
    [
        ("vtc", {"w_x": "1"}, "valid: w_p, w_q"),
        ("vtc", {"w_q": "abc"}, "expected float"),
        ("equinox", {"alpha": "2"}, "alpha must be in [0, 1]"),
        ("fcfs", {"x": "1"}, "takes no -P keys"),
        ("nope", {}, "valid: equinox, fcfs, lcf, rpm, vtc, vtc-pred"),
    ],
)
def test_bad_policy_parameters(name: str, params: dict[str, str], fragment: str) -> None:
    with pytest.raises(UserInputError) as info:
        make_policy(name, params, MovingAveragePredictor())
    assert fragment in str(info.value)


@pytest.mark.parametrize("name", ["fcfs", "vtc", "equinox"])
def test_remove_drops_a_waiting_request_without_charge(name: str) -> None:
    policy = make_policy(name, {}, MovingAveragePredictor())
    a, b = make_request("a", "c1", 0, prompt=10), make_request("b", "c1", 1, prompt=10)
    policy.on_arrival(a, 0)
    policy.on_arrival(b, 1)
    assert policy.remove(a) and not policy.remove(a)
    assert len(policy) == 1 and all(v == 0 for v in policy.counters().values())
    assert policy.pick_next(2) == b and policy.pick_next(2) is None
    assert not policy.is_backlogged("c1")
