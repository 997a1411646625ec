"""How far reported TTFT and E2E percentiles are from what a server actually did, under load.

    python bench/timing.py [--runs 5] [--duration 3] [--streams 1,64,256,1024]
                           [--workers 1,2] [--guidellm BIN] [--aiperf BIN] [--out FILE]
    python bench/timing.py --render bench/results/timing.json

The server is bench/loadgen.py's scripted OpenAI chat stream (`--serve`), in its own
process pinned to the last CPU: time to first token 50 ms, then a token every 10 ms, 32
tokens. It stamps, on the machine-wide monotonic clock (perf_counter_ns), when each
request arrived and when it wrote each token. Its truth per request is TTFT = first token
write - arrival, E2E = last write - arrival; the network between them is loopback.

For each number of concurrent streams (closed loop, every stream sends its next request
when its previous one ends, no warmup), each run compares the client's reported p50 and
p99 of TTFT and E2E with the same percentiles of the server's truth over the requests it
completed. The error is reported minus truth, in ms; the table holds the median of
`--runs` runs. KITT runs pinned to the first CPU (`workers: 1`) or unpinned with more
client processes; each KITT run also records its own verdict (client-limited or not,
event-loop lag p99), which says whether KITT itself flagged the run.

`--guidellm` / `--aiperf` name those tools' executables (installed with pip in venvs of
their own): the same loads are run with them, their reported percentiles read from their
JSON exports, and compared with the same truth.

Prints JSON (and writes it to --out, with the error table as markdown beside it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loadgen  # the scripted server and its helpers live there

TTFT_MS, ITL_MS, TOKENS = 50.0, 10.0, 32
PERCENTILES = (50, 99)


def _pcts(values: Sequence[float]) -> dict[str, float]:
    import numpy as np

    return {f"p{p}": float(v) for p, v in zip(PERCENTILES, np.percentile(values, PERCENTILES),
                                              strict=True)}


def truth(stamps: dict[str, list[int]]) -> dict[str, dict[str, float]]:
    """The server's own TTFT and E2E percentiles over the requests it completed."""
    done = [s for s in stamps.values() if len(s) == TOKENS + 1]
    return {"ttft_ms": _pcts([(s[1] - s[0]) / 1e6 for s in done]),
            "e2e_ms": _pcts([(s[-1] - s[0]) / 1e6 for s in done]), "requests": len(done)}


def errors(reported: dict[str, dict[str, float]], true: dict[str, Any]) -> dict[str, float]:
    return {f"{metric}_{p}": reported[metric][p] - true[metric][p]
            for metric in ("ttft_ms", "e2e_ms") for p in ("p50", "p99")}


def kitt_run(url: str, streams: int, duration_s: float, workers: int,
             event_loop: str = "asyncio") -> dict[str, Any]:
    from kitt_bench_perf.health import arrival_of, assess
    from kitt_bench_perf.load import ClientOptions, Concurrency, LoadSpec, run_load
    from kitt_bench_perf.metrics import summarize
    from kitt_bench_perf.workload import RequestSpec

    load = LoadSpec(Concurrency(streams), duration_s=duration_s, workers=workers)
    result = run_load(loadgen._endpoint(url), [RequestSpec("hello", TOKENS, 8)], load,
                      ClientOptions(event_loop=event_loop))
    summary = summarize(result.records)
    assert summary.errored == summary.incomplete == 0, summary.errors
    verdict = assess(result.client, 2.0, arrival_of(result.records))
    lag = verdict.details["loop_lag_ms"] or {"p99": 0.0}
    return {"reported": {"ttft_ms": {"p50": summary.ttft_ms.p50, "p99": summary.ttft_ms.p99},
                         "e2e_ms": {"p50": summary.e2e_ms.p50, "p99": summary.e2e_ms.p99}},
            "flagged_client_limited": float(verdict.client_limited),
            "send_delay_ms_p99": (verdict.details["send_delay_ms"] or {"p99": 0.0})["p99"],
            "client_loop_lag_ms_p99": lag["p99"],
            "client_cpu_cores_max": verdict.details["cpu_cores_max"],
            "prewarmed": result.prewarmed, "event_loop": result.event_loop,
            "arrival_stamps": verdict.details["arrival_stamps"]}


