"""`kitt run` and `kitt suites`: thin commands over `_run.runner` and `_run.suites`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from kitt._cli.options import engine_options, json_option, parse_engine_options
from kitt._cli.progress import TerminalEvents
from kitt.hookspecs import hookimpl


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
@engine_options
@click.option("--port", type=click.IntRange(1, 65535), help="Port to serve on.")
@click.option("--auto-pull", is_flag=True, help="Pull or build a missing image.")
@click.option("--store", "store_url", help="Results store URL [default: KITT_STORE or "
                                           "sqlite:///KITT_HOME/kitt.db].")
@click.option("--url", help="Benchmark an engine already running at this base URL.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for sampled data.")
@click.option("--influx", "influx_url", metavar="URL",
              help="Also write the run's metrics to InfluxDB: http(s)://HOST:PORT/DATABASE "
                   "(docs/monitoring.md).")
@json_option
def run(model, engine, suite, output_dir, mode, runs, skip_warmup, config_file, profile,
        options, port, auto_pull, store_url, url, seed, influx_url, as_json):
    """Launch ENGINE on MODEL, run a suite of benchmarks, store and report the results.

    Exit codes: 0 all passed, 1 a benchmark failed, 2 bad input, 3 engine failure,
    130 or 143 stopped by SIGINT or SIGTERM (what was measured is stored as interrupted).
    """
    from kitt._engines.config import ConfigLayer, load_config_file, load_profile, merge
    from kitt._run.runner import RunRequest, execute
    from kitt._util import signals

    influx = None
    if influx_url:  # checked first: a wrong URL must not cost a whole run
        from kitt._storage.influx import Influx

        influx = Influx.parse(influx_url)
        influx.ping()
    layers = []
    if profile:
        layers.append(load_profile(profile))
    if config_file:
        layers.append(load_config_file(config_file))
    layers.append(ConfigLayer("command line", mode=mode, port=port,
                              options=parse_engine_options(options)))
    request = RunRequest(
        model=model, engine_config=merge(engine, layers), suite=suite, runs=runs,
        skip_warmup=skip_warmup, url=url, output_dir=output_dir, store_url=store_url,
        auto_pull=auto_pull, seed=seed,
    )
    with signals.handle_signals():  # until the summary is out (docs/run.md, stopping)
        with TerminalEvents() as events:
            outcome = execute(request, events)
        try:
            with signals.critical():  # a stored run's summary is printed whole
                _print_outcome(outcome, as_json)
        except signals.Interrupted as stop:
            stop.note(f"run {outcome.run.id} ({outcome.run.status}) was stored in "
                      f"{outcome.output_dir}")
            raise
    if influx is not None:
        _send_to_influx(influx, outcome)
    sys.exit(outcome.exit_code)


def _send_to_influx(influx, outcome) -> None:
    """The run is stored whatever happens here: a failed write says how to send it again
    and fails the command (exit 2), so that a script notices the missing points."""
    from kitt._storage.influx import influx_lines
    from kitt.errors import KittError

    try:
        points = influx.write(influx_lines(outcome.run))
    except KittError as exc:
        click.echo(f"Error: {exc}\n  the run is stored; send it again with `kitt results "
                   f"influx {outcome.run.id} --url ...`", err=True)
        sys.exit(2)
    click.echo(f"influx:  {points} points to {influx.base_url} (database {influx.database})",
               err=True)


def _print_outcome(outcome, as_json: bool) -> None:
    if as_json:
        from kitt._cli.output import print_json
        from kitt._util.converter import unstructure

        doc = unstructure(outcome.run)
        for result in doc["results"]:  # samples live in the results folder, not on stdout
            result.pop("requests"), result.pop("items")
        print_json({"run": doc, "output_dir": str(outcome.output_dir),
                    "store": outcome.store_url, "exit_code": outcome.exit_code})
    else:
        _print_summary(outcome)


def _print_summary(outcome) -> None:
    from kitt._cli.output import print_table
    from kitt._report.format import format_value
    from kitt._run.catalogue import headline_metrics

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
    for result in run.results:
        for warning in result.warnings:
            click.echo(f"warning: {result.name} (run {result.run_number}): {warning}")
    if run.error:
        click.echo(f"Error: {run.error}", err=True)
    click.echo(f"results: {outcome.output_dir}")
    click.echo(f"report:  {outcome.output_dir / 'report.html'}")
    click.echo(f"stored:  {outcome.store_url} (run {run.id})")


@click.group()
def suites():
    """Benchmark suites."""


@suites.command(name="list")
@json_option
def suites_list(as_json: bool):
    """Suites KITT can find by name, and where each comes from."""
    from kitt._cli.output import print_json, print_table
    from kitt._run.suites import available_suites, describe_suite

    found = [describe_suite(path) for path in available_suites().values()]
    if as_json:
        print_json(found)
        return
    print_table(("suite", "benchmarks", "description", "path"),
                ((s["name"], ", ".join(s["benchmarks"]), s["description"], s["path"])
                 for s in found))


@suites.command(name="show")
@click.argument("suite")
@json_option
def suites_show(suite: str, as_json: bool):
    """SUITE validated against the installed benchmarks, every parameter resolved."""
    from kitt import plugins
    from kitt._cli.output import print_json, print_table
    from kitt._run.suites import load_suite

    effective = load_suite(suite, plugins.benchmarks()).effective_config()
    if as_json:
        print_json(effective)
        return
    print_table(("benchmark", "runs", "parameter", "value"),
                ((b["name"], b["runs"], key, value) for b in effective["benchmarks"]
                 for key, value in b["params"].items()),
                title=f"{effective['name']} ({effective['path']})")
