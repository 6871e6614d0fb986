"""Tenant identity at the server's door: an ASGI middleware for vLLM's `--middleware` hook.

vLLM hands the scheduler only what reaches `SamplingParams.extra_args` (the request's `vllm_xargs`),
so this middleware rewrites the JSON body of generation requests before vLLM parses it:
  * with a tenant map (EQUINOX_TENANT_MAP, a JSON file `{"API key": "tenant"}` or
    `{"API key": {"tenant": "t", "weight": 2}}`): every /v1 request must carry a known key
    (`Authorization: Bearer KEY`, else 401), and the key's tenant and weight replace whatever the
    body claimed, so that no client can pose as another tenant;
  * without a map: a body with no `vllm_xargs.equinox_client` takes its tenant from the OpenAI
    `user` field; a body with neither goes to the default tenant (queue.DEFAULT_TENANT).
Never imports vllm; `equinox serve` checks the map file before the server starts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from equinox_cli.core.errors import UserInputError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

TENANT_MAP_ENV = "EQUINOX_TENANT_MAP"
GENERATION_PATHS = ("/v1/completions", "/v1/chat/completions")


@dataclass(frozen=True, slots=True)
class Tenant:
    name: str
    weight: float = 1.0


def load_tenant_map(path: Path) -> dict[str, Tenant]:
    """API key → tenant, from a JSON object; one-line errors naming the file and the key."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserInputError(f"{path}: cannot read the tenant map ({exc})") from None
    if not isinstance(data, dict) or not data:
        raise UserInputError(f'{path}: expected a non-empty JSON object {{"API key": "tenant"}}')
    tenants = {}
    for key, value in data.items():
        entry = {"tenant": value} if isinstance(value, str) else value
        name = entry.get("tenant") if isinstance(entry, dict) else None
        weight = entry.get("weight", 1.0) if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name:
            raise UserInputError(f"{path}: key {key!r}: tenant must be a non-empty string")
        if not isinstance(weight, int | float) or isinstance(weight, bool) or weight <= 0:
            raise UserInputError(f"{path}: key {key!r}: weight must be a number > 0")
        tenants[str(key)] = Tenant(name, float(weight))
    return tenants


class TenantMiddleware:
    def __init__(self, app: ASGIApp, tenant_map: dict[str, Tenant] | None = None) -> None:
        self.app = app
        path = os.environ.get(TENANT_MAP_ENV)
        if tenant_map is None and path:
            tenant_map = load_tenant_map(Path(path))
        self.tenants = tenant_map

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope.get("type") != "http" or not path.startswith("/v1"):
            return await self.app(scope, receive, send)
        tenant = None
        if self.tenants is not None:
            tenant = self.tenants.get(_bearer(scope))
            if tenant is None:
                return await _unauthorized(send)
        if scope.get("method") != "POST" or path not in GENERATION_PATHS:
            return await self.app(scope, receive, send)
        body = await _read_body(receive)
        new_body = rewrite_body(body, tenant)
        return await self.app(_with_length(scope, len(new_body)), _replay(new_body, receive), send)


def rewrite_body(body: bytes, tenant: Tenant | None) -> bytes:
    """The body with the tenant in `vllm_xargs` (unchanged if it is not a JSON object)."""
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if not isinstance(data, dict):
        return body
    xargs = data.get("vllm_xargs")
    xargs = dict(xargs) if isinstance(xargs, dict) else {}
    if tenant is not None:
        xargs["equinox_client"], xargs["equinox_weight"] = tenant.name, tenant.weight
    elif not xargs.get("equinox_client") and isinstance(data.get("user"), str) and data["user"]:
        xargs["equinox_client"] = data["user"]
    else:
        return body
    data["vllm_xargs"] = xargs
    return json.dumps(data).encode()


def _bearer(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"authorization":
            scheme, _, key = value.decode("latin-1").partition(" ")
            return key.strip() if scheme.lower() == "bearer" else ""
    return ""


async def _unauthorized(send: Send) -> None:
    body = json.dumps(
        {"error": {"message": "unknown or missing API key", "type": "invalid_request_error", "code": 401}}
    ).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 401, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _with_length(scope: Scope, length: int) -> Scope:
    headers = [(k, v) for k, v in scope.get("headers", ()) if k.lower() != b"content-length"]
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
