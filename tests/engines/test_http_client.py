"""The HTTP replay client against a fake OpenAI server: streaming, errors, timeouts, dying servers."""

from __future__ import annotations

import json

import aiohttp
import pytest

from equinox_cli.engines.http.client import HttpConfig, replay_http
from equinox_cli.engines.http.stream import StreamError, parse_line
from tests.conftest import make_workload
from tests.engines.fake_openai import Behaviour, fake_server, free_port


def _workload(n: int = 6, gap_s: float = 0.01, output: int = 5):
    return make_workload([(f"c{i % 2}", i * gap_s, 8, output) for i in range(n)])


def test_parse_line_handles_text_usage_done_and_garbage() -> None:
    assert parse_line(b"") is None and parse_line(b": keep-alive") is None
    chunk = parse_line(b'data: {"choices": [{"text": "hi"}]}')
    assert chunk is not None and chunk.text_tokens == 1 and not chunk.done
    usage = parse_line(b'data: {"choices": [], "usage": {"completion_tokens": 7}}')
    assert usage is not None and usage.usage_tokens == 7 and usage.text_tokens == 0
    done = parse_line(b"data: [DONE]")
    assert done is not None and done.done
    for bad in (b"data: {oops", b"data: [1, 2]", b'data: {"error": {"message": "overloaded"}}'):
        try:
            parse_line(bad)
        except StreamError:
            continue
        raise AssertionError(bad)


def test_streams_are_timed_and_lengths_checked() -> None:
    behaviour = Behaviour(token_delay_s=0.002, first_token_delay_s=0.02)
    workload = _workload()
    with fake_server(behaviour) as url:
        outcomes = replay_http(workload, HttpConfig(url, api_keys={"c0": "key-a"}))
    assert [o.status for o in outcomes] == ["finished"] * 6
    for o in outcomes:
        assert o.length_ok and len(o.token_times_s) == 5
        assert o.first_token_s is not None and o.first_token_s - o.intended_s >= 0.02
        assert o.finish_s is not None and o.finish_s >= o.token_times_s[-1]
    body = behaviour.seen[0]
    assert body["min_tokens"] == body["max_tokens"] == 5 and body["ignore_eos"] is True
    assert len(body["prompt"]) == 8  # type: ignore[arg-type]
    xargs = {b["vllm_xargs"]["equinox_request"]: b["vllm_xargs"] for b in behaviour.seen}  # type: ignore[index]
    assert {x["equinox_client"] for x in xargs.values()} == {"c0", "c1"}
    assert set(xargs) == {it.request.request_id for it in workload.items}
    prompts = {json.dumps(b["prompt"]) for b in behaviour.seen}
    assert len(prompts) == 6  # distinct token ids per request: no accidental prefix-cache hits
    assert behaviour.auth.count("Bearer key-a") == 3 and behaviour.auth.count(None) == 3


def test_short_answers_are_an_outcome_of_their_own_unless_allowed() -> None:
    with fake_server(Behaviour(short_by=2)) as url:
        outcomes = replay_http(_workload(2), HttpConfig(url))
    assert all(o.status == "length_mismatch" and o.output_tokens == 3 for o in outcomes)
    assert outcomes[0].reason == "streamed 3 of 5 tokens (usage said 3)"
    with fake_server(Behaviour(short_by=2)) as url:
        outcomes = replay_http(_workload(2), HttpConfig(url, allow_length_mismatch=True))
    assert all(o.status == "finished" and not o.length_ok for o in outcomes)


def test_output_is_counted_from_the_stream_and_usage_only_cross_checked() -> None:
    with fake_server(Behaviour(short_by=2, usage_claim=5)) as url:  # claims the full length
        outcomes = replay_http(_workload(2), HttpConfig(url))
    assert all(o.status == "length_mismatch" and o.output_tokens == 3 for o in outcomes)
    assert outcomes[0].reason == "streamed 3 of 5 tokens (usage said 5)"
    with fake_server(Behaviour(usage_claim=-7)) as url:  # a negative usage is no count
        outcomes = replay_http(_workload(2), HttpConfig(url))
    assert all(o.status == "finished" and o.output_tokens == 5 for o in outcomes)
    chunk = parse_line(b'data: {"choices": [{"text": "ab", "token_ids": [4, 9]}]}')
    assert chunk is not None and chunk.text_tokens == 2  # vLLM's token ids: exact counts


def test_a_malformed_choices_field_is_an_error_of_a_sent_request() -> None:
    with fake_server(Behaviour(choices_value=5)) as url:
        outcomes = replay_http(_workload(2), HttpConfig(url))
    assert all(o.status == "error" and "'choices' is not a list" in o.reason for o in outcomes)
    assert all(o.sent_s is not None and o.attempt_s is not None for o in outcomes)  # it was sent


