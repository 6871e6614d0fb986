"""An in-process fake OpenAI completions server (aiohttp) with scripted misbehaviour."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Behaviour:
    token_delay_s: float = 0.0
    first_token_delay_s: float = 0.0
    status: int = 200  # HTTP status to answer with
    error_message: str = "nope"  # the error's message when status is not 200
    malformed_after: int | None = None  # send a broken chunk after this many tokens
    die_after: int | None = None  # close the connection after this many tokens
    short_by: int = 0  # generate fewer tokens than asked
    usage_claim: int | None = None  # completion_tokens to claim in usage (else the truth)
    choices_value: object = None  # send one chunk whose "choices" is this (e.g. 5)
    split_chunks: bool = False  # write each chunk in two halves, a moment apart (separate reads)
    bare_done: bool = False  # end with "data: [DONE]" and no line break, then close
    long_line_bytes: int | None = None  # send one line of this many bytes and no line break
    seen: list[dict[str, object]] = field(default_factory=list)
    arrived: list[float] = field(default_factory=list)  # time.perf_counter() when each body was read
    auth: list[str | None] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    tokens_per_chunk: int = 1  # >1: one text chunk carries several tokens (not vLLM: no token ids)
    policy_info: dict[str, object] | None = None  # GET /equinox/policy answers this (None: 404)
    models_info: object = None  # GET /v1/models answers this (None: 404)


BEHAVIOUR = web.AppKey("behaviour", Behaviour)


def _chunk(text: str, chat: bool = False) -> bytes:
    choice = {"index": 0, "delta": {"content": text}} if chat else {"index": 0, "text": text}
    return f"data: {json.dumps({'choices': [choice]})}\n\n".encode()


async def _policy(request: web.Request) -> web.Response:
    info = request.app[BEHAVIOUR].policy_info
    return web.json_response(info) if info is not None else web.Response(status=404)


async def _models(request: web.Request) -> web.Response:
    info = request.app[BEHAVIOUR].models_info
    return web.json_response(info) if info is not None else web.Response(status=404)


async def _completions(request: web.Request) -> web.StreamResponse:
    b = request.app[BEHAVIOUR]
    body = await request.json()
    b.arrived.append(time.perf_counter())
    b.seen.append(body)
    b.auth.append(request.headers.get("Authorization"))
    b.paths.append(request.path)
    chat = "messages" in body
    if b.status != 200:
        return web.json_response({"error": {"message": b.error_message}}, status=b.status)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    await asyncio.sleep(b.first_token_delay_s)
    n = int(body["max_tokens"]) - b.short_by
    for i in range(0, n, b.tokens_per_chunk):
        if b.die_after is not None and i == b.die_after:
            assert request.transport is not None
            request.transport.close()
            return response
        if b.malformed_after is not None and i == b.malformed_after:
            await response.write(b"data: {not json\n\n")
        if b.choices_value is not None and i == 1:
            await response.write(f"data: {json.dumps({'choices': b.choices_value})}\n\n".encode())
        if b.long_line_bytes is not None:
            await response.write(b"data: " + b"x" * b.long_line_bytes)
            return response
        if b.split_chunks:
            whole = _chunk("x")
            await response.write(whole[:9])
            await asyncio.sleep(0.005)
            await response.write(whole[9:])
        else:
            await response.write(_chunk("x" * min(b.tokens_per_chunk, n - i), chat))
        if b.token_delay_s:
            await asyncio.sleep(b.token_delay_s)
    claimed = n if b.usage_claim is None else b.usage_claim
    prompt = body["messages"][0]["content"] if chat else body["prompt"]
    usage = {"choices": [], "usage": {"prompt_tokens": len(prompt), "completion_tokens": claimed}}
    await response.write(f"data: {json.dumps(usage)}\n\n".encode())
    await response.write(b"data: [DONE]" if b.bare_done else b"data: [DONE]\n\n")
    return response


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def fake_server(behaviour: Behaviour) -> Iterator[str]:
    """Serve on 127.0.0.1 in a background thread; yields the base URL."""
    port = free_port()
    loop = asyncio.new_event_loop()
    app = web.Application()
    app[BEHAVIOUR] = behaviour
    app.router.add_post("/v1/completions", _completions)
    app.router.add_post("/v1/chat/completions", _completions)
    app.router.add_get("/equinox/policy", _policy)
    app.router.add_get("/v1/models", _models)
    runner = web.AppRunner(app)
    ready = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
