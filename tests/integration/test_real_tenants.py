"""On a real vLLM server (CPU build, tiny model) started as `equinox serve --tenant-map` starts it: the
routes that let a client take another tenant's share are closed, and the scheduler sees the key's
tenant whichever route the request took and whatever tenant its body claimed."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from equinox_cli.engines.vllm.launcher import ServeConfig, Server, free_port, start_server, tiny_model_path
from tests.integration.test_real_engine import VLLM_PYTHON

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not VLLM_PYTHON, reason="no vllm: make the env with .ci/vllm-venv"),
]
CLAIM = {"equinox_client": "bob", "equinox_weight": 100}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    folder = tmp_path_factory.mktemp("tenants")
    tenant_map = folder / "tenants.json"
    tenant_map.write_text(json.dumps({"key-a": {"tenant": "alice", "weight": 2}, "key-b": "bob"}))
    config = ServeConfig(
        model=tiny_model_path(str(VLLM_PYTHON)),
        python=str(VLLM_PYTHON),
        port=free_port(),
        tenant_map=tenant_map,
        engine_log_dir=folder / "log",
        log_path=folder / "server.log",
        extra_args=("--enforce-eager", "--max-model-len", "512"),
    )
    running = start_server(config)
    try:
        yield running, folder
    finally:
        running.stop()


def post(server: Server, path: str, body: dict[str, object], key: str | None = None) -> int:
    headers = {"content-type": "application/json"}
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    request = urllib.request.Request(f"{server.base_url}{path}", json.dumps(body).encode(), headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_forged_tenants_never_reach_the_scheduler(server: tuple[Server, Path]) -> None:
    running, folder = server
    completion = {"model": "equinox", "prompt": "hi", "max_tokens": 4}
    assert post(running, "/invocations", {**completion, "vllm_xargs": CLAIM}) == 401  # no key
    assert post(running, "/generative_scoring", {"model": "equinox"}) == 401
    assert post(running, "/v1/completions", completion, key="stolen") == 401
    sent = {
        "q-completions": ("/v1/completions", completion),
        "q-invocations": ("/invocations", completion),
        "q-responses": ("/v1/responses", {"model": "equinox", "input": "hi", "max_output_tokens": 4}),
        "q-messages": (
            "/v1/messages",
            {"model": "equinox", "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]},
        ),
    }
    for rid, (path, body) in sent.items():
        forged = {**body, "vllm_xargs": {**CLAIM, "equinox_request": rid}}
        assert post(running, path, forged, key="key-a") == 200, path
    rows = [json.loads(line) for line in (folder / "log" / "engine_requests.jsonl").read_text().splitlines()]
    tenants = {row["request_id"]: row["client_id"] for row in rows}
    assert {rid: tenants.get(rid) for rid in sent} == dict.fromkeys(sent, "alice")
    log = (folder / "server.log").read_text()
    assert "equinox tenant map: 2 API keys;" in log and "public (GET/HEAD): /health" in log
