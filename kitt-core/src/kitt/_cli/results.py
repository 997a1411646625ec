"""`kitt results compare|list` and `kitt report`: compare runs, flag regressions and render
report pages (docs/reports.md). Thin commands over `_compare` and `_report`.
`kitt storage compare` and `kitt storage list` are the same command objects.

Only click is imported at module level: this module loads for every `kitt` command.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from kitt._cli.options import json_option, store_option, threshold_options
from kitt._cli.output import print_fields, print_json, print_table
from kitt._cli.storage import list_command, storage
from kitt.errors import EXIT_FAILED, BadInput
from kitt.hookspecs import hookimpl


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(results)
    cli.add_command(report)


@click.group()
def results():
    """Compare runs and flag regressions (runs from the store or results folders)."""


# `kitt results list` is `kitt storage list`: one implementation, two places to find it.
results.add_command(list_command, name="list")


@results.command(name="submit")
@store_option
@click.argument("refs", metavar="RUN...", nargs=-1, required=True)
@click.option("--server", required=True, metavar="URL", help="The KITT server, https://HOST:PORT.")
@click.option("--ca-file", default=None, metavar="FILE",
              help="The server's CA (its KITT_HOME/web/tls/ca.pem), if the system's CAs do "
                   "not vouch for it.")
@json_option
def submit_command(store_url, refs, server, ca_file, as_json):
    """Upload RUNs (ids or unique prefixes in the store, or results folders) to a KITT
    server's store. The token comes from KITT_SERVER_TOKEN (or `server_token:` in
    KITT_HOME/config.yaml), never an argument. Sending a run twice stores it once."""
    from kitt._storage.remote import server_token, submit

    if not server.startswith(("https://", "http://")):
        raise BadInput(f"bad --server {server!r}", hint="give https://HOST:PORT")
    token = server_token()
    sent = []
    for run in _runs_of(refs, store_url):
        stored = submit(run, server, token, ca_file)
        sent.append({"run_id": run.id, "stored": stored})
        if not as_json:
            click.echo(f"run {run.id}: {'stored' if stored else 'already on the server'}")
    if as_json:
        print_json({"server": server, "runs": sent})


def _runs_of(refs, store_url) -> list:
    """The runs RUN... names: ids or unique prefixes in the store, or results folders."""
    from kitt._storage.open import open_store
    from kitt._storage.transfer import read_runs

    runs = []
    for ref in refs:
        if Path(ref).exists():
            runs.extend(run for _, run in read_runs([ref]))
        else:
            with open_store(store_url, create=False) as store:
                runs.append(store.get_run(ref))
    return runs


@results.command(name="influx")
@store_option
@click.argument("refs", metavar="RUN...", nargs=-1, required=True)
@click.option("--url", required=True, metavar="URL",
              help="InfluxDB and database: http(s)://HOST:PORT/DATABASE.")
@json_option
def influx_command(store_url, refs, url, as_json):
    """Write RUNs' metrics to InfluxDB (ids or unique prefixes in the store, or results
    folders), as `kitt run --influx` does after a run. Credentials come from
    KITT_INFLUX_TOKEN, or KITT_INFLUX_USER and KITT_INFLUX_PASSWORD. Writing a run again
    replaces its points."""
    from kitt._storage.influx import Influx, influx_lines

    target = Influx.parse(url)
    target.ping()
    sent = []
    for run in _runs_of(refs, store_url):
        points = target.write(influx_lines(run))
        sent.append({"run_id": run.id, "points": points})
        if not as_json:
            click.echo(f"run {run.id}: {points} points to {target.base_url} "
                       f"(database {target.database})")
    if as_json:
        print_json({"influx": target.base_url, "database": target.database, "runs": sent})


@results.command(name="compare")
@store_option
@click.argument("refs", metavar="RUN RUN...", nargs=-1, required=True)
@threshold_options
@json_option
def compare_command(store_url, refs, thresholds, as_json):
    """Metrics of RUNs side by side, each against the first (the baseline): mean, stddev
    and CV over each run's repetitions, deltas, and regression flags.

    RUN is a run id or unique id prefix in the store, or a results folder or its
    metrics.json. Exits 1 when any metric regressed past its critical threshold.
    """
    from kitt._compare.compare import compare
    from kitt._compare.load import load_values

    if len(refs) < 2:
        raise BadInput("compare needs at least two runs: a baseline and one to compare",
                       hint="kitt results compare BASELINE RUN...")
    comparison = compare(load_values(refs, store_url), thresholds)
    if as_json:
        print_json(comparison.to_dict())
    else:
        _print_comparison(comparison)
    if comparison.critical:
        sys.exit(EXIT_FAILED)


# One comparison, two places to find it: `kitt storage compare` is this command.
storage.add_command(compare_command, name="compare")


def _value(stats) -> str:
    from kitt._report.format import format_value

    if stats is None:
        return "-"
    text = format_value(stats.mean)
    if stats.stddev is not None:
        text += f" ±{format_value(stats.stddev)}"
        if stats.cv is not None:
            text += f" (cv {100 * stats.cv:.1f}%)"
    return text


def _delta(cell) -> tuple[str, str]:
    from kitt._report.format import format_value

    if cell.delta is None:
        return "", ""
    sign = "+" if cell.delta >= 0 else ""
    return (f"{sign}{format_value(cell.delta)}",
            "n/a" if cell.delta_pct is None else f"{cell.delta_pct:+.2f}%")


def _print_comparison(comparison) -> None:
    runs = comparison.runs
    print_fields([
        (("baseline" if i == 0 else f"run {i + 1}"),
         f"{run.id}  {run.model}  {run.engine} {run.engine_version or ''}  "
         f"{run.started_at.isoformat(timespec='seconds')}  {run.fingerprint}")
        for i, run in enumerate(runs)
    ], title="runs")
    columns = ["benchmark", "metric", "unit", "direction", runs[0].id[:12]]
    for run in runs[1:]:
        columns += [run.id[:12], "Δ", "Δ%", "flag"]
    rows = []
    for row in comparison.rows:
        cells = [row.benchmark, row.metric, row.unit, row.threshold.direction,
                 _value(row.cells[0].stats)]
        for cell in row.cells[1:]:
            cells += [_value(cell.stats), *_delta(cell),
                      "" if cell.flag in (None, "ok") else cell.flag.upper()]
        rows.append(cells)
    print_table(columns, rows, title="metrics (mean over repetitions; Δ vs baseline)")
    flagged = comparison.flagged("critical", "warning", "missing")
    if flagged:
        print_table(
            ("flag", "run", "benchmark", "metric", "Δ%", "threshold"),
            ((row.cells[i].flag.upper(), runs[i].id[:12], row.benchmark, row.metric,
              _delta(row.cells[i])[1],
              f"warn {row.threshold.warn_pct:g}% / critical {row.threshold.critical_pct:g}%"
              f" ({row.threshold.direction} is better)")
             for row, i in flagged),
            title="regressions",
        )
    counts = comparison.counts()
    verdict = ", ".join(f"{n} {flag}" for flag, n in counts.items() if n) or "no regressions"
    click.echo(f"vs baseline {runs[0].id}: {verdict}")


@click.command()
@store_option
@click.argument("refs", metavar="RUN...", nargs=-1, required=True)
@click.option("-o", "--output", default="report.html", show_default=True, metavar="FILE",
              help="Where to write the page; - for stdout.")
@threshold_options
def report(store_url, refs, output, thresholds):
    """Write a self-contained HTML report of one run, or of several compared against the
    first (tables, plots; opens offline).

    RUN is a run id or unique id prefix in the store, or a results folder or its
    metrics.json.
    """
    from kitt._util.extras import require_extra

    require_extra("report", "kitt report")
    from kitt._compare.load import load_runs
    from kitt._report import render_report

    html = render_report(load_runs(refs, store_url), thresholds=thresholds)
    if output == "-":
        sys.stdout.write(html)
        return
    path = Path(output)
    if path.is_dir():
        path = path / "report.html"
    from kitt._util.files import write_atomic

    try:
        write_atomic(path, html)
    except OSError as exc:
        raise BadInput(f"cannot write {path}: {exc}",
                       hint="choose a writable path with -o") from None
    click.echo(f"wrote {path} ({len(refs)} run{'s' if len(refs) > 1 else ''})", err=True)