def guidellm_run(binary: str, url: str, streams: int, duration_s: float,
                 tokenizer: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "benchmarks.json"
        subprocess.run(
            [binary, "run",
             "--backend", f"kind=openai_http,target={url},model={tokenizer},"
                          "request_format=/v1/chat/completions",
             "--profile", f"kind=concurrent,streams={streams}",
             "--constraint", f"kind=max_duration,seconds={duration_s}",
             "--data", f"kind=synthetic_text,prompt_tokens=8,output_tokens={TOKENS}",
             "--output", f"kind=json,path={out}", "--disable-console-interactive"],
            check=True, capture_output=True, timeout=600)
        doc = json.loads(out.read_text())
    return {"reported": _guidellm_percentiles(doc)}


def _guidellm_percentiles(doc: dict[str, Any]) -> dict[str, dict[str, float]]:
    metrics = doc["benchmarks"][0]["metrics"]

    def pick(name: str, scale: float) -> dict[str, float]:
        dist = metrics[name]["successful"]["percentiles"]
        return {"p50": dist["p50"] * scale, "p99": dist["p99"] * scale}

    return {"ttft_ms": pick("time_to_first_token_ms", 1.0),
            "e2e_ms": pick("request_latency", 1000.0)}


def aiperf_run(binary: str, url: str, streams: int, duration_s: float,
               tokenizer: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [binary, "profile", "--model", "m", "--url", url, "--endpoint-type", "chat",
             "--streaming", "--concurrency", str(streams),
             "--benchmark-duration", str(duration_s), "--synthetic-input-tokens-mean", "8",
             "--output-tokens-mean", str(TOKENS), "--extra-inputs", "ignore_eos:true",
             "--tokenizer", tokenizer, "--artifact-dir", tmp, "--ui-type", "none"],
            check=True, capture_output=True, timeout=600)
        [export] = Path(tmp).rglob("profile_export_aiperf.json")
        doc = json.loads(export.read_text())

    def pick(name: str) -> dict[str, float]:
        assert doc[name]["unit"] == "ms", doc[name]
        return {"p50": doc[name]["p50"], "p99": doc[name]["p99"]}

    return {"reported": {"ttft_ms": pick("time_to_first_token"),
                         "e2e_ms": pick("request_latency")}}


def _own_version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("kitt-bench-perf")
    except importlib.metadata.PackageNotFoundError:
        return "source tree"


def _version(binary: str, distribution: str) -> str:
    """The tool's version, asked of the Python of the venv it was installed in."""
    python = Path(binary).with_name("python")
    done = subprocess.run([str(python), "-c", "import importlib.metadata as m; "
                           f"print(m.version({distribution!r}))"],
                          capture_output=True, text=True, timeout=60)
    return done.stdout.strip() or "unknown"


def _tokenizer(tmp: str) -> str:
    """A tokenizer the other tools can load offline: KITT's tiny model's."""
    from kitt._testing.tinymodel import write_tiny_model

    return str(write_tiny_model(Path(tmp) / "tiny").hf_dir)


def measure(server: loadgen.ServerProcess, run: Callable[[], dict[str, Any]],
            runs: int) -> dict[str, Any]:
    results = []
    for _ in range(runs):
        loadgen._stamps(server.url)  # clear
        measured = run()
        true = truth(loadgen._stamps(server.url))
        results.append({"error_ms": errors(measured.pop("reported"), true),
                        "truth_ms": {f"{m}_{p}": true[m][p] for m in ("ttft_ms", "e2e_ms")
                                     for p in ("p50", "p99")},
                        "requests": true["requests"], **measured})
        time.sleep(0.5)  # let the last connections close
    return loadgen.median_of(results)


COLUMNS = ("ttft_ms_p50", "ttft_ms_p99", "e2e_ms_p50", "e2e_ms_p99")


def markdown(results: dict[str, Any]) -> str:
    """The error table: each tool's reported percentile minus the server's truth, in ms
    (median of the runs), and each other tool's worst error over KITT's."""
    m = results["machine"]
    lines = [f"# Timing error under load ({results['command']})", "",
             f"{m['cpus']} CPUs ({m['cpu']}), Python {m['python']}; scripted server "
             f"(TTFT {TTFT_MS:g} ms, ITL {ITL_MS:g} ms, {TOKENS} tokens) pinned to CPU "
             f"{m['server_cpu']}; median of {results['runs_per_figure']} runs of "
             f"{results['duration_s']:g} s, closed loop, no warmup. Error = reported "
             "minus the server's truth (ms): its TTFT is its first token's write minus the "
             "kernel's receive time of the request, its E2E the last write minus the same.",
             "", "Versions: " + ", ".join(
                 f"{k} {v}" for k, v in results.get("versions", {}).items()) + ".",
             "", "| client | streams | " + " | ".join(COLUMNS) +
             " | KITT flagged client-limited | KITT loop lag p99 (ms) | KITT CPU (cores) |",
             "|---|---:|" + "---:|" * (len(COLUMNS) + 3)]
    rows: list[tuple[str, int, dict[str, Any]]] = []
    for key, value in results["kitt"].items():
        workers, streams = key.removeprefix("workers_").split("_streams_")
        rows.append((f"KITT, workers {workers}", int(streams), value))
    for tool in ("guidellm", "aiperf"):
        for key, value in results.get(tool, {}).items():
            rows.append((tool, int(key.removeprefix("streams_")), value))
    for name, streams, value in rows:
        if "failed" in value:
            lines.append(f"| {name} | {streams} | failed: {value['failed'][:80]} |")
            continue
        cells = [f"{value['error_ms'][c]:+.2f}" for c in COLUMNS]
        own = ""
        if "flagged_client_limited" in value:
            own = (f" | {'yes' if value['flagged_client_limited'] else 'no'}"
                   f" | {value['client_loop_lag_ms_p99']:.1f}"
                   f" | {value['client_cpu_cores_max']:.2f}")
        lines.append(f"| {name} | {streams} | " + " | ".join(cells) + f"{own} |")
    kitt = {int(k.split("_streams_")[1]): v for k, v in results["kitt"].items()
            if k.startswith("workers_1_")}
    ratios = []
    for tool in ("guidellm", "aiperf"):
        for key, value in results.get(tool, {}).items():
            n = int(key.removeprefix("streams_"))
            if "failed" in value or n not in kitt:
                continue
            worst = max(abs(v) for v in value["error_ms"].values())
            ours = max(abs(v) for v in kitt[n]["error_ms"].values())
            ratio = worst / ours if ours else float("inf")
            shown = f"{ratio:.0f}x" if ratio >= 10 else f"{ratio:.1f}x"
            ratios.append(f"| {tool} | {n} | {worst:.2f} | {ours:.2f} | {shown} |")
    if ratios:
        lines += ["", "Worst absolute error of the four, another tool against KITT "
                  "(workers 1):", "", "| tool | streams | tool's | KITT's | ratio |",
                  "|---|---:|---:|---:|---:|", *ratios]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per run")
    parser.add_argument("--streams", default="1,64,256,1024")
    parser.add_argument("--workers", default="1,2", help="KITT client processes to try")
    parser.add_argument("--event-loop", default="asyncio", choices=("asyncio", "uvloop"))
    parser.add_argument("--guidellm", help="guidellm executable")
    parser.add_argument("--aiperf", help="aiperf executable")
    parser.add_argument("--out", type=Path, help="the JSON; the table goes beside it (.md)")
    parser.add_argument("--render", type=Path, metavar="JSON",
                        help="only print the table of an earlier --out")
    args = parser.parse_args()
    if args.render:
        print(markdown(json.loads(args.render.read_text())), end="")
        return
    streams = [int(s) for s in args.streams.split(",")]
    cpus = sorted(os.sched_getaffinity(0))
    client_cpu, server_cpu = (cpus[0], cpus[-1]) if len(cpus) >= 2 else (None, None)
    import aiohttp

    results: dict[str, Any] = {
        "versions": {"kitt-bench-perf": _own_version(), "aiohttp": aiohttp.__version__},
        "machine": {"cpus": os.cpu_count(), "cpu": loadgen._cpu_model(),
                    "python": sys.version.split()[0], "platform": platform.platform(),
                    "client_cpu": client_cpu, "server_cpu": server_cpu,
                    "loadavg_at_start": os.getloadavg()},
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "scripted": {"ttft_ms": TTFT_MS, "itl_ms": ITL_MS, "tokens": TOKENS},
        "runs_per_figure": args.runs, "duration_s": args.duration, "kitt": {},
    }
    with loadgen.ServerProcess(TTFT_MS, ITL_MS, server_cpu) as server:
        for workers in (int(w) for w in args.workers.split(",")):
            # One process pinned to its own core; more processes get every core.
            os.sched_setaffinity(0, {client_cpu} if workers == 1 and client_cpu is not None
                                 else set(cpus))
            for n in streams:
                results["kitt"][f"workers_{workers}_streams_{n}"] = measure(
                    server, lambda n=n, w=workers: kitt_run(server.url, n, args.duration, w,
                                                         args.event_loop),
                    args.runs)
                print(n, workers, json.dumps(results["kitt"][f"workers_{workers}_streams_{n}"]),
                      file=sys.stderr)
        os.sched_setaffinity(0, set(cpus))
        tokenizer = (_tokenizer(tempfile.mkdtemp(prefix="kitt-timing-"))
                     if args.guidellm or args.aiperf else "")
        for name, binary, fn in (("guidellm", args.guidellm, guidellm_run),
                                 ("aiperf", args.aiperf, aiperf_run)):
            if not binary:
                continue
            results[name] = {}
            results["versions"][name] = _version(binary, name)
            for n in streams:
                try:
                    results[name][f"streams_{n}"] = measure(
                        server, lambda n=n, b=binary, f=fn: f(b, server.url, n, args.duration,
                                                     tokenizer),
                        args.runs)
                except (subprocess.CalledProcessError, KeyError, ValueError) as exc:
                    detail = getattr(exc, "stderr", b"") or b""
                    results[name][f"streams_{n}"] = {
                        "failed": f"{type(exc).__name__}: {exc} {detail[-600:].decode()}"}
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
        args.out.with_suffix(".md").write_text(markdown(results))


if __name__ == "__main__":
    main()
