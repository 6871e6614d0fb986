"""Open-loop HTTP replay: every request is sent at its trace time, whatever the server does.

Send times are scheduled on absolute loop time (t0 + arrival_s), never as sleeps between requests,
so lateness does not accumulate; every latency is counted from the *intended* send time, so time a
request spent waiting for a concurrency slot counts against the server (like a real user's). Output
length is forced (`max_tokens = min_tokens = target`, `ignore_eos`) and checked against the tokens
actually streamed (the server's `usage` is only a cross-check). Each request ends in exactly one
status: finished, length_mismatch (served, but not the forced length; `finished` with length_ok
false when the user allows mismatches), error (with the reason, whatever went wrong), timeout
(connect, per request or the global deadline, each said as such), or not_sent. `attempt_s` is when
the client started a request, `sent_s` when its body was written to a connection (delivered).
"""

from __future__ import annotations

import asyncio
import gc
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
import numpy as np

from equinox_cli.core.types import Workload, WorkloadItem
from equinox_cli.engines.http.stream import StreamError, parse_line

# Prompts are sent as token ids (exact lengths, no tokenizer needed), drawn per request from a
# seed of its id: distinct prompts, so the server's prefix cache does not turn prefill into hits,
# and the same ids on every replay. The range fits any vocabulary (the tiny model has 512 ids).
PROMPT_TOKEN_RANGE = (10, 500)


def prompt_token_ids(request_id: str, n: int) -> list[int]:
    rng = np.random.default_rng(zlib.crc32(request_id.encode()))
    return rng.integers(*PROMPT_TOKEN_RANGE, size=n).tolist()


@dataclass(frozen=True, slots=True)
class HttpConfig:
    base_url: str
    model: str = "default"
    api_keys: dict[str, str] = field(default_factory=dict)  # client_id → API key
    max_concurrency: int = 2048
    request_timeout_s: float = 300.0
    deadline_s: float | None = None  # global: after it, in-flight requests time out, the rest are not sent
    start_lead_s: float = 0.05  # time to set up before the first send
    connect_timeout_s: float = 10.0
    allow_length_mismatch: bool = False  # a request served at another length still counts as finished


@dataclass(slots=True)
class Outcome:
    item: WorkloadItem
    status: str = "not_sent"  # finished | length_mismatch | error | timeout | not_sent
    reason: str = ""
    intended_s: float = 0.0  # all times relative to t0
    attempt_s: float | None = None  # the client began the request (took a concurrency slot)
    sent_s: float | None = None  # the request was written to a connection (delivered)
    first_token_s: float | None = None
    finish_s: float | None = None
    output_tokens: int = 0
    token_times_s: list[float] = field(default_factory=list)

    @property
    def length_ok(self) -> bool:
        return self.status == "finished" and self.output_tokens == self.item.output_tokens


def request_body(item: WorkloadItem, model: str) -> dict[str, object]:
    request = item.request
    return {
        "model": model,
        "prompt": prompt_token_ids(request.request_id, request.prompt_tokens),
        "max_tokens": item.output_tokens,
        "min_tokens": item.output_tokens,
        "ignore_eos": True,
        "temperature": 0.0,
        "stream": True,
        "stream_options": {"include_usage": True},
        "return_token_ids": True,  # vLLM: each chunk names its tokens, so the count is exact
        "user": request.client_id,
        "vllm_xargs": {
            "equinox_client": request.client_id,
            "equinox_weight": request.weight,
            "equinox_request": request.request_id,  # joins the plug-in's log rows to ours
        },
    }


