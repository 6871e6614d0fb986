"""The tenant middleware as plain ASGI (no vllm): default-deny with a map, bodies stamped with the
key's tenant wherever scheduler arguments can hide, websockets, the open mode's weight bounds."""

from __future__ import annotations

import asyncio
import json
from typing import Any, ClassVar

import pytest

from equinox_cli.core.errors import UserInputError
from equinox_cli.engines.vllm.identity import Tenant, claimed_tenant, tag
from equinox_cli.engines.vllm.tenants import (
    MAX_BODY_BYTES,
    TenantMiddleware,
    describe_routes,
    enumerate_routes,
)

SECRET = b"test-secret"
TENANTS = {"key-a": Tenant("alice", 2.0), "key-b": Tenant("bob")}
ALICE = {"equinox_client": "alice", "equinox_weight": 2.0, "equinox_tag": tag(SECRET, Tenant("alice", 2.0))}


class Downstream:
    """Stands in for vLLM's app: records the bodies and frames it was given, answers 200."""

    def __init__(self) -> None:
        self.bodies: list[Any] = []
        self.frames: list[Any] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            while (message := await receive())["type"] != "websocket.disconnect":
                if message["type"] == "websocket.receive":
                    self.frames.append(message.get("text") or message.get("bytes"))
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        try:
            self.bodies.append(json.loads(body) if body else None)
        except ValueError:
            self.bodies.append(body)
        lengths = [int(v) for k, v in scope["headers"] if k == b"content-length"]
        assert lengths == [len(body)]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def call(
    app: Any,
    path: str,
    body: Any = None,
    key: str | None = None,
    method: str | None = None,
    raw: bytes | None = None,
    extra_scope: dict[str, Any] | None = None,
) -> int:
    """One HTTP request through the app (body in two chunks, as a client may send it); its status."""
    raw = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    if key is not None:
        headers.append((b"authorization", f"Bearer {key}".encode()))
    scope = {
        "type": "http",
        "method": method or ("POST" if raw else "GET"),
        "path": path,
        "headers": headers,
        **(extra_scope or {}),
    }
    parts = [raw[:5], raw[5:]]
    messages = [{"type": "http.request", "body": p, "more_body": i == 0} for i, p in enumerate(parts)]
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    asyncio.run(app(scope, receive, send))
    return statuses[0]


def websocket(app: Any, path: str, frames: list[str], key: str | None = None) -> list[dict[str, Any]]:
    """A websocket session that sends `frames`; the messages the app sent back."""
    headers = [(b"authorization", f"Bearer {key}".encode())] if key else []
    incoming = [{"type": "websocket.connect"}] + [{"type": "websocket.receive", "text": f} for f in frames]
    incoming.append({"type": "websocket.disconnect", "code": 1000})
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def session() -> None:
        scope = {"type": "websocket", "path": path, "headers": headers}
        await app(scope, receive, send)

    asyncio.run(session())
    return sent


def mapped() -> tuple[TenantMiddleware, Downstream]:
    down = Downstream()
    return TenantMiddleware(down, TENANTS, SECRET), down


FORGED = {"equinox_client": "bob", "equinox_weight": 100, "equinox_tag": "0" * 64, "other": 1}


@pytest.mark.parametrize(
    "path",
    [
        "/v1/completions",
        "/v1/chat/completions",
        "/v1/responses",
        "/v1/messages",
        "/invocations",
        "/v1/chat/completions/batch",
        "/generative_scoring",
        "/some/route/of/a/future/vllm",
    ],
)
def test_a_known_key_stamps_its_tenant_on_every_route_whatever_the_body_claims(path: str) -> None:
    app, down = mapped()
    assert call(app, path, {"model": "m", "prompt": "hi", "vllm_xargs": FORGED}, key="key-a") == 200
    assert down.bodies[-1]["vllm_xargs"] == {**ALICE, "other": 1}
    assert call(app, path, {"model": "m", "messages": []}, key="key-a") == 200
    assert down.bodies[-1]["vllm_xargs"] == ALICE  # stamped even where the client sent none


