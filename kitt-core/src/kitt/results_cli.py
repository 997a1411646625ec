"""`kitt results compare|list` and `kitt report`: compare runs, flag regressions and render
report pages (docs/reports.md). Thin commands over `kitt.compare` and `kitt.report`.
`kitt storage compare` and `kitt storage list` are the same command objects.

Only click is imported at module level: this module loads for every `kitt` command.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from kitt import hookimpl
from kitt.errors import EXIT_FAILED, BadInput
from kitt.output import print_fields, print_json, print_table
from kitt.storage.cli import json_option, list_command, storage, store_option


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(results)
    cli.add_command(report)


def threshold_options(command):
    options = [
        click.option("--warn", "warn_pct", type=float, metavar="PCT", default=None,
                     help="Flag a warning at this % change in the bad direction "
                          "(default 5, or the thresholds file's `warn`)."),
        click.option("--critical", "critical_pct", type=float, metavar="PCT", default=None,
                     help="Flag critical (exit 1) at this % change in the bad direction "
                          "(default 10, or the thresholds file's `critical`)."),
        click.option("--thresholds", "thresholds_file", metavar="FILE", default=None,
                     help="YAML file of per-metric thresholds and directions "
                          "(docs/reports.md)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _thresholds(thresholds_file: str | None, warn_pct: float | None,
                critical_pct: float | None):
    from kitt.compare import Thresholds, load_thresholds

    base = load_thresholds(thresholds_file) if thresholds_file else Thresholds()
    return base.with_defaults(warn_pct, critical_pct)


@click.group()
def results():
    """Compare runs and flag regressions (runs from the store or results folders)."""


# `kitt results list` is `kitt storage list`: one implementation, two places to find it.
results.add_command(list_command, name="list")


@results.command(name="compare")
@store_option
@click.argument("refs", metavar="RUN RUN...", nargs=-1, required=True)
@threshold_options
@json_option
def compare_command(store_url, refs, warn_pct, critical_pct, thresholds_file, as_json):
    """Metrics of RUNs side by side, each against the first (the baseline): mean, stddev
    and CV over each run's repetitions, deltas, and regression flags.

    RUN is a run id or unique id prefix in the store, or a results folder or its
    metrics.json. Exits 1 when any metric regressed past its critical threshold.
    """
    from kitt.compare import compare, load_values

    if len(refs) < 2:
        raise BadInput("compare needs at least two runs: a baseline and one to compare",
                       hint="kitt results compare BASELINE RUN...")
    thresholds = _thresholds(thresholds_file, warn_pct, critical_pct)
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
    from kitt.results import format_value

    if stats is None:
        return "-"
    text = format_value(stats.mean)
    if stats.stddev is not None:
        text += f" ±{format_value(stats.stddev)}"
        if stats.cv is not None:
            text += f" (cv {100 * stats.cv:.1f}%)"
    return text


def _delta(cell) -> tuple[str, str]:
    from kitt.results import format_value

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
    columns = ["benchmark", "metric", "unit", "better", runs[0].id[:12]]
    for run in runs[1:]:
        columns += [run.id[:12], "Δ", "Δ%", "flag"]
    rows = []
    for row in comparison.rows:
        cells = [row.benchmark, row.metric, row.unit, row.threshold.better,
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
              f" ({row.threshold.better} is better)")
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
def report(store_url, refs, output, warn_pct, critical_pct, thresholds_file):
    """Write a self-contained HTML report of one run, or of several compared against the
    first (tables, plots; opens offline).

    RUN is a run id or unique id prefix in the store, or a results folder or its
    metrics.json.
    """
    from kitt.compare import load_runs
    from kitt.report import render_report

    thresholds = _thresholds(thresholds_file, warn_pct, critical_pct)
    html = render_report(load_runs(refs, store_url), thresholds=thresholds)
    if output == "-":
        sys.stdout.write(html)
        return
    path = Path(output)
    if path.is_dir():
        path = path / "report.html"
    from kitt.files import write_atomic

    try:
        write_atomic(path, html)
    except OSError as exc:
        raise BadInput(f"cannot write {path}: {exc}",
                       hint="choose a writable path with -o") from None
    click.echo(f"wrote {path} ({len(refs)} run{'s' if len(refs) > 1 else ''})", err=True)
