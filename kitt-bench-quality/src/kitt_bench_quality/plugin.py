"""The `quality` plugin: standard benchmarks, custom YAML evaluations and `kitt test`.

Imported for every `kitt` command: nothing heavy at module level.
"""

from __future__ import annotations

import kitt


@kitt.hookimpl
def register_benchmarks(register):
    from kitt_bench_quality.benchmarks import STANDARD
    from kitt_bench_quality.custom import discover

    for cls in STANDARD:
        register(cls())
    for benchmark in discover():
        register(benchmark)


@kitt.hookimpl
def register_commands(cli):
    from kitt_bench_quality.cli import add_commands

    add_commands(cli)
