"""Options several commands share, defined once so they read and behave the same
everywhere: `--json`, `--store`, the run filters, regression thresholds, and `-O
KEY=VALUE` engine options."""

from __future__ import annotations

import functools
import typing
from datetime import datetime
from typing import Any

import click

from kitt.errors import BadInput
from kitt.records import RunStatus

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")

store_option = click.option(
    "--store", "store_url", metavar="URL", default=None,
    help="sqlite:///path or postgresql://user:pass@host/db (default: KITT_STORE, "
         "$KITT_HOME/config.yaml `store:`, sqlite:///~/.kitt/kitt.db).")

engine_options = click.option(
    "-O", "--option", "options", multiple=True, metavar="KEY=VALUE",
    help="Engine option, e.g. -O ctx_size=4096 (repeatable; values read as YAML "
         "scalars: 4096, true, null, text).")


def parse_engine_options(pairs: tuple[str, ...]) -> dict[str, Any]:
    """`-O key=value` pairs. Each value is read as a YAML scalar, as in engine config
    files: `4096` is a number, `true` a boolean, `null` unset, anything else text."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise BadInput(f"bad engine option {pair!r}", hint="write -O key=value")
        try:
            value = YAML(typ="safe").load(text)
        except YAMLError:
            value = text
        ok = isinstance(value, int | float | bool | str) or value is None
        options[key] = value if ok else text
    return options


def _date(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadInput(f"bad date {value!r}", hint="use YYYY-MM-DD or an ISO 8601 date-time"
                       ) from None


def filter_options(command):
    """The run filter options shared by list, export, aggregate and stats; the command
    receives them as one `where` (a `RunFilter`)."""
    options = [
        click.option("--model", help="Only runs of this model (exact)."),
        click.option("--engine", help="Only runs of this engine (exact)."),
        click.option("--engine-version", help="Only this engine version."),
        click.option("--suite", help="Only runs of this suite."),
        click.option("--fingerprint", help="Only runs on this hardware fingerprint."),
        click.option("--status", type=click.Choice(typing.get_args(RunStatus)),
                     help="Only runs with this status."),
        click.option("--mode", type=click.Choice(["native", "docker", "external"]),
                     help="Only runs in this mode."),
        click.option("--since", metavar="DATE", help="Started at or after (ISO 8601; UTC "
                     "unless it has an offset)."),
        click.option("--until", metavar="DATE", help="Started before (ISO 8601)."),
    ]
    for option in reversed(options):
        command = option(command)

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from kitt._storage.contract import RunFilter

        names = ("model", "engine", "engine_version", "suite", "fingerprint", "status", "mode")
        kwargs["where"] = RunFilter(
            **{name: kwargs.pop(name) for name in names},
            since=_date(kwargs.pop("since")), until=_date(kwargs.pop("until")),
        )
        return command(*args, **kwargs)

    return wrapper


def threshold_options(command):
    """`--warn`, `--critical` and `--thresholds`; the command receives one `thresholds`."""
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

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from kitt._compare.thresholds import Thresholds, load_thresholds

        path = kwargs.pop("thresholds_file")
        base = load_thresholds(path) if path else Thresholds()
        kwargs["thresholds"] = base.with_defaults(kwargs.pop("warn_pct"),
                                                  kwargs.pop("critical_pct"))
        return command(*args, **kwargs)

    return wrapper
