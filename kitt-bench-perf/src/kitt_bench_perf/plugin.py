"""KITT plugin entry point (`kitt` entry-point group, name `perf`).

KITT imports this module for every command, `kitt --help` included: it and the benchmark
classes import only attrs and kitt; aiohttp, numpy and prometheus-client are imported
inside `Benchmark.run`.
"""

from __future__ import annotations

import kitt


@kitt.hookimpl
def register_benchmarks(register):
    from kitt_bench_perf.benchmarks import ALL

    for cls in ALL:
        register(cls())