def test_nested_and_tokens_in_arguments_are_stamped_too() -> None:
    app, down = mapped()
    body = {
        "sampling_params": {"max_tokens": 4, "extra_args": FORGED},  # /inference/v1/generate
        "requests": [{"vllm_xargs": FORGED}, {"sampling_params": {"max_tokens": 1}}],
        "extra_args": "a string, not an object",
    }
    assert call(app, "/inference/v1/generate", body, key="key-a") == 200
    got = down.bodies[-1]
    assert got["sampling_params"]["extra_args"] == {**ALICE, "other": 1}
    assert got["requests"][0]["vllm_xargs"] == {**ALICE, "other": 1}
    assert got["requests"][1]["sampling_params"]["extra_args"] == ALICE
    assert got["extra_args"] == ALICE and got["vllm_xargs"] == ALICE
    assert call(app, "/v1/completions", [{"vllm_xargs": FORGED}, {"prompt": "x"}], key="key-a") == 200
    assert all(item["vllm_xargs"]["equinox_client"] == "alice" for item in down.bodies[-1])


def test_duplicate_keys_cannot_smuggle_a_second_claim() -> None:
    app, down = mapped()
    raw = b'{"vllm_xargs": {"equinox_client": "bob"}, "vllm_xargs": {"equinox_client": "bob"}}'
    assert call(app, "/v1/completions", raw=raw, key="key-a") == 200
    assert down.bodies[-1]["vllm_xargs"]["equinox_client"] == "alice"


def test_what_the_middleware_stamps_is_what_the_plug_in_accepts() -> None:
    app, down = mapped()
    call(app, "/v1/completions", {"prompt": "x", "vllm_xargs": FORGED}, key="key-a")
    assert claimed_tenant(down.bodies[-1]["vllm_xargs"], SECRET) == Tenant("alice", 2.0)
    assert claimed_tenant(FORGED, SECRET).name == "unverified"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/invocations"),
        ("POST", "/v1/completions"),
        ("POST", "/v1/responses"),
        ("POST", "/generative_scoring"),
        ("POST", "/inference/v1/generate"),
        ("POST", "/tokenize"),
        ("GET", "/v1/responses/resp-1"),
        ("POST", "/health"),
        ("POST", "/ping"),
        ("GET", "/health/"),
        ("GET", "/metrics/x"),
        ("GET", "/load"),
        ("GET", "//health"),
        ("OPTIONS", "/v1/completions"),
    ],
)
def test_without_a_known_key_every_route_but_the_public_ones_is_refused(method: str, path: str) -> None:
    app, down = mapped()
    body = {"prompt": "x"} if method == "POST" else None
    assert call(app, path, body, method=method) == 401
    assert call(app, path, body, key="stolen", method=method) == 401
    assert down.bodies == []


def test_public_paths_and_cors_preflights_need_no_key() -> None:
    app, down = mapped()
    for path in ("/health", "/ping", "/version", "/v1/models", "/metrics"):
        assert call(app, path) == 200
    assert call(app, "/api/health", extra_scope={"root_path": "/api"}) == 200
    preflight = {"headers": [(b"access-control-request-method", b"POST"), (b"content-length", b"0")]}
    assert call(app, "/v1/completions", method="OPTIONS", extra_scope=preflight) == 200
    assert len(down.bodies) == 7


@pytest.mark.parametrize(
    ("raw", "status"),
    [(b"prompt=hi", 415), (b"[" * 100_000 + b"]" * 100_000, 415), (b"x" * (MAX_BODY_BYTES + 1), 413)],
)
def test_bodies_that_cannot_be_stamped_are_refused(raw: bytes, status: int) -> None:
    app, down = mapped()
    assert call(app, "/v1/completions", raw=raw, key="key-a") == status
    assert down.bodies == []


