"""No truth before finish: nothing a policy or predictor sees depends on a request's true output
length until that request ends. Two workloads that differ only in their true outputs must get the
same decisions up to the first finish, under every policy, admission rule and the KV gate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from equinox_cli.core.types import Completion, Request, Workload
from equinox_cli.engines.sim.engine import SimEngine, apply_engine_args
from equinox_cli.engines.sim.profiles import get_profile
from equinox_cli.policies import POLICY_NAMES, make_policy
from equinox_cli.predict.baselines import MovingAveragePredictor
from equinox_cli.workload.build import WorkloadSpec, build_workload
from equinox_cli.workload.limits import DEFAULT_MAX_TOKENS


class RecordingPredictor(MovingAveragePredictor):
    """The engine's KV-gate predictor, writing down every prediction it makes."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, float]] = []

    def predict_output_tokens(self, request: Request) -> float:
        guess = super().predict_output_tokens(request)
        self.calls.append((request.request_id, round(guess, 6)))
        return guess


class Recorder:
    """Delegates to a policy and writes down every decision with its time."""

    def __init__(self, policy: Any, gate: list[RecordingPredictor]) -> None:
        self._policy = policy
        self._gate = gate  # the engine's gate predictor, once the engine made it
        self.gate_calls_before_finish: list[tuple[str, float]] | None = None
        self.name = policy.name
        self.decisions: list[tuple[float, str, object]] = []
        self.first_finish_s = float("inf")

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._policy, attr)

    def __len__(self) -> int:
        return len(self._policy)

    def pick_next(self, now_s: float) -> Request | None:
        request = self._policy.pick_next(now_s)
        self.decisions.append((now_s, "pick", request.request_id if request else None))
        return request

    def on_finish(self, completion: Completion) -> None:
        if self.gate_calls_before_finish is None:
            self.gate_calls_before_finish = list(self._gate[0].calls) if self._gate else []
        self.first_finish_s = min(self.first_finish_s, completion.now_s)
        self._policy.on_finish(completion)


def _trace(tmp_path: Path, name: str, outputs: np.ndarray) -> Workload:
    rng = np.random.default_rng(0)
    n = len(outputs)
    frame = pd.DataFrame(
        {
            "request_id": [f"r{i}" for i in range(n)],
            "client_id": [f"c{i % 4}" for i in range(n)],
            "arrival_s": np.sort(rng.uniform(0, 4, n)),
            "prompt_tokens": rng.integers(100, 600, n),
            "output_tokens": outputs,
        }
    )  # no max_tokens column: the client's cap is the default
    path = tmp_path / f"{name}.csv"
    frame.to_csv(path, index=False)
    return build_workload(WorkloadSpec(source=str(path)))[0]


def test_a_trace_without_max_tokens_gets_the_clients_cap(tmp_path: Path) -> None:
    outputs = np.array([10, 300, DEFAULT_MAX_TOKENS + 500])
    frame = pd.DataFrame(
        {"client_id": "a", "arrival_s": [0.0, 1.0, 2.0], "prompt_tokens": 5, "output_tokens": outputs}
    )
    frame.to_csv(tmp_path / "t.csv", index=False)
    workload, warnings = build_workload(WorkloadSpec(source=str(tmp_path / "t.csv")))
    assert [it.request.max_tokens for it in workload.items] == [DEFAULT_MAX_TOKENS] * 3
    assert [it.output_tokens for it in workload.items] == [
        10,
        300,
        DEFAULT_MAX_TOKENS,
    ]  # cut, as a server would
    assert any("1 of 3 outputs longer than --max-tokens 2048" in w for w in warnings)
    capped, _ = build_workload(WorkloadSpec(source=str(tmp_path / "t.csv"), max_tokens=100))
    assert [it.output_tokens for it in capped.items] == [10, 100, 100]
    default, _ = build_workload(WorkloadSpec(source="default", duration_s=20))
    assert {it.request.max_tokens for it in default.items} == {DEFAULT_MAX_TOKENS}
    forced, _ = build_workload(WorkloadSpec(source="overload", duration_s=20))  # VTC's artifact
    assert all(it.request.max_tokens == it.output_tokens for it in forced.items)


@pytest.mark.parametrize(
    "engine",
    [
        {"admission": "vllm"},
        {"admission": "vllm", "kv_gate": "true", "kv_capacity_tokens": "40000"},  # the gate binds
        {"admission": "slora"},
        {"admission": "reserve-max"},
    ],
)
@pytest.mark.parametrize("policy", POLICY_NAMES)
def test_decisions_before_the_first_finish_ignore_true_lengths(
    tmp_path: Path, policy: str, engine: dict[str, str]
) -> None:
    rng = np.random.default_rng(1)
    short = rng.integers(30, 1200, 160)  # some below the predictor's prior: a cap at the truth would bind
    runs = []
    for name, outputs in (("a", short), ("b", short + 600)):
        workload = _trace(tmp_path, name, outputs)
        profile = apply_engine_args(get_profile("a10g-llama2-7b"), engine)
        gate: list[RecordingPredictor] = []
        recorder = Recorder(make_policy(policy, {}, MovingAveragePredictor()), gate)
        make_gate = lambda gate=gate: gate.append(RecordingPredictor()) or gate[-1]  # noqa: E731
        sim = SimEngine(profile, gate_predictor=make_gate)
        sim.run(workload, recorder)  # type: ignore[arg-type]
        runs.append(recorder)
    until = min(r.first_finish_s for r in runs)
    before = [[d for d in r.decisions if d[0] < until] for r in runs]
    assert len(before[0]) > 10  # many decisions happen before anything finishes
    assert before[0] == before[1]
    calls = [r.gate_calls_before_finish or [] for r in runs]
    shared = min(len(c) for c in calls)
    assert calls[0][:shared] == calls[1][:shared]
    if "kv_gate" in engine:
        assert shared > 10  # the gate predicted many requests before anything finished
