"""`kitt storage ...`: manage and query KARR from the command line.

Every subcommand takes `--store URL` (else KITT_STORE, config.yaml, the default file).
Only click is imported at module level: this module loads for every `kitt` command.
`kitt storage compare` is `kitt results compare`, added to this group by `_cli.results`
(one comparison implementation, `_compare`).
"""

from __future__ import annotations

from datetime import datetime

import click

from kitt._cli.options import filter_options, json_option, store_option
from kitt._cli.output import print_fields, print_json, print_table
from kitt.hookspecs import hookimpl


def _open(url: str | None, **kwargs):
    from kitt._storage.open import open_store

    return open_store(url, **kwargs)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(storage)


@click.group()
def storage():
    """KARR, the results store: list, show, compare, export and import runs."""


@storage.command()
@store_option
@json_option
def init(store_url, as_json):
    """Create the store (and its schema) if it does not exist."""
    with _open(store_url, create=True) as store:
        info = {"url": store.url, "schema_version": store.schema_version()}
    if as_json:
        print_json(info)
    else:
        click.echo(f"KARR store ready at {info['url']} (schema version "
                   f"{info['schema_version']})")


@storage.command()
@store_option
@click.option("--to", "target", type=int, default=None, help="Stop at this schema version.")
@json_option
def migrate(store_url, target, as_json):
    """Upgrade the store's schema to this KITT's version (back it up first)."""
    with _open(store_url, create=False, allow_old_schema=True) as store:
        before = store.schema_version()
        applied = store.migrate(target)
        info = {"url": store.url, "from": before, "to": store.schema_version(),
                "applied": applied}
    if as_json:
        print_json(info)
    elif applied:
        click.echo(f"migrated {info['url']} from schema {before} to {info['to']}")
    else:
        click.echo(f"{info['url']} is already at schema version {before}")


@storage.command(name="list")
@store_option
@filter_options
@click.option("--limit", type=click.IntRange(min=0), default=50, show_default=True,
              help="At most this many runs (0: all).")
@click.option("--offset", type=click.IntRange(min=0), default=0, help="Skip this many.")
@json_option
def list_command(store_url, where, limit, offset, as_json):
    """Stored runs, newest first."""
    from kitt._util.converter import unstructure

    with _open(store_url, create=False) as store:
        found = store.list_runs(where, limit=limit or None, offset=offset)
    if as_json:
        print_json(unstructure(found))
        return
    print_table(
        ("id", "started", "model", "engine", "suite", "status", "passed", "fingerprint"),
        ((s.id, _iso(s.started_at), s.model,
          f"{s.engine} {s.engine_version}" if s.engine_version else s.engine, s.suite,
          s.status, f"{s.passed}/{s.benchmarks}", s.fingerprint) for s in found),
    )


@storage.command()
@store_option
@click.argument("run_id", metavar="RUN")
@json_option
def show(store_url, run_id, as_json):
    """One run (id or unique id prefix): its fields and metrics."""
    from kitt._util.converter import unstructure

    with _open(store_url, create=False) as store:
        run = store.get_run(run_id)
    if as_json:
        print_json(unstructure(run))
        return
    engine = run.engine
    print_fields([
        ("id", run.id), ("model", run.model),
        ("engine", f"{engine.engine} {run.engine_version or ''}".strip()),
        ("version from", run.engine_version_source), ("mode", engine.mode),
        ("image", engine.image), ("suite", run.suite),
        ("status", run.status), ("started", _iso(run.started_at)),
        ("finished", _iso(run.finished_at)), ("kitt", run.kitt_version),
        ("fingerprint", run.hardware.fingerprint), ("error", run.error),
    ])
    print_table(
        ("benchmark", "run", "passed", "metric", "value", "unit"),
        ((r.name, r.run_number, "yes" if r.passed else "no", m.name, f"{m.value:g}", m.unit)
         for r in run.results for m in (r.metrics or ())),
        title="metrics",
    )


@storage.command()
@store_option
@json_option
def stats(store_url, as_json):
    """Counts and date range of what the store holds."""
    with _open(store_url, create=False) as store:
        info = store.stats()
    if as_json:
        print_json(info)
        return
    print_fields([
        ("url", info["url"]), ("backend", info["backend"]),
        ("schema version", info["schema_version"]),
        *((table.replace("_", " "), count) for table, count in info["counts"].items()),
        *((f"status {status}", count) for status, count in info["status"].items()),
        *((f"distinct {key}s", count) for key, count in info["distinct"].items()),
        ("first run", info["first_started_at"]), ("last run", info["last_started_at"]),
    ])


@storage.command()
@store_option
@filter_options
@click.option("--group-by", default="model,engine", show_default=True,
              help="Comma list of: model, engine, engine_version, suite, fingerprint, status, "
                   "mode.")
@json_option
def aggregate(store_url, where, group_by, as_json):
    """Mean, standard deviation and coefficient of variation of every metric across
    repeated runs, per group."""
    from kitt._util.converter import unstructure

    keys = [key.strip() for key in group_by.split(",") if key.strip()]
    with _open(store_url, create=False) as store:
        found = store.aggregate(where, keys)
    if as_json:
        print_json(unstructure(found))
        return
    print_table(
        (*keys, "benchmark", "metric", "unit", "runs", "n", "mean", "stddev", "cv %"),
        ((*(row.group[k] for k in keys), row.benchmark, row.metric, row.unit, row.runs, row.n,
          f"{row.mean:.6g}", "" if row.stddev is None else f"{row.stddev:.4g}",
          "" if row.cv is None else f"{100 * row.cv:.2f}") for row in found),
    )


@storage.command(name="export")
@store_option
@filter_options
@click.option("--format", "fmt", type=click.Choice(["jsonl", "json", "csv"]), default="jsonl",
              show_default=True, help="jsonl: one run per line; json: one file per run in "
              "--out DIR; csv: one row per metric value.")
@click.option("--out", default="-", show_default=True, help="File or directory; - is stdout.")
def export_command(store_url, where, fmt, out):
    """Write runs out, losslessly (json, jsonl) or as a metrics table (csv)."""
    from kitt._storage.transfer import export

    with _open(store_url, create=False) as store:
        count = export(store, out, fmt, where)
    if out != "-":
        click.echo(f"exported {count} runs to {out}", err=True)


@storage.command(name="import")
@store_option
@click.argument("paths", metavar="PATH...", nargs=-1, required=True,
                type=click.Path(path_type=str))
@json_option
def import_command(store_url, paths, as_json):
    """Read runs from exports (.json, .jsonl, directories of them) and `kitt run` results
    directories. All are validated before any is written; re-imports change nothing."""
    from kitt._storage.transfer import import_runs, read_runs
    from kitt._util.converter import unstructure

    runs = [run for _, run in read_runs(list(paths))]  # before opening: bad input writes nothing
    with _open(store_url, create=True) as store:
        report = import_runs(store, runs)
    if as_json:
        print_json(unstructure(report))
    else:
        click.echo(f"imported {report.added} new, {report.replaced} replaced, "
                   f"{report.unchanged} unchanged")


@storage.command()
@store_option
@click.argument("run_ids", metavar="RUN...", nargs=-1, required=True)
@json_option
def delete(store_url, run_ids, as_json):
    """Delete runs (ids or unique prefixes) and everything recorded with them."""
    with _open(store_url, create=False) as store:
        deleted = store.delete_runs(run_ids)
    if as_json:
        print_json({"deleted": deleted})
    else:
        click.echo(f"deleted {len(deleted)} run(s): {', '.join(deleted)}")