def test_websockets_need_a_key_and_their_json_frames_are_stamped() -> None:
    app, down = mapped()
    refused = websocket(app, "/v1/realtime", ['{"x": 1}'])
    assert refused == [{"type": "websocket.close", "code": 1008, "reason": "unknown or missing API key"}]
    assert down.frames == []
    websocket(app, "/v1/realtime", [json.dumps({"type": "x", "vllm_xargs": FORGED}), "not json"], key="key-b")
    first = json.loads(down.frames[0])
    assert first["vllm_xargs"]["equinox_client"] == "bob" and first["vllm_xargs"]["equinox_weight"] == 1.0
    assert down.frames[1] == "not json"


def test_a_map_without_the_shared_secret_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EQUINOX_TENANT_SECRET", raising=False)
    with pytest.raises(UserInputError, match="EQUINOX_TENANT_SECRET"):
        TenantMiddleware(Downstream(), TENANTS)


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
    assert call(app, "/v1/completions", raw=b"not json") == 200  # vLLM answers it


@pytest.mark.parametrize("weight", ["1e308", "Infinity", "NaN", "5e-324", "0", "-1", '"inf"', "true"])
def test_without_a_map_out_of_range_weights_are_refused(weight: str) -> None:
    down = Downstream()
    app = TenantMiddleware(down, None)
    raw = f'{{"prompt": "x", "vllm_xargs": {{"equinox_client": "c", "equinox_weight": {weight}}}}}'.encode()
    assert call(app, "/v1/completions", raw=raw) == 400
    nested = f'{{"sampling_params": {{"extra_args": {{"equinox_weight": {weight}}}}}}}'.encode()
    assert call(app, "/inference/v1/generate", raw=nested) == 400
    assert down.bodies == []
    assert call(app, "/v1/completions", {"vllm_xargs": {"equinox_client": "c", "equinox_weight": 4}}) == 200


def test_routes_are_enumerated_at_start_up(capsys: pytest.CaptureFixture[str]) -> None:
    class Route:
        def __init__(self, path: str, methods: set[str] | None) -> None:
            self.path, self.methods = path, methods

    class WebSocketRoute(Route):
        pass

    class App:
        routes: ClassVar[list[Route]] = [
            Route("/health", {"GET"}),
            Route("/v1/completions", {"POST"}),
            WebSocketRoute("/ws", None),
        ]

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            return None

    app = TenantMiddleware(App(), TENANTS, SECRET)

    async def nothing(*_: Any) -> Any:
        return None

    asyncio.run(app({"type": "lifespan", "app": App()}, nothing, nothing))
    assert app.routes == [
        ("/health", frozenset({"GET"})),
        ("/v1/completions", frozenset({"POST"})),
        ("/ws", frozenset({"WEBSOCKET"})),
    ]
    expected = "2 of 3 routes need a key (every route not listed here); public (GET/HEAD): /health"
    assert expected in capsys.readouterr().err
    assert describe_routes(app.routes, 2).endswith(expected)
    assert enumerate_routes(object()) == []


def test_the_server_says_which_policy_it_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """GET /equinox/policy is answered by the middleware from what `equinox serve` set, key or not;
    vLLM's app never sees it."""
    monkeypatch.setenv("EQUINOX_POLICY", "vtc")
    monkeypatch.setenv("EQUINOX_PARAMS", '{"w_q": "3"}')
    monkeypatch.setenv("EQUINOX_KV_GATE", "1")
    app, down = mapped()
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(
        app({"type": "http", "method": "GET", "path": "/equinox/policy", "headers": []}, receive, send)
    )
    assert sent[0]["status"] == 200 and down.bodies == []
    info = json.loads(sent[1]["body"])
    assert info == {"policy": "vtc", "params": {"w_q": "3"}, "predictor": "moving-average", "kv_gate": True}