class _Replay:
    def __init__(self, workload: Workload, config: HttpConfig, on_done: Callable[[int], None] | None) -> None:
        self.items = workload.items
        self.config = config
        self.on_done = on_done
        self.outcomes = [Outcome(item, intended_s=item.request.arrival_s) for item in workload.items]
        self.done = 0
        self.t0 = 0.0

    def now(self) -> float:
        return time.perf_counter() - self.t0

    async def run(self) -> list[Outcome]:
        config = self.config
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=config.connect_timeout_s)
        connector = aiohttp.TCPConnector(limit=config.max_concurrency, force_close=False)
        trace = aiohttp.TraceConfig()
        trace.on_request_chunk_sent.append(self._on_written)
        trace.on_request_headers_sent.append(self._on_written)
        async with aiohttp.ClientSession(
            timeout=timeout, connector=connector, trace_configs=[trace]
        ) as session:
            self.t0 = time.perf_counter() + config.start_lead_s
            gate = asyncio.Semaphore(config.max_concurrency)
            tasks: list[asyncio.Future[None]] = []
            sender = asyncio.ensure_future(self._send_all(session, gate, tasks))
            try:
                await asyncio.wait_for(sender, config.deadline_s) if config.deadline_s else await sender
                if tasks:
                    remaining = (
                        None if config.deadline_s is None else max(0.0, config.deadline_s - self.now())
                    )
                    await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), remaining)
            except TimeoutError:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                for outcome in self.outcomes:
                    if (
                        outcome.sent_s is not None
                        and outcome.finish_s is None
                        and outcome.status == "not_sent"
                    ):
                        outcome.status, outcome.reason = "timeout", "global deadline"
        return self.outcomes

    async def _send_all(
        self, session: aiohttp.ClientSession, gate: asyncio.Semaphore, tasks: list[asyncio.Future[None]]
    ) -> None:
        for index, outcome in enumerate(self.outcomes):
            delay = outcome.intended_s - self.now()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(self._one(session, gate, index)))

    async def _on_written(self, session: object, context: object, params: object) -> None:
        """aiohttp trace hook: the request's headers or body reached the connection."""
        outcome = getattr(context, "trace_request_ctx", None)
        if isinstance(outcome, Outcome):
            outcome.sent_s = self.now()  # the last write: the body (headers first)

    async def _one(self, session: aiohttp.ClientSession, gate: asyncio.Semaphore, index: int) -> None:
        outcome = self.outcomes[index]
        config = self.config
        async with gate:
            outcome.attempt_s = self.now()
            try:
                await asyncio.wait_for(self._stream(session, outcome), config.request_timeout_s)
            except aiohttp.ServerTimeoutError:  # before TimeoutError: it is one
                outcome.status = "timeout"
                outcome.reason = f"connect timeout: no connection within {config.connect_timeout_s:g} s"
            except TimeoutError:
                outcome.status, outcome.reason = (
                    "timeout",
                    f"no complete response within {config.request_timeout_s:g} s",
                )
            except asyncio.CancelledError:
                outcome.status, outcome.reason = "timeout", "global deadline"
                raise
            except StreamError as exc:
                outcome.status, outcome.reason = "error", str(exc)
            except aiohttp.ClientResponseError as exc:
                outcome.status, outcome.reason = "error", f"HTTP {exc.status}: {exc.message}"
            except (aiohttp.ClientError, ConnectionError, OSError) as exc:
                outcome.status, outcome.reason = "error", f"connection: {type(exc).__name__}: {exc}"[:200]
            except Exception as exc:
                outcome.status, outcome.reason = "error", f"client fault: {type(exc).__name__}: {exc}"[:200]
            finally:
                self.done += 1
                if self.on_done:
                    self.on_done(self.done)

    async def _stream(self, session: aiohttp.ClientSession, outcome: Outcome) -> None:
        item = outcome.item
        headers = {}
        key = self.config.api_keys.get(item.request.client_id)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        url = self.config.base_url.rstrip("/") + "/v1/completions"
        payload = request_body(item, self.config.model)
        async with session.post(url, json=payload, headers=headers, trace_request_ctx=outcome) as response:
            if response.status >= 400:
                body = (await response.text())[:160].replace("\n", " ")
                outcome.status, outcome.reason = "error", f"HTTP {response.status}: {body}"
                return
            tokens, usage, done = 0, None, False
            async for line in response.content:
                chunk = parse_line(line)
                if chunk is None:
                    continue
                if chunk.text_tokens:
                    stamp = self.now()
                    if outcome.first_token_s is None:
                        outcome.first_token_s = stamp
                    outcome.token_times_s.append(stamp)
                    tokens += chunk.text_tokens
                if chunk.usage_tokens is not None:
                    usage = chunk.usage_tokens
                if chunk.done:
                    done = True
                    break
            if not done:
                raise StreamError("server closed the stream before [DONE]")
        outcome.finish_s = self.now()
        outcome.output_tokens = tokens  # what was streamed; usage is only a cross-check
        target = item.output_tokens
        if tokens == target and usage in (None, tokens):
            outcome.status = "finished"
            return
        said = "" if usage is None else f" (usage said {usage})"
        outcome.reason = f"streamed {tokens} of {target} tokens{said}"
        outcome.status = "finished" if self.config.allow_length_mismatch else "length_mismatch"


def replay_http(
    workload: Workload, config: HttpConfig, on_done: Callable[[int], None] | None = None
) -> list[Outcome]:
    """Replay `workload` against the server; one Outcome per request, in workload order."""
    # The cyclic garbage collector's full passes over every live object (the workload, pandas,
    # numpy: millions) were the largest source of late sends: freeze what exists before the replay
    # so that collections only walk the objects the replay itself makes.
    gc.collect()
    gc.freeze()
    try:
        return asyncio.run(_Replay(workload, config, on_done).run())
    finally:
        gc.unfreeze()
