"""The streaming client against the scripted server: timestamps, parsing, failures."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest
from support.loop_lag import SLACK_MS, LoopLag, assert_stamped_at_arrival, assert_within
from support.scripted_server import (
    DONE,
    Close,
    Script,
    ScriptedServer,
    Sleep,
    Write,
    chat_chunk,
    completion_chunk,
    sse,
    timed_chat,
    timed_ollama,
    usage_chunk,
)

from kitt import Route
from kitt_bench_perf.client import Endpoint, StreamClient, feed_stamped, request_body
from kitt_bench_perf.metrics import itl_pooled_ms, request_metrics
from kitt_bench_perf.records import Outcome, RequestRecord, TokenSource
from kitt_bench_perf.tokenizer import count_output_tokens
from kitt_bench_perf.workload import RequestSpec

MS = 1_000_000
SPEC = RequestSpec(prompt="Say something", output_tokens=8, input_tokens=3)


async def send(server: ScriptedServer, model: str, route: Route = Route.OPENAI_CHAT,
               **endpoint: object) -> RequestRecord:
    async with StreamClient(Endpoint(server.base_url, model, route, **endpoint), 4) as client:
        return await client.send(client.prepare(SPEC), index=5)


class CharTokenizer:
    def encode(self, text: str) -> list[int]:
        return [ord(c) for c in text]

    def decode(self, ids: list[int]) -> str:
        return "".join(map(chr, ids))


@pytest.mark.timing
async def test_ttft_and_gaps_match_the_script(loop_lag: LoopLag) -> None:
    script = timed_chat(["a", "b", "c", "d", "e"], ttft=0.050, gap=0.020)
    async with ScriptedServer({"m": script}) as server:
        r = await send(server, "m")
    assert r.outcome is Outcome.OK
    m = request_metrics(r)
    assert_within(m.ttft_ms, 50, loop_lag, r.start_ns, r.chunk_ns[0])
    writes = server.requests[0].write_ns[1:6]  # [0] is the role-only chunk
    assert_stamped_at_arrival(r.chunk_ns, writes, loop_lag)
    # So the measured gaps are the server's gaps (>= 20 ms each) up to that stamping delay.
    true_itl = (writes[-1] - writes[0]) / 4 / MS
    assert true_itl >= 20 - 1
    bound = (loop_lag.lag_ms(writes[0], r.chunk_ns[-1]) + SLACK_MS) / 4
    assert abs(m.itl_request_mean_ms - true_itl) <= bound
    assert m.e2e_ms >= 50 + 4 * 20 - 1


@pytest.mark.timing
async def test_reasoning_text_starts_ttft(loop_lag: LoopLag) -> None:
    script = Script((Write(sse(chat_chunk(role="assistant"))), Sleep(0.030),
                     Write(sse(chat_chunk(reasoning="hmm"))), Sleep(0.040),
                     Write(sse(chat_chunk("answer")) + DONE)))
    async with ScriptedServer({"m": script}) as server:
        r = await send(server, "m")
    assert r.outcome is Outcome.OK
    assert_within(request_metrics(r).ttft_ms, 30, loop_lag, r.start_ns, r.chunk_ns[0])
    assert_stamped_at_arrival(r.chunk_ns, server.requests[0].write_ns[1:], loop_lag)
    assert (r.reasoning, r.text) == ("hmm", "answer")


@pytest.mark.timing
async def test_keepalive_comments_do_not_count_as_first_token(loop_lag: LoopLag) -> None:
    script = Script((Sleep(0.010), Write(b": ping\n\n"), Sleep(0.010), Write(b": ping\n\n"),
                     Sleep(0.040), Write(sse(chat_chunk("x")) + DONE)))
    async with ScriptedServer({"m": script}) as server:
        r = await send(server, "m")
    assert r.outcome is Outcome.OK
    assert_within(request_metrics(r).ttft_ms, 60, loop_lag, r.start_ns, r.chunk_ns[0])
    assert_stamped_at_arrival(r.chunk_ns, server.requests[0].write_ns[2:], loop_lag)


@pytest.mark.timing
async def test_event_split_mid_line_and_mid_utf8_is_stamped_when_complete(
        loop_lag: LoopLag) -> None:
    event = sse(chat_chunk("né🚀"))
    cut = event.index("🚀".encode()) + 2  # inside the 4-byte character
    script = Script((Write(event[:cut]), Sleep(0.040), Write(event[cut:] + DONE)))
    async with ScriptedServer({"m": script}) as server:
        r = await send(server, "m")
    assert r.outcome is Outcome.OK and r.text == "né🚀"
    # The event completes with the second write: stamped then, not at the first part.
    assert_stamped_at_arrival(r.chunk_ns, server.requests[0].write_ns[1:], loop_lag)
    assert request_metrics(r).ttft_ms >= 40 - 1


async def test_several_events_in_one_write_share_one_arrival_time() -> None:
    burst = sse(chat_chunk("a")) + sse(chat_chunk("b")) + sse(chat_chunk("c"))
    script = Script((Write(burst), Write(sse(usage_chunk(4, 3)) + DONE)))
    async with ScriptedServer({"m": script}) as server:
        r = await send(server, "m")
    assert r.outcome is Outcome.OK and r.text == "abc"
    assert len(set(r.chunk_ns)) == 1 and len(r.chunk_ns) == 3
    assert (r.output_tokens, r.output_tokens_source) == (3, TokenSource.USAGE)
    assert (r.input_tokens, r.input_tokens_source) == (4, TokenSource.USAGE)


async def test_multi_token_chunks_with_continuous_usage() -> None:
    script = timed_chat(["a", ("bcd", 3), "e"], ttft=0.001, gap=0.005, continuous_usage=True)
    async with ScriptedServer({"m": script}) as server:
        r = await send(server, "m", continuous_usage=True)
    assert r.outcome is Outcome.OK
    assert r.chunk_tokens == (1, 3, 1)
    assert r.output_tokens == 5
    assert len(itl_pooled_ms([r])) == 4
    body = server.requests[0].body
    assert body["stream_options"] == {"include_usage": True, "continuous_usage_stats": True}


async def test_http_error_with_body_is_errored_and_the_connection_reused() -> None:
    error = json.dumps({"object": "error", "message": "This model's maximum context length "
                        "is 2048 tokens", "type": "BadRequestError", "code": 500}).encode()
    scripts = {"bad": Script(status=500, error_body=error),
               "good": timed_chat(["x"], ttft=0, gap=0)}
    async with ScriptedServer(scripts) as server:
        endpoint = Endpoint(server.base_url, "bad", route=Route.OPENAI_CHAT)
        async with StreamClient(endpoint, 1) as client:
            r = await client.send(client.prepare(SPEC))
            good = StreamClient(Endpoint(server.base_url, "good", route=Route.OPENAI_CHAT), 1)
            good._session = client._session  # same pool
            ok = await good.send(good.prepare(SPEC))
    assert r.outcome is Outcome.ERROR and r.http_status == 500
    assert r.error.startswith("HTTP 500: ")
    assert "maximum context length is 2048 tokens" in r.error
    assert ok.outcome is Outcome.OK
    assert server.connections == 1


async def test_server_closing_mid_stream_gives_incomplete_with_partial_data() -> None:
    script = Script((Write(sse(chat_chunk("a"))), Write(sse(chat_chunk("b"))), Sleep(0.01),
                     Close()))
    async with ScriptedServer({"m": script}) as server:
        r = await send(server, "m")
    assert r.outcome is Outcome.INCOMPLETE
    assert len(r.chunk_ns) == 2 and r.text == "ab"
    assert "ClientPayloadError" in r.error and "without [DONE]" in r.error


async def test_clean_end_without_done_is_incomplete() -> None:
    script = Script((Write(sse(chat_chunk("a", finish="stop"))),))
    async with ScriptedServer({"m": script}) as server:
        r = await send(server, "m")
    assert r.outcome is Outcome.INCOMPLETE
    assert r.error == "stream ended without [DONE] (after a finish_reason, 1 text chunks)"


async def test_close_delimited_body_and_error_event() -> None:
    scripts = {
        "close": Script((Write(sse(completion_chunk("hi"))), Write(DONE)), chunked=False),
        "error": Script((Write(sse(chat_chunk("a"))),
                         Write(sse({"error": {"message": "engine died", "code": 500}})))),
    }
    async with ScriptedServer(scripts) as server:
        closed = await send(server, "close", route=Route.OPENAI_COMPLETIONS)
        errored = await send(server, "error")
    assert closed.outcome is Outcome.OK and closed.text == "hi"
    assert closed.output_tokens_source is TokenSource.CHUNKS
    assert errored.outcome is Outcome.ERROR and errored.http_status == 200
    assert errored.error == "error event: engine died"


async def test_output_tokens_without_usage_come_from_chunks_then_tokenizer() -> None:
    script = timed_chat(["ab", "cde"], ttft=0, gap=0, usage=False)
    async with ScriptedServer({"m": script}) as server:
        r = await send(server, "m", include_usage=False)
    assert "stream_options" not in server.requests[0].body
    assert (r.output_tokens, r.output_tokens_source) == (2, TokenSource.CHUNKS)
    assert (r.input_tokens, r.input_tokens_source) == (3, TokenSource.WORKLOAD)
    [counted] = count_output_tokens([r], CharTokenizer())
    assert (counted.output_tokens, counted.output_tokens_source) == (5, TokenSource.TOKENIZER)


@pytest.mark.timing
@pytest.mark.parametrize("route", [Route.OLLAMA_GENERATE, Route.OLLAMA_CHAT])
async def test_ollama_ndjson(route: Route, loop_lag: LoopLag) -> None:
    script = timed_ollama(["Hel", "lo", " ✓"], ttft=0.030, gap=0.010,
                          chat=route is Route.OLLAMA_CHAT)
    async with ScriptedServer({"m": script}) as server:
        r = await send(server, "m", route=route, ignore_eos=True)
    assert r.outcome is Outcome.OK, r.error
    assert r.text == "Hello ✓" and len(r.chunk_ns) == 3
    assert (r.output_tokens, r.output_tokens_source) == (3, TokenSource.USAGE)
    assert (r.input_tokens, r.input_tokens_source) == (5, TokenSource.USAGE)
    assert_within(request_metrics(r).ttft_ms, 30, loop_lag, r.start_ns, r.chunk_ns[0])
    served = server.requests[0]
    assert_stamped_at_arrival(r.chunk_ns, served.write_ns[:3], loop_lag)
    assert served.path == route.path
    assert served.body["options"] == {"num_predict": 8}
    assert "ignore_eos" not in served.body and "stream_options" not in served.body


async def test_ollama_stream_without_done_line_is_incomplete() -> None:
    script = timed_ollama(["a"], ttft=0, gap=0, chat=False, done=False)
    async with ScriptedServer({"m": script}) as server:
        r = await send(server, "m", route=Route.OLLAMA_GENERATE)
    assert r.outcome is Outcome.INCOMPLETE


async def test_request_body_and_headers() -> None:
    async with ScriptedServer({"m": timed_chat(["x"], ttft=0, gap=0)}) as server:
        endpoint = Endpoint(server.base_url, "m", route=Route.OPENAI_COMPLETIONS, ignore_eos=True,
                            temperature=0.0, api_key="sk-test",
                            extra_body={"top_k": 1})
        async with StreamClient(endpoint, 1, send_request_id=True) as client:
            await client.send(client.prepare(SPEC), index=42)
    served = server.requests[0]
    assert served.path == "/v1/completions"
    assert served.body == {"model": "m", "stream": True, "prompt": "Say something",
                           "max_tokens": 8, "temperature": 0.0, "ignore_eos": True,
                           "stream_options": {"include_usage": True}, "top_k": 1}
    assert served.headers["x-request-id"] == "kitt-42"
    assert served.headers["authorization"] == "Bearer sk-test"
    assert served.headers["accept-encoding"] == "identity"
    chat = request_body(Endpoint("http://x", "m", route=Route.OPENAI_CHAT), SPEC)
    assert chat["messages"] == [{"role": "user", "content": "Say something"}]


def test_tgi_generate_stream_body() -> None:
    tgi = Endpoint("http://x", "m", route=Route.TGI_GENERATE_STREAM, ignore_eos=True,
                   temperature=0.0)
    assert tgi.url == "http://x/generate_stream"
    # Greedy (temperature 0 or none): no do_sample/temperature, which TGI would reject.
    assert request_body(tgi, SPEC) == {"inputs": "Say something", "stream": True,
                                       "parameters": {"max_new_tokens": 8, "details": True}}
    warm = Endpoint("http://x", "m", route=Route.TGI_GENERATE_STREAM, temperature=0.7)
    assert request_body(warm, SPEC)["parameters"] == {
        "max_new_tokens": 8, "details": True, "do_sample": True, "temperature": 0.7}


async def test_connection_refused_is_an_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    endpoint = Endpoint(f"http://127.0.0.1:{port}", "m")
    async with StreamClient(endpoint, 1) as client:
        r = await client.send(client.prepare(SPEC))
    assert r.outcome is Outcome.ERROR and r.http_status is None
    assert "ClientConnectorError" in r.error


async def test_very_long_stream() -> None:
    pieces = [f"t{i} " for i in range(5000)]
    big = "é" * 1_000_000
    script = Script((Write(b"".join(sse(chat_chunk(p)) for p in pieces)),
                     Write(sse(chat_chunk(big))), Write(DONE)))
    async with ScriptedServer({"m": script}) as server:
        r = await send(server, "m")
    assert r.outcome is Outcome.OK
    assert len(r.chunk_ns) == 5001
    assert r.text == "".join(pieces) + big


async def test_one_connection_serves_sequential_requests() -> None:
    async with ScriptedServer({"m": timed_chat(["a", "b"], ttft=0, gap=0)}) as server:
        endpoint = Endpoint(server.base_url, "m", route=Route.OPENAI_CHAT)
        async with StreamClient(endpoint, 8) as c:
            records = [await c.send(c.prepare(SPEC), i) for i in range(20)]
    assert all(r.outcome is Outcome.OK for r in records)
    assert server.connections == 1


async def test_cancelled_request_is_recorded_as_incomplete(monkeypatch) -> None:
    import kitt

    received = asyncio.Event()  # the client has parsed the first chunk

    class Signalling(kitt.new_parser(Route.OPENAI_CHAT).__class__):
        def feed(self, data: bytes, now_ns: int) -> None:
            super().feed(data, now_ns)
            if self.text:
                received.set()

    monkeypatch.setattr(kitt, "new_parser",
                        lambda route, capture_text=True: Signalling(True, capture_text))
    script = Script((Write(sse(chat_chunk("a"))), Sleep(5), Write(DONE)))
    async with ScriptedServer({"m": script}) as server:
        endpoint = Endpoint(server.base_url, "m", route=Route.OPENAI_CHAT)
        async with StreamClient(endpoint, 1) as c:
            task = asyncio.create_task(c.send(c.prepare(SPEC), 3))
            await asyncio.wait_for(received.wait(), 30)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    [r] = c.cancelled
    assert r.outcome is Outcome.INCOMPLETE and r.index == 3
    assert r.text == "a" and r.error.startswith("cancelled")


async def test_timeout_mid_stream_is_incomplete() -> None:
    script = Script((Write(sse(chat_chunk("a"))), Sleep(5), Write(DONE)))
    async with ScriptedServer({"m": script}) as server:
        endpoint = Endpoint(server.base_url, "m", route=Route.OPENAI_CHAT)
        async with StreamClient(endpoint, 1, timeout_s=0.2) as client:
            r = await client.send(client.prepare(SPEC))
    assert r.outcome is Outcome.INCOMPLETE
    assert "Timeout" in r.error and r.text == "a"


def test_feed_stamped_maps_each_byte_range_to_its_socket_read() -> None:
    fed: list[tuple[bytes, int]] = []

    def feed(data: bytes, t: int) -> None:
        fed.append((data, t))

    # Reads: 4 bytes at t=10, 3 more at t=20, 5 more at t=30 (cumulative payload bytes).
    stamps = [(10, 4), (20, 7), (30, 12)]
    k = feed_stamped(feed, b"abcdefg", 0, stamps, 0)     # both first reads at once
    assert fed == [(b"abcd", 10), (b"efg", 20)]
    fed.clear()
    k = feed_stamped(feed, b"hi", 7, stamps, k)          # part of the third read...
    k = feed_stamped(feed, b"jkl", 9, stamps, k)         # ...and the rest of it
    assert fed == [(b"hi", 30), (b"jkl", 30)]
    assert k == 2


async def late_reader_scenario(monkeypatch: pytest.MonkeyPatch,
                               hooked: bool) -> tuple[RequestRecord, list[int]]:
    """A client whose reading task runs 100 ms late; returns its record and the server's
    write times of the two chunks."""
    import aiohttp

    import kitt_bench_perf.client as client_module

    if not hooked:  # what the client falls back to if aiohttp's internals change
        monkeypatch.setattr(client_module, "ResponseHandler", None)
    original = aiohttp.StreamReader.readany

    async def late_readany(self: aiohttp.StreamReader) -> bytes:
        await asyncio.sleep(0.100)  # a busy client: the reading task runs late
        return await original(self)

    monkeypatch.setattr(aiohttp.StreamReader, "readany", late_readany)
    script = Script((Sleep(0.010), Write(sse(chat_chunk("a"))), Sleep(0.030),
                     Write(sse(chat_chunk("b")) + DONE)))
    async with ScriptedServer({"m": script}) as server:
        endpoint = Endpoint(server.base_url, "m", route=Route.OPENAI_CHAT)
        async with StreamClient(endpoint, 1) as client:
            assert client.arrival_stamps is hooked
            r = await client.send(client.prepare(SPEC))
    assert r.outcome is Outcome.OK and r.text == "ab"
    return r, server.requests[0].write_ns


@pytest.mark.timing
@pytest.mark.parametrize("hooked", [True, False])
async def test_chunks_are_stamped_at_arrival_even_when_the_reader_is_late(
        monkeypatch: pytest.MonkeyPatch, hooked: bool, loop_lag: LoopLag) -> None:
    r, writes = await late_reader_scenario(monkeypatch, hooked)
    if hooked:
        assert_stamped_at_arrival(r.chunk_ns, writes, loop_lag)
    else:
        # Stamped when the late task read it: ~90 ms after arrival.
        assert (r.chunk_ns[0] - writes[0]) / MS >= 50


@pytest.mark.timing
def test_arrival_stamps_under_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    uvloop = pytest.importorskip("uvloop")

    async def scenario() -> tuple[RequestRecord, list[int], LoopLag]:
        probe = LoopLag()
        probe.start()
        r, writes = await late_reader_scenario(monkeypatch, hooked=True)
        await probe.stop()
        return r, writes, probe

    r, writes, probe = uvloop.run(scenario())
    assert_stamped_at_arrival(r.chunk_ns, writes, probe)
