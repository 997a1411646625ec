"""Streaming HTTP client: sends one request, timestamps every chunk, returns a record.

One `aiohttp.ClientSession` (one connection pool sized to the load's concurrency) serves a
whole run. Request bodies are serialized before the clock starts (`prepare`).

Chunks are stamped when their bytes arrive, not when the task reading the stream next
runs: the connection's protocol records `(perf_counter_ns(), payload bytes so far)` on
every socket read, before any parsing, and the reader maps each event to the read that
completed it. With hundreds of streams the event loop reads all ready sockets before it
resumes any task, so the reading task may run milliseconds after its data arrived; the
arrival stamp does not include that wait. On Linux over plain TCP the stamp is the
kernel's own receive time of the read's last segment (`arrival.kernel_reads`), so a loop
that is late to read does not delay it (chunks that wait for the same read share its
stamp: `health` flags a loop that late). This hooks aiohttp's connection protocol
(its `ResponseHandler` and the connector's protocol factory); if a future aiohttp changes
those internals, the client falls back to stamping when the task reads
(`arrival_stamps` says whether the hook took; `RequestRecord.arrival` how each response
was stamped).

Connection set-up is timed on its own: aiohttp's tracing stamps the moment a request has
its connection (`RequestRecord.connected_ns`) and the moment its bytes go to the socket
(`written_ns`). TTFT and E2E start at the latter, so neither a cold connect, a wait for
a pooled connection, nor a client too busy to write the request at once (on Python 3.11
aiohttp writes the body from a task of its own, queued behind every ready callback) is
counted as the engine's time. `prewarm` opens the pool's connections before a load
starts.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import aiohttp
import attrs

import kitt
from kitt import Route, StreamParser
from kitt_bench_perf.arrival import kernel_reads
from kitt_bench_perf.records import Outcome, RequestRecord, TokenSource
from kitt_bench_perf.workload import RequestSpec

# Failures of a pooled connection before any response: the request was never served.
STALE_CONNECTION = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)

_now = time.perf_counter_ns
ERROR_BODY_BYTES = 4096

try:
    from aiohttp.client_proto import ResponseHandler
except ImportError:  # pragma: no cover - an aiohttp without this internal module
    ResponseHandler = None


if ResponseHandler is not None:
    class _ArrivalStampingHandler(ResponseHandler):
        """aiohttp's connection protocol, plus arrival stamps for the current response."""

        kitt_reader: object = None
        kitt_stamps: list[tuple[int, int]] | None = None
        kitt_kernel = False
        """True when the transport reads with kernel receive timestamps (`arrival`)."""
        kitt_arrival: int | None = None
        """The kernel's stamp of the read being delivered, set just before delivery."""

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            self.kitt_kernel = kernel_reads(transport, self)

        def data_received(self, data: bytes) -> None:
            if not data:  # aiohttp calls this with b"" to resume parsing: no arrival
                super().data_received(data)
                return
            now = self.kitt_arrival or _now()  # before parsing: the arrival
            self.kitt_arrival = None
            super().data_received(data)
            payload = self._payload
            if payload is not None:
                if payload is not self.kitt_reader:
                    # A new response on this connection: a new list (the previous
                    # response's reader keeps its own).
                    self.kitt_reader = payload
                    self.kitt_stamps = []
                self.kitt_stamps.append((now, payload.total_bytes))


class _Connection:
    """One request's connection events, filled in by the trace callbacks."""

    __slots__ = ("arrival", "connected_ns", "opened", "written_ns")

    def __init__(self) -> None:
        self.connected_ns: int | None = None
        self.written_ns: int | None = None
        self.opened = False
        self.arrival: str | None = None  # how the response's chunks were stamped


async def _reused(session: object, context: Any, params: object) -> None:
    context.trace_request_ctx.connected_ns = _now()


async def _opened(session: object, context: Any, params: object) -> None:
    connection = context.trace_request_ctx
    connection.connected_ns = _now()
    connection.opened = True


async def _written(session: object, context: Any, params: object) -> None:
    # Called just before the body's bytes (with the buffered headers) go to the
    # transport, in the same step: the last call is when the request left.
    context.trace_request_ctx.written_ns = _now()


