"""Load generator capacity and timing accuracy of kitt-bench-perf's client.

    python bench/loadgen.py [--runs 3] [--duration 4] [--quick] [--out FILE]

Starts a local streaming server in ANOTHER process (this same file with `--serve`, pinned
to the last CPU when there are two or more; the client is pinned to the first), then
measures, taking the median of `--runs` runs of each:

- capacity: requests/s of 16-token chat streams (zero-delay server) at several
  concurrencies, content chunks/s with long streams, with 1 and 2 worker processes, the
  client's CPU use (resource.getrusage: CPU seconds per wall second, and per request),
  the server's (from /proc), and for comparison bare aiohttp reading the same streams with
  no parsing or records (the HTTP library's own floor);
- timing error: a server that waits TTFT then ITL between tokens, at 1, 64, 256 and 512
  concurrent streams. Reported as measured minus scripted TTFT and ITL (which includes the
  server's own scheduling lateness), and as the client's stamping delay: client timestamp
  minus the server's timestamp of the write (both perf_counter_ns, one system-wide clock).
  The TTFT error splits into request delivery (server arrival minus client send), the
  server's own lateness, and the first chunk's stamp delay; all are reported.
  Streams start either aligned (every stream's chunks due at the same instant, like a
  batched engine step) or spread (ramp-up over one ITL, so arrivals are desynchronized).

Prints JSON (and writes it to --out).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import re
import resource
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "kitt-bench-perf" / "src"))  # usable without installing

# -- the server (runs in its own process) ---------------------------------------------------

CHUNK = ('data: {"id":"chatcmpl-0123456789abcdef","object":"chat.completion.chunk",'
         '"created":1700000000,"model":"m","choices":[%s]%s}\n\n')
_MAX_TOKENS = re.compile(rb'"max_(?:completion_)?tokens":\s*(\d+)')
HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
        b"transfer-encoding: chunked\r\n\r\n")


def _frame(event: str) -> bytes:
    data = event.encode()
    return b"%x\r\n%s\r\n" % (len(data), data)


def _choice(delta: str, finish: str = "null") -> str:
    return f'{{"index":0,"delta":{delta},"logprobs":null,"finish_reason":{finish}}}'


def stream_frames(tokens: int) -> tuple[bytes, list[bytes], bytes]:
    """A vLLM-shaped chat stream as HTTP chunks (one event each, as uvicorn sends them):
    (headers + role chunk, one frame per token, finish + usage + [DONE] + terminator)."""
    usage = (f',"usage":{{"prompt_tokens":8,"completion_tokens":{tokens},'
             f'"total_tokens":{8 + tokens}}}')
    first = HEAD + _frame(CHUNK % (_choice('{"role":"assistant","content":""}'), ""))
    token = _frame(CHUNK % (_choice('{"content":" tok"}'), ""))
    tail = (_frame(CHUNK % (_choice("{}", '"length"'), "")) + _frame(CHUNK % ("", usage))
            + _frame("data: [DONE]\n\n") + b"0\r\n\r\n")
    return first, [token] * tokens, tail


class StreamServer(asyncio.Protocol):
    """HTTP/1.1 keep-alive, just enough for the benchmark client. `max_tokens` in the body
    sets the stream length. Zero TTFT and ITL: the whole stream in one write. Otherwise
    token k is written at arrival + TTFT + k * ITL (absolute deadlines: one late write does
    not delay the next; the arrival is the kernel's receive time where it has one) and
    stamped; `GET /stats` returns and clears the stamps by
    X-Request-Id."""

    ttft_s = 0.0
    itl_s = 0.0
    stamps: dict[str, list[int]] = {}
    anonymous = itertools.count()
    _frames: dict[int, tuple[bytes, list[bytes], bytes]] = {}
    _whole: dict[int, bytes] = {}

    kitt_arrival: int | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buf = b""
        self.loop = asyncio.get_running_loop()
        # A request arrives when the kernel received it, not when this loop (busy writing
        # other streams' tokens) got to it: the truth must not hide the server's own lag.
        from kitt_bench_perf.arrival import kernel_reads

        kernel_reads(transport, self)

    def data_received(self, data: bytes) -> None:
        self.arrival = self.kitt_arrival or time.perf_counter_ns()
        self.kitt_arrival = None
        self.buf += data
        while (end := self.buf.find(b"\r\n\r\n")) >= 0:
            head = self.buf[:end].lower()
            i = head.find(b"content-length:")
            length = int(head[i + 15:].split(b"\r\n", 1)[0]) if i >= 0 else 0
            if len(self.buf) < end + 4 + length:
                return
            body = self.buf[end + 4:end + 4 + length]
            self.buf = self.buf[end + 4 + length:]
            self.handle(head, body)

    @classmethod
    def frames(cls, tokens: int) -> tuple[bytes, list[bytes], bytes]:
        if tokens not in cls._frames:
            cls._frames[tokens] = stream_frames(tokens)
            first, middle, tail = cls._frames[tokens]
            cls._whole[tokens] = first + b"".join(middle) + tail
        return cls._frames[tokens]

    def handle(self, head: bytes, body: bytes) -> None:
        if head.startswith(b"options "):  # a client opening its pool (KITT's prewarm)
            self.transport.write(b"HTTP/1.1 405 Method Not Allowed\r\nallow: POST\r\n"
                                 b"content-length: 0\r\n\r\n")
            return
        if head.startswith(b"get /stats"):
            data = json.dumps(StreamServer.stamps).encode()
            StreamServer.stamps = {}
            self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                                 b"content-length: %d\r\n\r\n%s" % (len(data), data))
            return
        if head.startswith(b"get "):  # other tools' health check and model discovery
            found = head.startswith((b"get /v1/models", b"get /health"))
            data = (b'{"object":"list","data":[{"id":"m","object":"model"}]}'
                    if head.startswith(b"get /v1/models") else b"{}" if found else b"")
            self.transport.write(b"HTTP/1.1 %s\r\ncontent-type: application/json\r\n"
                                 b"content-length: %d\r\n\r\n%s"
                                 % (b"200 OK" if found else b"404 Not Found", len(data), data))
            return
        match = _MAX_TOKENS.search(body)
        tokens = int(match[1]) if match else 16
        first, middle, tail = self.frames(tokens)
        if self.ttft_s == 0 and self.itl_s == 0:
            self.transport.write(self._whole[tokens])
            return
        i = head.find(b"x-request-id:")
        if i >= 0:
            rid = head[i + 13:].split(b"\r\n", 1)[0].strip().decode()
        else:  # a client that sends no id (another tool): stamped all the same
            rid = f"anonymous-{next(StreamServer.anonymous)}"
        stamps = [self.arrival]  # the request's arrival (its last read), then each write
        StreamServer.stamps[rid] = stamps
        self.transport.write(first)
        # Deadlines count from the arrival, however late this loop got to the request.
        base = self.loop.time() + self.ttft_s - (time.perf_counter_ns() - self.arrival) / 1e9
        self.loop.call_at(base, self._token, middle, tail, 0, base, stamps)

    def _token(self, middle: list[bytes], tail: bytes, k: int, base: float,
               stamps: list[int]) -> None:
        if self.transport.is_closing():
            return
        stamps.append(time.perf_counter_ns())
        if k + 1 == len(middle):
            self.transport.write(middle[k] + tail)
            return
        self.transport.write(middle[k])
        self.loop.call_at(base + (k + 1) * self.itl_s, self._token, middle, tail, k + 1, base,
                          stamps)


def serve(port_file: str, ttft_ms: float, itl_ms: float, cpu: int | None) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    StreamServer.ttft_s = ttft_ms / 1000
    StreamServer.itl_s = itl_ms / 1000

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(StreamServer, "127.0.0.1", 0, backlog=4096)
        Path(port_file).write_text(str(server.sockets[0].getsockname()[1]))
        await asyncio.Event().wait()

    asyncio.run(main())


# -- the client side ------------------------------------------------------------------------

class ServerProcess:
    """The server in a child process, pinned to `cpu` (None: not pinned)."""

    def __init__(self, ttft_ms: float, itl_ms: float, cpu: int | None) -> None:
        self.args = ["--ttft-ms", str(ttft_ms), "--itl-ms", str(itl_ms)]
        if cpu is not None:
            self.args += ["--cpu", str(cpu)]

    def __enter__(self) -> ServerProcess:
        port_file = Path(f"/tmp/kitt-loadgen-{os.getpid()}.port")
        port_file.unlink(missing_ok=True)
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port_file),
                                      *self.args])
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("loadgen server did not start")
            time.sleep(0.05)
        port = int(port_file.read_text())
        port_file.unlink()
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)

    def cpu_s(self) -> float:
        """CPU seconds the server has used so far (utime + stime from /proc)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_s() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # joined worker processes
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _endpoint(base_url: str) -> Any:
    from kitt import Route
    from kitt_bench_perf.client import Endpoint

    return Endpoint(base_url, "m", route=Route.OPENAI_CHAT, ignore_eos=True)


def capacity_run(server: ServerProcess, concurrency: int, tokens: int, duration_s: float,
                 workers: int = 1) -> dict[str, float]:
    """Closed loop against the zero-delay server: what one client sustains."""
    from kitt_bench_perf.load import Concurrency, LoadSpec, run_load
    from kitt_bench_perf.metrics import summarize
    from kitt_bench_perf.workload import RequestSpec

    load = LoadSpec(Concurrency(concurrency), duration_s=duration_s,
                    warmup_requests=2 * concurrency, workers=workers)
    cpu0, server0, wall0 = _cpu_s(), server.cpu_s(), time.perf_counter()
    result = run_load(_endpoint(server.url), [RequestSpec("hello", tokens, 8)], load)
    cpu, wall = _cpu_s() - cpu0, time.perf_counter() - wall0
    server_cpu = server.cpu_s() - server0
    summary = summarize(result.records)
    measured = [r for r in result.records if not r.warmup and r.ok]
    chunks = sum(len(r.chunk_ns) for r in measured)
    assert summary.errored == summary.incomplete == 0, summary.errors
    assert all(len(r.chunk_ns) == tokens for r in measured)
    return {"requests_per_s": summary.requests_per_s,
            "content_chunks_per_s": chunks / summary.window_s,
            "sse_events_per_s": chunks * (tokens + 4) / tokens / summary.window_s,
            "client_cpu_cores": cpu / wall,
            "client_cpu_us_per_request": cpu / len(result.records) * 1e6,
            "server_cpu_cores": server_cpu / wall,
            "requests": summary.requests}


def aiohttp_floor_run(server: ServerProcess, concurrency: int, tokens: int,
                      duration_s: float) -> dict[str, float]:
    """The same closed loop with bare aiohttp and no parsing or records: the floor that
    the HTTP library alone sets, for comparison with `capacity_run`."""
    import aiohttp

    from kitt_bench_perf.client import prepare
    from kitt_bench_perf.workload import RequestSpec

    endpoint = _endpoint(server.url)
    body = prepare(endpoint, RequestSpec("hello", tokens, 8)).body
    headers = {"Content-Type": "application/json", "Accept-Encoding": "identity"}

    async def main() -> tuple[int, float, float]:
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            done = 0
            stop = 0.0

            async def user() -> None:
                nonlocal done
                while time.perf_counter() < stop:
                    async with session.post(endpoint.url, data=body, headers=headers) as r:
                        while await r.content.readany():
                            pass
                    done += 1

            stop = time.perf_counter() + 0.5  # warm the pool
            await asyncio.gather(*(user() for _ in range(concurrency)))
            done, cpu0, wall0 = 0, _cpu_s(), time.perf_counter()
            stop = wall0 + duration_s
            await asyncio.gather(*(user() for _ in range(concurrency)))
            return done, _cpu_s() - cpu0, time.perf_counter() - wall0

    done, cpu, wall = asyncio.run(main())
    return {"requests_per_s": done / wall, "client_cpu_cores": cpu / wall,
            "client_cpu_us_per_request": cpu / done * 1e6}


def _stamps(base_url: str) -> dict[str, list[int]]:
    with urllib.request.urlopen(base_url + "/stats", timeout=30) as response:
        return json.loads(response.read())


def _pct(values: list[float]) -> dict[str, float]:
    import numpy as np

    p50, p99 = np.percentile(values, [50, 99])
    return {"p50": float(p50), "p99": float(p99)}


def timing_run(server: ServerProcess, concurrency: int, ttft_ms: float, itl_ms: float, tokens: int,
               duration_s: float, spread: bool) -> dict[str, Any]:
    """Scripted TTFT/ITL: how far measured timings are from the script and from the
    server's actual write times."""
    from kitt_bench_perf.load import ClientOptions, Concurrency, LoadSpec, run_load
    from kitt_bench_perf.workload import RequestSpec

    ramp = itl_ms / 1000 if spread else 0.0
    load = LoadSpec(Concurrency(concurrency, ramp_up_s=ramp), duration_s=duration_s,
                    warmup_requests=concurrency)
    _stamps(server.url)  # clear
    result = run_load(_endpoint(server.url), [RequestSpec("hello", tokens, 8)], load,
                      ClientOptions(send_request_id=True))
    stamps = _stamps(server.url)
    ttft_err, itl_err, delay, delivery, lateness = [], [], [], [], []
    measured = [r for r in result.records if not r.warmup]
    assert all(r.ok and len(r.chunk_ns) == tokens for r in measured)
    for r in measured:
        received, *written = stamps[f"kitt-{r.index}"]
        ttft_err.append((r.chunk_ns[0] - r.sent_ns) / 1e6 - ttft_ms)
        itl_err.extend((b - a) / 1e6 - itl_ms for a, b in itertools.pairwise(r.chunk_ns))
        delay.extend((c - w) / 1e6 for c, w in zip(r.chunk_ns, written, strict=True))
        delivery.append((received - r.sent_ns) / 1e6)
        lateness.append((written[0] - received) / 1e6 - ttft_ms)
    return {"ttft_error_ms": _pct(ttft_err), "itl_error_ms": _pct(itl_err),
            "client_stamp_delay_ms": _pct(delay),
            # TTFT error = request delivery + server lateness + first chunk's stamp delay.
            "request_delivery_ms": _pct(delivery), "server_ttft_lateness_ms": _pct(lateness),
            "requests": len(measured), "chunks": len(delay)}


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Field-wise median of several runs' results (nested dicts included)."""
    out: dict[str, Any] = {}
    for key, value in runs[0].items():
        if isinstance(value, dict):
            out[key] = median_of([r[key] for r in runs])
        elif isinstance(value, str) or value is None:  # a label: one, or all of them
            out[key] = "/".join(sorted({str(r[key]) for r in runs}))
        else:
            out[key] = statistics.median(r[key] for r in runs)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per run")
    parser.add_argument("--quick", action="store_true", help="1 run of 2 s each")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--serve", metavar="PORT_FILE", help=argparse.SUPPRESS)
    parser.add_argument("--ttft-ms", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--itl-ms", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.ttft_ms, args.itl_ms, args.cpu)
        return
    runs, duration = (1, 2.0) if args.quick else (args.runs, args.duration)
    cpus = sorted(os.sched_getaffinity(0))
    client_cpu, server_cpu = (cpus[0], cpus[-1]) if len(cpus) >= 2 else (None, None)
    if client_cpu is not None:
        os.sched_setaffinity(0, {client_cpu})

    def repeat(fn: Any, *fn_args: Any, **kwargs: Any) -> dict[str, Any]:
        return median_of([fn(*fn_args, **kwargs) for _ in range(runs)])

    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "cpu": _cpu_model(), "python": sys.version.split()[0],
                    "platform": platform.platform(), "client_cpu": client_cpu,
                    "server_cpu": server_cpu,
                    "loadavg_at_start": os.getloadavg()},
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "runs_per_figure": runs, "duration_s": duration,
    }
    capacity: dict[str, Any] = {}
    with ServerProcess(0, 0, server_cpu) as server:
        for concurrency in (16, 64, 256):
            capacity[f"16_tokens_concurrency_{concurrency}"] = repeat(
                capacity_run, server, concurrency, 16, duration)
        capacity["512_tokens_concurrency_64"] = repeat(capacity_run, server, 64, 512, duration)
        capacity["bare_aiohttp_16_tokens_concurrency_64"] = repeat(
            aiohttp_floor_run, server, 64, 16, duration)
        # Worker processes: unpinned, so they may use every CPU (the server keeps its own).
        os.sched_setaffinity(0, set(cpus))
        capacity["16_tokens_concurrency_256_workers_2"] = repeat(
            capacity_run, server, 256, 16, duration, workers=2)
        if client_cpu is not None:
            os.sched_setaffinity(0, {client_cpu})
    results["capacity"] = capacity
    timing: dict[str, Any] = {"scripted": {"ttft_ms": 20, "itl_ms": 20, "tokens": 16}}
    with ServerProcess(20, 20, server_cpu) as server:
        for spread in (True, False):
            label = "spread" if spread else "aligned"
            for concurrency in (1, 64, 256, 512):
                timing[f"{label}_concurrency_{concurrency}"] = repeat(
                    timing_run, server, concurrency, 20, 20, 16, duration, spread)
    results["timing"] = timing
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
