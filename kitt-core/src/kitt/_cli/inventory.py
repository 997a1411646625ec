"""`kitt plugins list` and `kitt test list|show`: what the installed plugins provide."""

from __future__ import annotations

import click

from kitt import command_group, plugins
from kitt._cli.options import json_option
from kitt._cli.output import print_fields, print_json, print_table
from kitt.errors import BadInput
from kitt.hookspecs import hookimpl

TEST_HELP = "Benchmarks of the installed plugins: list them, show what each measures."


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(plugins_group)
    test = command_group(cli, "test", TEST_HELP)
    test.add_command(test_list)
    test.add_command(test_show)


@click.group(name="plugins")
def plugins_group():
    """Installed plugins."""


@plugins_group.command(name="list")
@json_option
def plugins_list(as_json: bool):
    """Each plugin with its distribution and what it registers."""
    report = plugin_report()
    if as_json:
        print_json(report)
        return
    kinds = ("engines", "benchmarks", "storage_backends", "probes", "commands")
    print_table(
        ("plugin", "distribution", "version", *kinds),
        (
            (p["name"], p["distribution"], p["version"], *(", ".join(p[k]) for k in kinds))
            for p in report
        ),
    )


def plugin_report() -> list[dict]:
    from kitt._cli import commands_by_plugin

    registrations: dict[str, dict[str, list[str]]] = {}
    hooks = {
        "engines": "register_engines",
        "benchmarks": "register_benchmarks",
        "storage_backends": "register_storage_backends",
        "probes": "register_fingerprint_probes",
    }
    for kind, hook_name in hooks.items():
        for plugin_name, item in plugins.collect(hook_name):
            registrations.setdefault(plugin_name, {}).setdefault(kind, []).append(item.name)
    for plugin_name, names in commands_by_plugin.items():
        registrations.setdefault(plugin_name, {})["commands"] = names
    return [
        {
            "name": info.name,
            "distribution": info.distribution,
            "version": info.version,
            "module": info.module,
            **{
                kind: sorted(registrations.get(info.name, {}).get(kind, []))
                for kind in (*hooks, "commands")
            },
        }
        for info in plugins.loaded_plugins()
    ]


@click.command(name="list")
@json_option
def test_list(as_json: bool):
    """Every benchmark from every plugin (custom evaluations included)."""
    from kitt._run.catalogue import describe_benchmark

    rows = []
    for plugin_name, benchmark in plugins.collect("register_benchmarks"):
        rows.append({**describe_benchmark(benchmark), "plugin": plugin_name})
    rows.sort(key=lambda row: (row["category"], row["name"]))
    if as_json:
        print_json(rows)
        return
    print_table(("name", "category", "version", "plugin", "description"),
                ((r["name"], r["category"], r["version"], r["plugin"],
                  r["description"] if r["valid"] else f"INVALID: {r['problem']}")
                 for r in rows))


@click.command(name="show")
@click.argument("name")
@json_option
def test_show(name: str, as_json: bool):
    """NAME's parameters (with defaults) and the metrics it reports."""
    from kitt._run.catalogue import describe_benchmark

    benchmarks = plugins.benchmarks()
    if name not in benchmarks:
        raise BadInput(f"unknown benchmark {name!r}",
                       hint=f"installed benchmarks: {', '.join(sorted(benchmarks)) or 'none'}")
    doc = describe_benchmark(benchmarks[name], full=True)
    params, metrics = doc["params"], doc["metrics"]
    if as_json:
        print_json(doc)
        return
    print_fields([(key, doc[key]) for key in ("name", "category", "version", "description",
                                              "source", "problem") if doc[key] is not None])
    print_table(("parameter", "type", "default"),
                ((p["name"], p["type"], p["default"]) for p in params), title="parameters")
    print_table(("metric", "unit", "direction", "description"),
                ((m["name"], m["unit"], m["direction"], m["description"]) for m in metrics),
                title="metrics")