def _trace_config() -> aiohttp.TraceConfig:
    config = aiohttp.TraceConfig()
    config.on_connection_reuseconn.append(_reused)
    config.on_connection_create_end.append(_opened)
    config.on_request_chunk_sent.append(_written)
    config.freeze()
    return config


def _connector(limit: int) -> tuple[aiohttp.TCPConnector, bool]:
    """A connector whose connections stamp arrivals, and whether that hook took."""
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=0, ttl_dns_cache=None,
                                     enable_cleanup_closed=False)
    factory = getattr(connector, "_factory", None)
    if (ResponseHandler is not None and isinstance(factory, functools.partial)
            and factory.func is ResponseHandler):
        connector._factory = functools.partial(_ArrivalStampingHandler, *factory.args,
                                               **factory.keywords)
        return connector, True
    return connector, False


@attrs.frozen
class Endpoint:
    """Where and how to send requests."""

    base_url: str
    """Scheme, host and port (no path): `http://127.0.0.1:8000`."""
    model: str
    route: Route = Route.OPENAI_COMPLETIONS
    ignore_eos: bool = False
    """Send `ignore_eos: true` so outputs run to `max_tokens` (vLLM, llama.cpp). Ollama and
    TGI's `/generate_stream` have no such option; the flag is not sent there."""
    include_usage: bool = True
    """OpenAI APIs: ask for a final usage chunk (`stream_options.include_usage`)."""
    continuous_usage: bool = False
    """OpenAI APIs: ask for cumulative usage in every chunk (vLLM's
    `stream_options.continuous_usage_stats`), which gives exact tokens per chunk. Strict
    servers reject the unknown option, so it is off unless the engine is known to take it."""
    temperature: float | None = None
    api_key: str | None = None
    headers: Mapping[str, str] = attrs.field(factory=dict)
    extra_body: Mapping[str, Any] = attrs.field(factory=dict)
    """Merged last into every request body (engine-specific sampling options)."""

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + self.route.path


@attrs.frozen
class PreparedRequest:
    """A request body serialized once, before any clock starts."""

    body: bytes
    input_tokens: int | None = None


def request_body(endpoint: Endpoint, spec: RequestSpec) -> dict[str, Any]:
    """The JSON body for one request (`kitt.request_body` on the endpoint's route)."""
    return kitt.request_body(endpoint.route, endpoint.model, spec.prompt,
                             max_tokens=spec.output_tokens, temperature=endpoint.temperature,
                             ignore_eos=endpoint.ignore_eos,
                             include_usage=endpoint.include_usage,
                             continuous_usage=endpoint.continuous_usage,
                             extra=endpoint.extra_body)


def prepare(endpoint: Endpoint, spec: RequestSpec) -> PreparedRequest:
    body = json.dumps(request_body(endpoint, spec), separators=(",", ":")).encode()
    return PreparedRequest(body=body, input_tokens=spec.input_tokens)


async def _read_stream(resp: aiohttp.ClientResponse, parser: StreamParser,
                       connection: _Connection) -> None:
    """The hot loop: feed the parser everything buffered, each byte range with the arrival
    time of the socket read that brought it (or, without arrival stamps, the time of this
    read). Reads to EOF even after the end marker, so the connection returns to the pool."""
    content = resp.content
    read = content.readany
    feed = parser.feed
    protocol = getattr(resp, "_protocol", None)
    stamps = getattr(protocol, "kitt_stamps", None)
    if stamps is None or getattr(protocol, "kitt_reader", None) is not content:
        connection.arrival = "read"
        while data := await read():
            feed(data, _now())
        parser.finish()
        return
    connection.arrival = "kernel" if protocol.kitt_kernel else "protocol"
    consumed = 0  # payload bytes handed to the parser so far
    k = 0  # first stamp that may cover bytes not yet handed over
    while data := await read():
        k = feed_stamped(feed, data, consumed, stamps, k)
        consumed += len(data)
    parser.finish()


