"""Tenant identity at the server's door: an ASGI middleware for vLLM's `--middleware` hook.

vLLM hands the scheduler only what reaches `SamplingParams.extra_args` (a request's `vllm_xargs`, or
`sampling_params.extra_args` on the tokens-in API), so this middleware rewrites request bodies
before vLLM parses them.

With a tenant map (EQUINOX_TENANT_MAP, see identity.py) it denies by default:
  * every HTTP request and websocket, on every route the app has now or a future vLLM adds, needs a
    known key (`Authorization: Bearer KEY`; else 401, or a refused handshake), except GET/HEAD on
    PUBLIC_PATHS and CORS preflights (answered by vLLM's CORS middleware, never by a route);
  * every body must be JSON (else 415), and every place in it that can carry scheduler arguments
    (the top-level `vllm_xargs`, each element's of a top-level array, any nested `vllm_xargs`,
    `extra_args` or `sampling_params.extra_args`) gets the key's tenant, weight and tag, whatever
    the client sent; websocket frames that are JSON get the same;
  * the routes are enumerated at start-up (lifespan) and the split printed to the server's log.
The tag (identity.py) makes the plug-in refuse claims that did not pass through here.

Without a map, nobody is authenticated (as vLLM without --api-key): a JSON body with no
`vllm_xargs.equinox_client` takes its tenant from the OpenAI `user` field, and a weight outside
[WEIGHT_MIN, WEIGHT_MAX] gets a 400. Never imports vllm.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from equinox_cli.core.errors import UserInputError
from equinox_cli.engines.vllm.identity import (
    CLIENT_KEY,
    SECRET_ENV,
    TAG_KEY,
    TENANT_MAP_ENV,
    WEIGHT_KEY,
    Tenant,
    load_tenant_map,
    tag,
    weight_problem,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PUBLIC_PATHS = frozenset({"/health", "/ping", "/version", "/v1/models", "/metrics"})  # GET/HEAD only
POLICY_PATH = "/equinox/policy"  # GET: the scheduler this server runs (answered here, public)
MAX_BODY_BYTES = 64 * 1024 * 1024
XARGS_KEYS = ("vllm_xargs", "extra_args")


class Refusal(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class TenantMiddleware:
    def __init__(
        self, app: ASGIApp, tenant_map: dict[str, Tenant] | None = None, secret: bytes | None = None
    ) -> None:
        self.app = app
        path = os.environ.get(TENANT_MAP_ENV)
        if tenant_map is None and path:
            tenant_map = load_tenant_map(Path(path))
        if tenant_map is not None and secret is None:
            if not os.environ.get(SECRET_ENV):
                raise UserInputError(f"{TENANT_MAP_ENV} needs {SECRET_ENV} (equinox serve sets both)")
            secret = os.environ[SECRET_ENV].encode()
        self.tenants = tenant_map
        # what each key writes into a body: tenant, weight and the tag the plug-in checks
        self.stamps = {
            key: {CLIENT_KEY: t.name, WEIGHT_KEY: t.weight, TAG_KEY: tag(secret, t)}
            for key, t in (tenant_map or {}).items()
            if secret is not None
        }
        self.routes: list[tuple[str, frozenset[str]]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind == "lifespan":
            self.routes = enumerate_routes(scope.get("app"))
            if self.tenants is not None:
                print(describe_routes(self.routes, len(self.tenants)), file=sys.stderr, flush=True)
            return await self.app(scope, receive, send)
        if kind not in ("http", "websocket"):
            raise RuntimeError(f"TenantMiddleware: unknown ASGI scope type {kind!r}")
        if kind == "http" and scope.get("method") == "GET" and _route_path(scope) == POLICY_PATH:
            return await _answer(send, 200, policy_info())
        if self.tenants is None:
            return await self._open(scope, receive, send)
        if _is_public(scope):
            return await self.app(scope, receive, send)
        stamp = self.stamps.get(_bearer(scope))
        if stamp is None:
            return await _refuse(scope, send, Refusal(401, "unknown or missing API key"))
        if kind == "websocket":
            return await self.app(scope, _stamped_frames(receive, stamp), send)
        try:
            body = await _read_body(receive)
            new_body = stamp_body(body, stamp) if body else body
        except Refusal as refusal:
            return await _refuse(scope, send, refusal)
        return await self.app(_with_length(scope, len(new_body)), _replay(new_body, receive), send)

    async def _open(self, scope: Scope, receive: Receive, send: Send) -> None:
        """No map: trust the body's tenant, map `user` to it, refuse out-of-range weights."""
        if scope["type"] != "http" or b"json" not in _header(scope, b"content-type").lower():
            return await self.app(scope, receive, send)
        try:
            body = await _read_body(receive)
            new_body = open_body(body)
        except Refusal as refusal:
            return await _refuse(scope, send, refusal)
        return await self.app(_with_length(scope, len(new_body)), _replay(new_body, receive), send)


def policy_info() -> dict[str, object]:
    """What `equinox serve` told this server to run (launcher.server_env), for clients to check."""
    try:
        params = json.loads(os.environ.get("EQUINOX_PARAMS", "{}"))
    except ValueError:
        params = {}
    return {
        "policy": os.environ.get("EQUINOX_POLICY", "equinox"),
        "params": params,
        "predictor": os.environ.get("EQUINOX_PREDICTOR", "moving-average"),
        "kv_gate": os.environ.get("EQUINOX_KV_GATE") == "1",
    }


