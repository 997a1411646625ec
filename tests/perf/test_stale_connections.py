"""Servers that announce keep-alive but close after each stream (llama-server does): every
request must still be served, none may fail on a dead pooled connection."""

from __future__ import annotations

import asyncio

from kitt_bench_perf.client import Endpoint, PreparedRequest, StreamClient
from kitt_bench_perf.records import Outcome

STREAM = (b'data: {"choices":[{"text":"hi","index":0}]}\n\n'
          b'data: {"choices":[{"text":"!","index":0}],'
          b'"usage":{"prompt_tokens":3,"completion_tokens":2}}\n\n'
          b"data: [DONE]\n\n")


async def closing_server(served: list[int]) -> asyncio.AbstractServer:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length"))
        await reader.readexactly(length)
        served.append(1)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     b"Connection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"
                     + f"{len(STREAM):x}\r\n".encode() + STREAM + b"\r\n0\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.01)  # the close comes just after the stream, as llama-server's
        writer.close()  # despite the keep-alive it announced

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def test_requests_on_connections_the_server_closed_are_all_served() -> None:
    served: list[int] = []
    server = await closing_server(served)
    port = server.sockets[0].getsockname()[1]
    endpoint = Endpoint(f"http://127.0.0.1:{port}", "m")
    request = PreparedRequest(body=b'{"prompt":"x","stream":true}')
    async with server, StreamClient(endpoint, max_connections=4) as client:
        records = []
        for _ in range(3):  # waves: each reuses the connections the last one left
            # No pause between waves: the next wave takes the pooled connections before
            # the server's close reaches the client, as under a real load.
            records += await asyncio.gather(*(client.send(request, i) for i in range(4)))
    assert [r.outcome for r in records] == [Outcome.OK] * 12, [r.error for r in records]
    assert len(served) == 12
    assert all(r.output_tokens == 2 for r in records)