def feed_stamped(feed: Callable[[bytes, int], None], data: bytes, consumed: int,
                 stamps: Sequence[tuple[int, int]], k: int) -> int:
    """Feed `data` (payload bytes [consumed, consumed + len)) in pieces, each with the
    arrival time of the socket read that brought it. `stamps` holds (arrival ns, payload
    bytes received by then), ascending; `k` is the first stamp not yet used up. Returns
    the new `k`."""
    end = consumed + len(data)
    n = len(stamps)
    while k < n and stamps[k][1] <= consumed:
        k += 1
    if k < n and stamps[k][1] >= end:
        feed(data, stamps[k][0])  # the usual case: all from one socket read
        return k
    pos = consumed
    while pos < end:
        if k < n:
            t, covered = stamps[k]
            cut = min(covered, end)
            if covered <= end:
                k += 1
        else:  # bytes no read accounted for (cannot happen with the hook active)
            t, cut = _now(), end
        if cut > pos:
            feed(data[pos - consumed:cut - consumed], t)
            pos = cut
    return k


def _excerpt(body: bytes, limit: int = 300) -> str:
    text = " ".join(body.decode("utf-8", "replace").split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


async def _read_capped(resp: aiohttp.ClientResponse, limit: int = ERROR_BODY_BYTES) -> bytes:
    """The start of an error body; the rest is read and dropped so the connection can be
    reused."""
    parts: list[bytes] = []
    size = 0
    while data := await resp.content.readany():
        if size < limit:
            parts.append(data)
            size += len(data)
    return b"".join(parts)[:limit]


class StreamClient:
    """Sends streaming requests over one shared connection pool.

    `async with StreamClient(endpoint, max_connections=64) as client:
         record = await client.send(prepared, index=0)`

    `send` never raises for request failures: they become ERROR or INCOMPLETE records.
    If the task running `send` is cancelled, the partial record goes to `self.cancelled`
    (as INCOMPLETE) and the cancellation propagates.
    """

    def __init__(self, endpoint: Endpoint, max_connections: int = 100, *,
                 capture_text: bool = True, timeout_s: float | None = None,
                 connect_timeout_s: float = 30.0, send_request_id: bool = False,
                 worker: int = 0) -> None:
        self.endpoint = endpoint
        self.max_connections = max_connections
        self.capture_text = capture_text
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.send_request_id = send_request_id
        self.worker = worker
        self.cancelled: list[RequestRecord] = []
        self.arrival_stamps = False
        """True when chunks are stamped at arrival (see the module docstring)."""
        self._session: aiohttp.ClientSession | None = None
        self._url = endpoint.url
        headers = {"Content-Type": "application/json",
                   # Compressed streams are buffered by servers and proxies: ask for none.
                   "Accept-Encoding": "identity"}
        if endpoint.route.sse:
            headers["Accept"] = "text/event-stream"
        if endpoint.api_key:
            headers["Authorization"] = f"Bearer {endpoint.api_key}"
        headers.update(endpoint.headers)
        self._headers = headers

    async def __aenter__(self) -> StreamClient:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        connector, self.arrival_stamps = _connector(self.max_connections)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.timeout_s,
                                          sock_connect=self.connect_timeout_s),
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent",),
            trace_configs=[_trace_config()],
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def prepare(self, spec: RequestSpec) -> PreparedRequest:
        return prepare(self.endpoint, spec)

    async def prewarm(self, connections: int) -> int:
        """Open up to `connections` connections and leave them idle in the pool, so the
        load's first requests do not each open one at the same instant. Each is opened by
        an OPTIONS request to the endpoint's URL, all at once: the engine runs no
        inference for it and any status will do. OPTIONS, not HEAD: servers answer it as
        a CORS preflight and keep the connection (llama-server closes the connection of a
        HEAD it does not route). Returns how many were opened on responses that
        kept them alive (a server that closes connections after each response keeps
        none; its requests then connect as they go, and `connect_ms` shows it)."""
        session = self._session
        if session is None:
            raise RuntimeError("StreamClient is not open (use `async with`)")
        if self.max_connections:
            connections = min(connections, self.max_connections)
        headers = {k: v for k, v in self._headers.items() if k != "Content-Type"}

        async def one() -> bool:
            connection = _Connection()
            try:
                async with session.options(self._url, headers=headers,
                                        trace_request_ctx=connection) as resp:
                    kept = resp.version >= aiohttp.HttpVersion11 and (
                        resp.headers.get("Connection", "").lower() != "close")
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                return False  # the load's own requests will report it
            return connection.opened and kept

        return sum(await asyncio.gather(*(one() for _ in range(connections))))

    async def send(self, request: PreparedRequest, index: int = 0, *,
                   scheduled_ns: int | None = None, warmup: bool = False) -> RequestRecord:
        session = self._session
        if session is None:
            raise RuntimeError("StreamClient is not open (use `async with`)")
        parser = kitt.new_parser(self.endpoint.route, self.capture_text)
        headers = self._headers
        if self.send_request_id:
            headers = {**headers, "X-Request-Id": f"kitt-{index}"}
        # Each stale failure discards one pooled connection, so at most the pool's size
        # of them can come before a fresh connection.
        attempts = max(session.connector.limit if session.connector else 0, 1) + 1
        for attempt in range(1, attempts + 1):
            status: int | None = None
            failure: str | None = None
            connection = _Connection()
            start = _now()
            try:
                async with session.post(self._url, data=request.body, headers=headers,
                                        trace_request_ctx=connection) as resp:
                    status = resp.status
                    if status >= 400:
                        failure = f"HTTP {status}: {_excerpt(await _read_capped(resp))}"
                    else:
                        await _read_stream(resp, parser, connection)
            except asyncio.CancelledError:
                self.cancelled.append(self._record(
                    parser, index, start, _now(), scheduled_ns, warmup, status, request,
                    "cancelled (run ended before the stream did)", connection))
                raise
            except STALE_CONNECTION as exc:
                failure = f"{type(exc).__name__}: {exc}".rstrip(": ")
                # A pooled connection the server had already closed (llama-server closes
                # after each stream despite announcing keep-alive): the request never
                # reached the server, so send it again and time that attempt alone.
                if status is None and attempt < attempts:
                    continue
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                failure = f"{type(exc).__name__}: {exc}".rstrip(": ")
            break
        return self._record(parser, index, start, _now(), scheduled_ns, warmup, status,
                            request, failure, connection)

    def _record(self, parser: StreamParser, index: int, start: int, now: int,
                scheduled_ns: int | None, warmup: bool, status: int | None,
                request: PreparedRequest, failure: str | None,
                connection: _Connection) -> RequestRecord:
        if status is None or status >= 400:
            # No stream at all: connection failure or HTTP error.
            outcome, end, error = Outcome.ERROR, now, failure or "no response"
        elif parser.error is not None:
            outcome, end, error = Outcome.ERROR, now, parser.error
        elif parser.done_ns is not None:
            outcome, end, error = Outcome.OK, parser.done_ns, None
        else:
            outcome, end = Outcome.INCOMPLETE, now
            error = f"{failure}; {parser.missing_end_reason()}" if failure else (
                parser.missing_end_reason())
        if parser.output_tokens is not None:
            output_tokens, out_src = parser.output_tokens, TokenSource.USAGE
        else:
            output_tokens, out_src = sum(parser.chunk_tokens), TokenSource.CHUNKS
        if parser.input_tokens is not None:
            input_tokens, in_src = parser.input_tokens, TokenSource.USAGE
        elif request.input_tokens is not None:
            input_tokens, in_src = request.input_tokens, TokenSource.WORKLOAD
        else:
            input_tokens = in_src = None
        capture = self.capture_text
        return RequestRecord(
            index=index, outcome=outcome, start_ns=start, end_ns=end,
            chunk_ns=tuple(parser.chunk_ns),
            chunk_tokens=tuple(parser.chunk_tokens) if parser.tokens_exact else None,
            output_tokens=output_tokens, output_tokens_source=out_src,
            input_tokens=input_tokens, input_tokens_source=in_src,
            scheduled_ns=scheduled_ns, warmup=warmup, http_status=status, error=error,
            text="".join(parser.text) if capture else None,
            reasoning="".join(parser.reasoning) if capture and parser.reasoning else None,
            worker=self.worker, server_timings=parser.server_timings,
            connected_ns=connection.connected_ns, written_ns=connection.written_ns,
            arrival=connection.arrival,
        )