async def _answer(send: Send, status: int, document: dict[str, object]) -> None:
    body = json.dumps(document).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def stamp_body(body: bytes | str, stamp: dict[str, Any], force_root: bool = True) -> bytes:
    """The body with `stamp` in every place that can carry scheduler arguments (map mode); with
    `force_root`, the top-level object (or each one of a top-level array) gets `vllm_xargs` too."""
    data = _parse(body, 415)
    roots = data if isinstance(data, list) else [data]
    for root in roots:
        if force_root and isinstance(root, dict):
            root.setdefault("vllm_xargs", None)  # stamped below with the nested ones
    for holder, key in _xargs_slots(data):
        old = holder.get(key)
        holder[key] = {**(old if isinstance(old, dict) else {}), **stamp}
    return json.dumps(data).encode()


def open_body(body: bytes) -> bytes:
    """No map: the `user` field names a tenant the body does not name; weights must be in range."""
    try:
        data = _parse(body, 400)
    except Refusal:
        return body  # not JSON: vLLM answers it as it would
    for holder, key in _xargs_slots(data):
        xargs = holder.get(key)
        problem = (
            weight_problem(xargs[WEIGHT_KEY]) if isinstance(xargs, dict) and WEIGHT_KEY in xargs else None
        )
        if problem is not None:
            raise Refusal(400, f"{key}.{WEIGHT_KEY}: {problem}")
    if not isinstance(data, dict) or not isinstance(data.get("user"), str) or not data["user"]:
        return body
    xargs = data.get("vllm_xargs")
    xargs = dict(xargs) if isinstance(xargs, dict) else {}
    if xargs.get(CLIENT_KEY):
        return body
    data["vllm_xargs"] = {**xargs, CLIENT_KEY: data["user"]}
    return json.dumps(data).encode()


def _parse(body: bytes | str, status: int) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise Refusal(status, "the request body must be JSON") from None


def _xargs_slots(data: Any) -> list[tuple[dict[str, Any], str]]:
    """(object, key) of every place that carries scheduler arguments, at any depth (no recursion)."""
    slots: list[tuple[dict[str, Any], str]] = []
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            slots += [(node, key) for key in XARGS_KEYS if key in node]
            params = node.get("sampling_params")
            if isinstance(params, dict) and "extra_args" not in params:
                params["extra_args"] = None  # the tokens-in API: its extra_args must be stamped too
            stack.extend(node.values())
    return slots


def enumerate_routes(app: Any) -> list[tuple[str, frozenset[str]]]:
    """(path, methods) of every route of a Starlette/FastAPI app; websockets as WEBSOCKET."""
    routes = []
    for route in getattr(app, "routes", None) or ():
        path = getattr(route, "path", None)
        if not isinstance(path, str):
            continue
        methods = getattr(route, "methods", None) or set()
        if "websocket" in type(route).__name__.lower():
            methods = {"WEBSOCKET"}
        routes.append((path, frozenset(methods)))
    return routes


def describe_routes(routes: list[tuple[str, frozenset[str]]], keys: int) -> str:
    public = sorted({p for p, m in routes if p in PUBLIC_PATHS and m <= {"GET", "HEAD"}})
    guarded = sum(p not in public for p, _ in routes)
    return (
        f"equinox tenant map: {keys} API keys; {guarded} of {len(routes)} routes need a key "
        f"(every route not listed here); public (GET/HEAD): {', '.join(public) or 'none'}"
    )


def _route_path(scope: Scope) -> str:
    """The path the router matches (Starlette's get_route_path: the path below root_path)."""
    path, root = str(scope.get("path", "")), str(scope.get("root_path", ""))
    if root and path.startswith(root) and (path == root or path[len(root)] == "/"):
        return path[len(root) :]
    return path


def _is_public(scope: Scope) -> bool:
    if scope["type"] != "http":
        return False
    method = scope.get("method")
    if method == "OPTIONS" and _header(scope, b"access-control-request-method"):
        return True  # a CORS preflight: vLLM's CORS middleware answers it without a route
    return method in ("GET", "HEAD") and _route_path(scope) in PUBLIC_PATHS


def _header(scope: Scope, name: bytes) -> bytes:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value)
    return b""


def _bearer(scope: Scope) -> str:
    scheme, _, key = _header(scope, b"authorization").decode("latin-1").partition(" ")
    return key.strip() if scheme.lower() == "bearer" else ""


async def _refuse(scope: Scope, send: Send, refusal: Refusal) -> None:
    if scope["type"] == "websocket":  # closing before accept: the server answers the handshake 403
        return await send({"type": "websocket.close", "code": 1008, "reason": str(refusal)})
    error = {"message": str(refusal), "type": "invalid_request_error", "code": refusal.status}
    await _answer(send, refusal.status, {"error": error})


async def _read_body(receive: Receive) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise Refusal(413, f"request body over {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _stamped_frames(receive: Receive, stamp: dict[str, Any]) -> Receive:
    """A websocket receive() whose JSON frames carry the key's tenant (others pass unchanged)."""

    async def stamped() -> Message:
        message = await receive()
        if message.get("type") == "websocket.receive":
            for field in ("text", "bytes"):
                if message.get(field):
                    try:
                        new = stamp_body(message[field], stamp, force_root=False)
                    except Refusal:
                        continue  # not JSON: nothing in it that vLLM could read as a claim
                    message = {**message, field: new.decode() if field == "text" else new}
        return message

    return stamped


def _with_length(scope: Scope, length: int) -> Scope:
    drop = (b"content-length", b"transfer-encoding")
    headers = [(k, v) for k, v in scope.get("headers", ()) if k.lower() not in drop]
    return {**scope, "headers": [*headers, (b"content-length", str(length).encode())]}


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive() that gives the (rewritten) body once, then the real channel (disconnects)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
