"""`kitt run` and `kitt suites`: thin commands over kitt.runner and kitt.suites."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from kitt import hookimpl
from kitt.benchmark import Progress
from kitt.model import BenchmarkResult


@hookimpl
def register_commands(cli):
    cli.add_command(run)
    cli.add_command(suites)


@click.command()
@click.option("-m", "--model", required=True,
              help="Model file or folder (or an engine's model reference, e.g. an Ollama tag).")
@click.option("-e", "--engine", required=True, help="Engine name (`kitt engines list`).")
@click.option("-s", "--suite", default="quick", show_default=True,
              help="Suite name (`kitt suites list`) or path to a suite YAML file.")
@click.option("-o", "--output", "output_dir", type=click.Path(path_type=Path),
              help="Results folder [default: KITT_HOME/results/MODEL/ENGINE/TIMESTAMP].")
@click.option("--mode", type=click.Choice(["native", "docker"]),
              help="Launch natively or in a container [default: native, or the config's].")
@click.option("--runs", type=click.IntRange(min=1), help="Repeat each benchmark N times.")
@click.option("--skip-warmup", is_flag=True, help="Measure from the first request.")
@click.option("--config", "config_file", type=click.Path(path_type=Path),
              help="Engine config YAML (docs/configs.md).")
@click.option("--profile", help="A named engine profile (docs/configs.md).")
@click.option("-O", "--option", "options", multiple=True, metavar="KEY=VALUE",
              help="Engine option, e.g. -O ctx_size=4096 (repeatable).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port to serve on.")
@click.option("--auto-pull", is_flag=True, help="Pull or build a missing image.")
@click.option("--store", "store_url", help="Results store URL [default: KITT_STORE or "
                                           "sqlite:///KITT_HOME/kitt.db].")
@click.option("--url", help="Benchmark an engine already running at this base URL.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for sampled data.")
@click.option("--json", "as_json", is_flag=True, help="Print the run as JSON on stdout.")
def run(model, engine, suite, output_dir, mode, runs, skip_warmup, config_file, profile,
        options, port, auto_pull, store_url, url, seed, as_json):
    """Launch ENGINE on MODEL, run a suite of benchmarks, store and report the results.

    Exit codes: 0 all passed, 1 a benchmark failed, 2 bad input, 3 engine failure.
    """
    from kitt.engine_config import ConfigLayer, load_config_file, load_profile, merge
    from kitt.runner import RunRequest, execute

    layers = []
    if profile:
        layers.append(load_profile(profile))
    if config_file:
        layers.append(load_config_file(config_file))
    layers.append(ConfigLayer("command line", mode=mode, port=port,
                              options=_parse_options(options)))
    request = RunRequest(
        model=model, engine_config=merge(engine, layers), suite=suite, runs=runs,
        skip_warmup=skip_warmup, url=url, output_dir=output_dir, store_url=store_url,
        auto_pull=auto_pull, seed=seed,
    )
    with TerminalEvents() as events:
        outcome = execute(request, events)
    if as_json:
        from kitt.converter import unstructure
        from kitt.output import print_json

        doc = unstructure(outcome.run)
        for result in doc["results"]:  # samples live in the results folder, not on stdout
            result.pop("requests"), result.pop("items")
        print_json({"run": doc, "output_dir": str(outcome.output_dir),
                    "store": outcome.store_url, "exit_code": outcome.exit_code})
    else:
        _print_summary(outcome)
    sys.exit(outcome.exit_code)


def _parse_options(pairs: tuple[str, ...]) -> dict:
    from kitt.errors import BadInput

    options = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise BadInput(f"bad engine option {pair!r}", hint="write -O key=value")
        options[key] = _scalar(text)
    return options


def _scalar(text: str):
    """YAML's reading of a command-line value: 4096 -> int, true -> bool, x -> str."""
    from ruamel.yaml import YAML

    try:
        value = YAML(typ="safe").load(text)
    except Exception:
        return text
    return value if isinstance(value, (int, float, bool, str)) or value is None else text


