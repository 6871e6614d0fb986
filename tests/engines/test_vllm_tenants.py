"""The tenant middleware as plain ASGI (no vllm): key → tenant, 401s, `user` mapping, map-file errors."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from equinox_cli.core.errors import UserInputError
from equinox_cli.engines.vllm.tenants import Tenant, TenantMiddleware, load_tenant_map, rewrite_body


class Downstream:
    """Stands in for vLLM's app: records the body and headers it was given, answers 200."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.lengths: list[int] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        self.bodies.append(json.loads(body) if body else {})
        self.lengths += [int(v) for k, v in scope["headers"] if k == b"content-length"]
        assert self.lengths[-1] == len(body)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def call(app: Any, path: str, body: dict[str, Any] | None, key: str | None = None) -> int:
    """POST (or GET without a body) through the app; the response status."""
    raw = json.dumps(body).encode() if body is not None else b""
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    if key is not None:
        headers.append((b"authorization", f"Bearer {key}".encode()))
    scope = {
        "type": "http",
        "method": "POST" if body is not None else "GET",
        "path": path,
        "headers": headers,
    }
    parts = [raw[:5], raw[5:]]  # a body in two chunks, as a client may send it
    messages = [{"type": "http.request", "body": p, "more_body": i == 0} for i, p in enumerate(parts)]
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    asyncio.run(app({**scope}, receive, send))
    return statuses[0]


TENANTS = {"key-a": Tenant("alice", 2.0), "key-b": Tenant("bob")}


def test_a_known_key_sets_the_tenant_whatever_the_body_claims() -> None:
    down = Downstream()
    app = TenantMiddleware(down, TENANTS)
    claim = {"model": "m", "prompt": "hi", "vllm_xargs": {"equinox_client": "bob", "other": 1}}
    assert call(app, "/v1/completions", claim, key="key-a") == 200
    assert down.bodies[-1]["vllm_xargs"] == {"equinox_client": "alice", "equinox_weight": 2.0, "other": 1}
    assert call(app, "/v1/chat/completions", {"model": "m", "messages": []}, key="key-b") == 200
    assert down.bodies[-1]["vllm_xargs"]["equinox_client"] == "bob"


def test_unknown_or_missing_keys_get_401_and_never_reach_vllm() -> None:
    down = Downstream()
    app = TenantMiddleware(down, TENANTS)
    assert call(app, "/v1/completions", {"prompt": "x"}, key="stolen") == 401
    assert call(app, "/v1/completions", {"prompt": "x"}) == 401
    assert call(app, "/v1/models", None) == 401
    assert call(app, "/health", None) == 200  # outside /v1: health checks need no key
    assert len(down.bodies) == 1


def test_without_a_map_the_user_field_names_the_tenant() -> None:
    down = Downstream()
    app = TenantMiddleware(down, None)
    assert call(app, "/v1/completions", {"prompt": "x", "user": "carol"}) == 200
    assert down.bodies[-1]["vllm_xargs"] == {"equinox_client": "carol"}
    explicit = {"prompt": "x", "user": "carol", "vllm_xargs": {"equinox_client": "dave"}}
    assert call(app, "/v1/completions", explicit) == 200
    assert down.bodies[-1]["vllm_xargs"] == {"equinox_client": "dave"}  # an explicit id wins
    assert call(app, "/v1/completions", {"prompt": "x"}) == 200
    assert "vllm_xargs" not in down.bodies[-1]  # no tenant: the plug-in's default tenant


def test_a_body_that_is_not_a_json_object_passes_unchanged() -> None:
    assert rewrite_body(b"not json", Tenant("a")) == b"not json"
    assert rewrite_body(b"[1, 2]", Tenant("a")) == b"[1, 2]"


def test_the_map_file_is_read_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "tenants.json"
    path.write_text(json.dumps({"k1": "alice", "k2": {"tenant": "bob", "weight": 3}}))
    monkeypatch.setenv("EQUINOX_TENANT_MAP", str(path))
    app = TenantMiddleware(Downstream())
    assert app.tenants == {"k1": Tenant("alice"), "k2": Tenant("bob", 3.0)}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "cannot read the tenant map"),
        ("[]", "non-empty JSON object"),
        ('{"k": ""}', "key 'k': tenant must be a non-empty string"),
        ('{"k": {"tenant": "a", "weight": 0}}', "key 'k': weight must be a number > 0"),
        ('{"k": {"tenant": "a", "weight": "heavy"}}', "key 'k': weight must be a number > 0"),
    ],
)
def test_bad_map_files_get_one_line_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "tenants.json"
    path.write_text(content)
    with pytest.raises(UserInputError, match=message) as info:
        load_tenant_map(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
