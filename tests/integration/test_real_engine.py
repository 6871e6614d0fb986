"""On the real engine (vLLM, CPU build, tiny random-weight model): a light tenant beside a flooding
one gets its share under VTC and Equinox, and does not under FCFS; and Equinox lowers its TTFT
against VTC, as the simulator forecasts (the scenario: light_bursts.py).

Runs where vllm is importable (the environment `.ci/vllm-venv` makes; CI runs it) or where
EQUINOX_VLLM_PYTHON names an interpreter that has it. `replay --engine vllm` starts one server per
policy (the policy lives in the engine process), so this is the user's own path, end to end.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from equinox_cli import api
from equinox_cli.engines.vllm.managed import read_rows
from equinox_cli.engines.vllm.recorder import REQUESTS_FILE, STEPS_FILE
from equinox_cli.workload.build import WorkloadSpec
from tests.integration import light_bursts

VLLM_PYTHON = os.environ.get("EQUINOX_VLLM_PYTHON") or (
    sys.executable if importlib.util.find_spec("vllm") else None
)
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not VLLM_PYTHON, reason="no vllm: make the env with .ci/vllm-venv"),
]
# The engine's batch is capped at light_bursts.MAX_SEQS so that its capacity does not follow the
# machine or the client's CPU use (with a lighter client the uncapped engine reached 13,600 tok/s
# here and 120 req/s no longer overloaded it): heavy asks ~7,700 output tok/s. A 32-sequence batch
# gave ~5,700 (2026-12-02), too close: on 2026-12-03 one CI run's FCFS left the light tenant only
# 0.82 s TTFT (no real backlog) and the 0.6x margin failed. 16 sequences overload it clearly, so a
# backlog of several seconds builds up within the run, which FCFS makes the light tenant share.


@pytest.fixture(scope="module")
def overload_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return light_bursts.write_trace(tmp_path_factory.mktemp("trace") / "overload.jsonl")


@pytest.fixture(scope="module")
def replayed(overload_trace: Path, tmp_path_factory: pytest.TempPathFactory) -> api.ReplayOutcome:
    out = tmp_path_factory.mktemp("report") / "overload"
    return api.replay(
        api.ReplayConfig(
            workload=WorkloadSpec(source=str(overload_trace)),
            engine="vllm",
            policy="equinox",
            baselines=("vtc", "fcfs"),
            vllm=api.VllmOptions(
                python=str(VLLM_PYTHON),
                server_args=(
                    "--enforce-eager",
                    f"--max-model-len={light_bursts.MAX_MODEL_LEN}",
                    f"--max-num-seqs={light_bursts.MAX_SEQS}",
                    f"--max-num-batched-tokens={light_bursts.MAX_BATCHED}",
                ),
            ),
            out=out,
        )
    )


# Requests the client may lose to the connection itself per run (of ~1,900), recorded with their
# reason, without failing the policy checks: once in CI (2026-12-05) the server reset one pooled
# connection before answering ("connection: ClientOSError: [Errno 104]"); its prompt never reached
# the engine. A policy or engine fault shows as another status or reason and still fails.
CONNECTION_FAULTS_ALLOWED = 1


def _reached(requests: pd.DataFrame) -> pd.DataFrame:
    """The requests that reached the engine: all but the connection faults allowed above."""
    lost = (requests["status"] == "error") & requests["reason"].fillna("").str.startswith("connection:")
    assert lost.sum() <= CONNECTION_FAULTS_ALLOWED, requests["reason"].value_counts()
    if lost.any():
        print({"connection_faults": requests.loc[lost, "reason"].tolist()})
    return requests[~lost]


def _clients(outcome: api.ReplayOutcome, policy: str) -> pd.DataFrame:
    run = outcome.runs[policy]
    reached = _reached(run.requests)
    assert (reached["status"] == "finished").all(), run.requests["reason"].value_counts()
    assert reached["length_ok"].all()
    return run.clients.set_index("client_id")


def test_light_tenant_is_protected_by_vtc_and_equinox_not_fcfs(replayed: api.ReplayOutcome) -> None:
    clients = {p: _clients(replayed, p) for p in ("fcfs", "vtc", "equinox")}
    ttft = {p: float(c.loc["light", "ttft_mean_s"]) for p, c in clients.items()}
    share = {p: float(c.loc["light", "service"] / c.loc["light", "demand"]) for p, c in clients.items()}
    print({"light_ttft_mean_s": ttft, "light_service_over_demand": share})
    assert ttft["vtc"] < 0.6 * ttft["fcfs"] and ttft["equinox"] < 0.6 * ttft["fcfs"]
    assert share["fcfs"] < min(share["vtc"], share["equinox"])
    # a whole burst: FCFS 7,013 engine steps on average vs VTC's 131 and Equinox's 99 (2026-12-04)
    span = {p: _burst_span_steps(replayed, p) for p in clients}
    print({"light_burst_span_steps": span})
    assert span["fcfs"] > 5 * max(span["vtc"], span["equinox"])


def test_the_engine_log_fills_steps_and_engine_side_request_columns(replayed: api.ReplayOutcome) -> None:
    for policy, run in replayed.runs.items():
        steps, requests = run.steps, run.requests
        assert len(steps) > 100, policy
        reached = _reached(requests)
        # every prompt token that reached the engine was prefilled (more only if preemption recomputed some)
        assert steps["prefill_tokens"].sum() >= reached["prompt_tokens"].sum()
        assert reached["running_at_admit"].notna().all() and reached["preemptions"].notna().all()
    meta = json.loads((replayed.out_dir / "run.json").read_text())
    every_request = all((run.requests["status"] == "finished").all() for run in replayed.runs.values())
    assert meta["complete"] is every_request and set(meta["runs"]) == {"equinox", "vtc", "fcfs"}


def test_equinox_lowers_the_light_tenants_ttft_and_serves_its_questions_first_as_forecast(
    replayed: api.ReplayOutcome,
) -> None:
    """Issue 9 item 7: in the real engine Equinox serves the light tenant's short
    questions before its documents (light_bursts.py) where VTC serves them in arrival order, and so
    lowers its TTFT, as the simulator calibrated on a recorded run of this engine forecasts.

    The TTFT compared is the engine's own, in engine steps (`engine_ttft_steps`): from the request's
    arrival at the engine to its first token. The client's `ttft_s` is printed, not asserted: on two
    cores the server starves the client, which in CI sent whole bursts up to 1.1 s late, in whichever
    server's run it happened (that lag, not the policy, made Equinox/VTC range 0.25x to 2.7x over six
    runs). Seconds are printed too: each policy has its own server, and one run's identical heavy
    load waited 11.2 s in one server and 4.5 s in the other (the machine's speed changed)."""
    clients = {p: _clients(replayed, p) for p in ("vtc", "equinox")}
    light = {p: _light(replayed.runs[p].requests) for p in clients}
    steps = {p: float(r["engine_ttft_steps"].mean()) for p, r in light.items()}
    share = {p: float(c.loc["light", "service"] / c.loc["light", "demand"]) for p, c in clients.items()}
    span = {p: _burst_span_steps(replayed, p) for p in clients}
    order = {p: _questions_minus_documents_s(r) for p, r in light.items()}
    forecast = {p: light_bursts.simulated_light_ttft_s(p) for p in ("vtc", "equinox")}
    span_forecast = {p: light_bursts.simulated_light_burst_span_s(p) for p in ("vtc", "equinox")}
    print(
        {
            "light_engine_ttft_steps": steps,
            "light_engine_ttft_s": {p: float(r["engine_ttft_s"].mean()) for p, r in light.items()},
            "light_client_ttft_s": {p: float(r["ttft_s"].mean()) for p, r in light.items()},
            "light_send_lag_max_s": {p: float(r["send_lag_s"].max()) for p, r in light.items()},
            "questions_minus_documents_s": order,
            "sim": forecast,
            "light_burst_span_steps": span,
            "sim_burst_span_s": span_forecast,
            "share": share,
        }
    )
    assert forecast["equinox"] < 0.8 * forecast["vtc"]  # 0.42x (0.334 vs 0.792 s), 2026-12-04
    # 0.59x (36.5 vs 61.8 steps; per burst 24-64 vs 55-70) with 11 bursts; 0.62-0.78x in four runs
    # with 6 bursts (2026-12-03); 0.63x (44.4 vs 70.8) on 2026-12-04
    assert steps["equinox"] < steps["vtc"]
    assert order["equinox"] < 0 < order["vtc"]
    # The light tenant keeps its share: Equinox serves each whole burst at least about as fast as
    # VTC (light_bursts.burst_spans; the questions-first order does not slow the burst's documents
    # beyond that). Simulator 0.74x (0.324 vs 0.436 s); real engine 0.76x (99.4 vs 131.4 steps per
    # burst; 77-129 vs 109-159), 2026-12-04. The snapshot share printed above (service / demand at
    # the last arrival) is not asserted: it counts the last burst's demand but little of its
    # service, and measured 0.64 (Equinox) vs 0.80 (VTC) in one slow CI run, 0.91 both otherwise.
    assert span_forecast["equinox"] < span_forecast["vtc"]
    assert span["equinox"] < 1.1 * span["vtc"]


def _burst_span_steps(outcome: api.ReplayOutcome, policy: str) -> float:
    """The light tenant's mean burst span (light_bursts.burst_spans) in engine steps: the steps that
    began between a burst's first arrival at the engine and its last finish, from the server's log
    (its own clock; steps factor out how fast the machine ran, as engine_ttft_steps does)."""
    logs = outcome.out_dir.with_name(outcome.out_dir.name + ".server-logs") / policy
    starts = np.sort([float(row["start_s"]) for row in read_rows(logs / STEPS_FILE)])
    light = pd.DataFrame(read_rows(logs / REQUESTS_FILE))
    light = light[light["client_id"] == "light"].assign(
        arrival_step=lambda d: np.searchsorted(starts, d["arrival_s"], side="left"),
        finish_step=lambda d: np.searchsorted(starts, d["finish_s"], side="right"),
    )
    return float(light_bursts.burst_spans(light, "arrival_step", "finish_step").mean())


def _light(requests: pd.DataFrame) -> pd.DataFrame:
    reached = _reached(requests)
    light = reached[reached["client_id"] == "light"]
    assert light["engine_ttft_steps"].notna().all()  # every request is in the engine's log
    return light


def _questions_minus_documents_s(light: pd.DataFrame) -> float:
    """Mean engine TTFT of the light tenant's questions minus its documents' (< 0: questions first)."""
    position = light["request_id"].str.split("-").str[1].astype(int) % len(light_bursts.BURST_PROMPTS)
    is_question = position.map(lambda k: light_bursts.BURST_PROMPTS[k] < 100)
    ttft = light["engine_ttft_s"]
    return float(ttft[is_question].mean() - ttft[~is_question].mean())