def _print_summary(outcome) -> None:
    from kitt.output import print_table
    from kitt.results import format_value

    run = outcome.run
    rows = []
    for result in run.results:
        verdict = "passed" if result.passed else "FAILED"
        metrics = headline_metrics(result)
        if result.error:
            rows.append((result.name, result.run_number, verdict, "error", result.error, ""))
        for metric in metrics:
            rows.append((result.name, result.run_number, verdict, metric.name,
                         format_value(metric.value), metric.unit))
    click.echo(f"run {run.id}: {run.status} — {run.model} on {run.engine.engine} "
               f"({run.engine.mode})")
    print_table(("benchmark", "run", "result", "metric", "value", "unit"), rows)
    if run.error:
        click.echo(f"Error: {run.error}", err=True)
    click.echo(f"results: {outcome.output_dir}")
    click.echo(f"report:  {outcome.output_dir / 'report.html'}")
    click.echo(f"stored:  {outcome.store_url} (run {run.id})")


def headline_metrics(result: BenchmarkResult):
    """The metrics a benchmark names as its headline, or all of them."""
    from kitt import plugins

    benchmark = plugins.benchmarks().get(result.name)
    wanted = getattr(benchmark, "headline", ()) or ()
    chosen = [m for m in result.metrics if m.name in wanted]
    return chosen or list(result.metrics)


class TerminalEvents:
    """Progress on stderr: a live bar on a terminal, plain timestamped lines otherwise."""

    def __init__(self):
        self.live = sys.stderr.isatty()
        self._progress = None
        self._task = None
        self._start = time.monotonic()

    def __enter__(self):
        if self.live:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                      MofNCompleteColumn(), TimeElapsedColumn(),
                                      TextColumn("ETA"), TimeRemainingColumn(),
                                      console=Console(stderr=True), transient=False)
            self._progress.start()
        return self

    def __exit__(self, *exc):
        if self._progress is not None:
            self._progress.stop()

    def _line(self, text: str) -> None:
        stamp = f"{time.monotonic() - self._start:7.1f}s"
        if self._progress is not None:
            self._progress.console.print(f"[dim]{stamp}[/dim] {text}", highlight=False)
        else:
            print(f"kitt {stamp} {text}", file=sys.stderr, flush=True)

    def stage(self, text: str) -> None:
        self._line(text)

    def benchmark_started(self, name: str, run_number: int, runs: int) -> Progress:
        label = f"{name} (run {run_number}/{runs})" if runs > 1 else name
        self._line(f"running {label}")
        if self._progress is not None:
            self._task = self._progress.add_task(label, total=None)
            task = self._task

            def progress(done: int, total: int | None) -> None:
                self._progress.update(task, completed=done, total=total)

            return progress
        last = [0.0]

        def progress_lines(done: int, total: int | None) -> None:
            now = time.monotonic()
            if now - last[0] >= 5 or (total is not None and done >= total):
                last[0] = now
                self._line(f"  {label}: {done}/{total if total is not None else '?'}")

        return progress_lines

    def benchmark_finished(self, result: BenchmarkResult) -> None:
        verdict = "passed" if result.passed else "FAILED"
        detail = f": {result.error}" if result.error else ""
        self._line(f"{result.name} run {result.run_number} {verdict}{detail}")


@click.group()
def suites():
    """Benchmark suites."""


@suites.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
def suites_list(as_json: bool):
    """Suites KITT can find by name, and where each comes from."""
    from kitt.output import print_json, print_table
    from kitt.suites import available_suites, describe_suite

    found = [describe_suite(path) for path in available_suites().values()]
    if as_json:
        print_json(found)
        return
    print_table(("suite", "benchmarks", "description", "path"),
                ((s["name"], ", ".join(s["benchmarks"]), s["description"], s["path"])
                 for s in found))


@suites.command(name="show")
@click.argument("suite")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
def suites_show(suite: str, as_json: bool):
    """SUITE validated against the installed benchmarks, every parameter resolved."""
    from kitt import plugins
    from kitt.output import print_json, print_table
    from kitt.suites import load_suite

    effective = load_suite(suite, plugins.benchmarks()).effective_config()
    if as_json:
        print_json(effective)
        return
    print_table(("benchmark", "runs", "parameter", "value"),
                ((b["name"], b["runs"], key, value) for b in effective["benchmarks"]
                 for key, value in b["params"].items()),
                title=f"{effective['name']} ({effective['path']})")