def test_every_fault_in_a_request_task_is_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    from equinox_cli.engines.http import client

    async def connect_timeout(self: object, session: object, outcome: object) -> None:
        raise aiohttp.ServerTimeoutError("Connection timeout to host")

    monkeypatch.setattr(client._Replay, "_stream", connect_timeout)
    outcomes = replay_http(_workload(2), HttpConfig("http://127.0.0.1:9"))
    assert all(o.status == "timeout" and o.reason.startswith("connect timeout") for o in outcomes)

    async def bug(self: object, session: object, outcome: object) -> None:
        raise KeyError("surprise")

    monkeypatch.setattr(client._Replay, "_stream", bug)
    outcomes = replay_http(_workload(2), HttpConfig("http://127.0.0.1:9"))
    assert all(o.status == "error" and o.reason.startswith("client fault: KeyError") for o in outcomes)


def test_a_connect_timeout_before_anything_was_sent_is_tried_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing reached the server, so the client tries again (up to CONNECT_ATTEMPTS) and says how
    often; a request whose body was written is never sent twice."""
    from equinox_cli.engines.http import client

    real_stream = client._Replay._stream
    failures = {"r0": 2, "r1": 5}  # r0 connects on its third try; r1 never does; r2 at once

    async def flaky(self: client._Replay, session: aiohttp.ClientSession, outcome: client.Outcome) -> None:
        rid = outcome.item.request.request_id
        if failures.get(rid, 0) > 0:
            failures[rid] -= 1
            raise aiohttp.ServerTimeoutError("Connection timeout to host")
        await real_stream(self, session, outcome)

    monkeypatch.setattr(client._Replay, "_stream", flaky)
    with fake_server(Behaviour()) as url:
        outcomes = replay_http(_workload(3), HttpConfig(url))
    by_id = {o.item.request.request_id: o for o in outcomes}
    assert (by_id["r0"].status, by_id["r0"].connect_attempts) == ("finished", 3)
    assert (by_id["r1"].status, by_id["r1"].connect_attempts) == ("timeout", client.CONNECT_ATTEMPTS)
    assert by_id["r1"].reason.endswith(f"({client.CONNECT_ATTEMPTS} attempts)")
    assert failures["r1"] == 5 - client.CONNECT_ATTEMPTS  # tried exactly that often, no more
    assert (by_id["r2"].status, by_id["r2"].connect_attempts) == ("finished", 1)

    async def timeout_after_sending(self: client._Replay, session: object, outcome: client.Outcome) -> None:
        outcome.sent_s = self.now()  # the body was written: a retry could run the request twice
        raise aiohttp.ServerTimeoutError("Timeout on reading data from socket")

    monkeypatch.setattr(client._Replay, "_stream", timeout_after_sending)
    outcomes = replay_http(_workload(2), HttpConfig("http://127.0.0.1:9"))
    assert all(o.status == "timeout" and o.connect_attempts == 1 for o in outcomes)


def test_http_errors_are_recorded_with_status() -> None:
    with fake_server(Behaviour(status=503)) as url:
        outcomes = replay_http(_workload(3), HttpConfig(url))
    assert all(o.status == "error" and o.reason.startswith("HTTP 503") for o in outcomes)


@pytest.mark.parametrize(
    "message",
    [
        "This model's maximum context length is 1024 tokens. However, your prompt contains 1100 "
        "input tokens, which exceeds this limit even without any output tokens.",
        "min_tokens must be less than or equal to max_tokens=100, got 500.",  # the clamped forced length
    ],
)
def test_a_refusal_for_the_models_context_is_aborted_not_an_error(message: str) -> None:
    with fake_server(Behaviour(status=400, error_message=message)) as url:
        outcomes = replay_http(_workload(2), HttpConfig(url))
    assert all(o.status == "aborted" and o.reason.startswith("HTTP 400: ") for o in outcomes)
    assert message[:40] in outcomes[0].reason
    with fake_server(Behaviour(status=400, error_message="temperature must be non-negative")) as url:
        outcomes = replay_http(_workload(2), HttpConfig(url))
    assert all(o.status == "error" for o in outcomes)  # any other bad request is the client's fault


def test_malformed_chunk_and_dying_server() -> None:
    with fake_server(Behaviour(malformed_after=2)) as url:
        outcomes = replay_http(_workload(2), HttpConfig(url))
    assert all(o.status == "error" and "malformed stream chunk" in o.reason for o in outcomes)
    with fake_server(Behaviour(die_after=2)) as url:
        outcomes = replay_http(_workload(2), HttpConfig(url))
    assert all(o.status == "error" for o in outcomes), [o.reason for o in outcomes]


def test_slow_server_times_out_per_request_and_globally() -> None:
    with fake_server(Behaviour(token_delay_s=0.2)) as url:
        outcomes = replay_http(_workload(2, output=10), HttpConfig(url, request_timeout_s=0.3))
    assert all(o.status == "timeout" for o in outcomes)
    with fake_server(Behaviour(token_delay_s=0.2)) as url:
        outcomes = replay_http(_workload(4, gap_s=0.5, output=10), HttpConfig(url, deadline_s=0.8))
    statuses = [o.status for o in outcomes]
    assert statuses[:2] == ["timeout", "timeout"] and statuses[2:] == ["not_sent", "not_sent"]


def test_unreachable_server_is_an_error_not_a_hang() -> None:
    outcomes = replay_http(_workload(2), HttpConfig(f"http://127.0.0.1:{free_port()}"))
    assert all(o.status == "error" and o.reason.startswith("connection") for o in outcomes)
    assert all(o.sent_s is None and o.attempt_s is not None for o in outcomes)  # attempted, not sent


@pytest.mark.parametrize("spin_s", [0.0, 0.005])
def test_requests_reach_the_server_at_their_send_time_not_before(spin_s: float) -> None:
    # each request is set up ahead of time (LEAD_S) but its body must not be written early
    behaviour = Behaviour()
    starts: list[float] = []
    workload = _workload(5, gap_s=0.05, output=2)
    with fake_server(behaviour) as url:
        outcomes = replay_http(workload, HttpConfig(url, spin_s=spin_s), on_start=starts.append)
    arrived = sorted(t - starts[0] for t in behaviour.arrived)
    for o, at_server in zip(outcomes, arrived, strict=True):
        assert o.status == "finished" and o.sent_s is not None and o.attempt_s is not None
        assert o.attempt_s < o.intended_s <= o.sent_s < o.intended_s + 0.5
        assert o.intended_s <= at_server < o.intended_s + 0.5


def test_lines_split_across_reads_and_a_bare_done_are_read_whole() -> None:
    with fake_server(Behaviour(split_chunks=True, bare_done=True)) as url:
        outcomes = replay_http(_workload(2, output=4), HttpConfig(url))
    assert [(o.status, o.output_tokens) for o in outcomes] == [("finished", 4), ("finished", 4)]


def test_an_endless_line_is_a_stream_error_not_unbounded_memory() -> None:
    with fake_server(Behaviour(long_line_bytes=(1 << 20) + 10)) as url:
        outcomes = replay_http(_workload(1), HttpConfig(url))
    assert outcomes[0].status == "error" and "stream line longer than" in outcomes[0].reason


def test_prompt_token_ids_share_the_blocks_a_trace_says_are_shared() -> None:
    from equinox_cli.core.types import Request
    from equinox_cli.engines.http.client import prompt_token_ids

    def ids(rid: str, hashes: tuple[int, ...], n: int = 300) -> list[int]:
        return prompt_token_ids(Request(rid, "c", 0.0, n, 8, prefix_hashes=hashes, prefix_block_tokens=128))

    a, b, c = ids("a", (1, 2)), ids("b", (1, 2)), ids("c", (1, 3))
    assert len(a) == 300 and a[:256] == b[:256] and a[256:] != b[256:]  # the tail is the request's own
    assert a[:128] == c[:128] and a[128:256] != c[128:256]
    assert ids("a", ()) != ids("b", ()) and len(ids("a", (1,), n=50)) == 50


@pytest.mark.parametrize("api", ["vllm-chat", "openai", "openai-chat"])
def test_chat_and_generic_openai_modes(api: str) -> None:
    """Chat sends messages to /v1/chat/completions; the generic modes send text and no vLLM extensions,
    count tokens by the server's usage (a chunk may hold several) and report a different length
    instead of failing the run."""
    behaviour = Behaviour(tokens_per_chunk=2 if api.startswith("openai") else 1)
    with fake_server(behaviour) as url:
        outcomes = replay_http(_workload(2, output=5), HttpConfig(url, api=api))
    chat = api.endswith("chat")
    assert set(behaviour.paths) == {"/v1/chat/completions" if chat else "/v1/completions"}
    body = behaviour.seen[0]
    text = body["messages"][0]["content"] if chat else body["prompt"]  # type: ignore[index]
    assert isinstance(text, str) and len(text.split()) == 8  # one filler word per prompt token
    generic = api.startswith("openai")
    assert ("vllm_xargs" in body, "min_tokens" in body, "ignore_eos" in body) == (not generic,) * 3
    assert all(o.status == "finished" and o.output_tokens == 5 and o.length_ok for o in outcomes)
    if generic:
        with fake_server(Behaviour(short_by=2, tokens_per_chunk=2)) as url:
            short = replay_http(_workload(2, output=5), HttpConfig(url, api=api))
        assert all(o.status == "finished" and not o.length_ok and o.output_tokens == 3 for o in short)


def test_api_choices_are_the_clients_modes() -> None:
    from equinox_cli.api.engines import API_CHOICES, forces_lengths
    from equinox_cli.engines.http.client import API_MODES

    assert tuple(API_MODES) == API_CHOICES
    assert all(forces_lengths(api) == forced for api, (_, _, forced) in API_MODES.items())
