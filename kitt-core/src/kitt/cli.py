"""The `kitt` command: a thin click host over the core and whatever plugins are installed.

Conventions for every command: `--json` prints machine output on stdout, otherwise
tables; errors go to stderr; exit codes are 0 ok, 1 failed checks, 2 bad input or usage,
3 engine failure (docs/cli.md).
"""

from __future__ import annotations

import sys

import click

from kitt import __version__, plugins
from kitt.errors import KittError
from kitt.output import print_fields, print_json, print_table


class KittGroup(click.Group):
    """Turns `KittError`s into a message on stderr and their exit code."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except KittError as error:
            click.echo(f"Error: {error}", err=True)
            ctx.exit(error.exit_code)


@click.group(cls=KittGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="kitt")
def cli():
    """KITT: launch inference engines, measure quality and performance, keep the results."""


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")


@cli.group(name="plugins")
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
    registrations: dict[str, dict[str, list[str]]] = {}
    hooks = {
        "engines": ("register_engines", lambda item: item.name),
        "benchmarks": ("register_benchmarks", lambda item: item.name),
        "storage_backends": ("register_storage_backends", lambda item: item.name),
        "probes": ("register_fingerprint_probes", lambda item: item.name),
    }
    for kind, (hook_name, key) in hooks.items():
        for plugin_name, item in plugins.collect(hook_name):
            registrations.setdefault(plugin_name, {}).setdefault(kind, []).append(key(item))
    for plugin_name, names in _commands_by_plugin.items():
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


@cli.command()
@click.option("--verbose", "-v", is_flag=True, help="Every field, not just the summary.")
@json_option
def fingerprint(verbose: bool, as_json: bool):
    """Describe this machine's hardware and environment."""
    from kitt.converter import unstructure
    from kitt.fingerprint import take_fingerprint

    fp = take_fingerprint()
    if as_json:
        print_json(unstructure(fp))
        return
    gpus = ", ".join(
        f"{g.name} ({g.memory_mib} MiB)" if g.memory_mib else g.name for g in fp.gpu.gpus
    )
    pairs = [
        ("fingerprint", fp.fingerprint),
        ("gpu", gpus or "no GPU"),
        ("cpu", f"{fp.cpu.brand} ({fp.cpu.architecture}, {fp.cpu.cores} cores, "
                f"{fp.cpu.threads} threads)"),
        ("memory", f"{fp.memory.total_mib} MiB {fp.memory.type or ''}".strip()),
        ("storage", " ".join(filter(None, (fp.storage.kind, fp.storage.model))) or "unknown"),
        ("os", " ".join(filter(None, (fp.os.distribution, fp.os.version)))),
        ("kernel", fp.os.kernel),
        ("environment", fp.environment),
    ]
    if verbose:
        pairs += [
            ("gpu driver", fp.gpu.driver_version),
            ("cuda", fp.gpu.cuda_version),
            ("unified memory", fp.gpu.unified_memory),
            ("gpu source", fp.gpu.source),
            *((f"gpu {i} compute capability", g.compute_capability)
              for i, g in enumerate(fp.gpu.gpus)),
            ("storage device", fp.storage.device),
            *((f"{probe}.{key}", value) for probe, fields in fp.extra.items()
              for key, value in fields.items()),
        ]
    print_fields(pairs)
    for warning in fp.warnings:
        click.echo(f"kitt: warning: {warning}", err=True)


_commands_by_plugin: dict[str, list[str]] = {}


def _add_plugin_commands() -> None:
    for impl in plugins.pm.hook.register_commands.get_hookimpls():
        before = set(cli.commands)
        try:
            impl.function(cli=cli)
        except Exception as exc:  # one plugin's broken command must not break kitt
            click.echo(f"kitt: warning: plugin {impl.plugin_name!r} failed to add commands: "
                       f"{type(exc).__name__}: {exc}", err=True)
            continue
        _commands_by_plugin[impl.plugin_name] = sorted(set(cli.commands) - before)


def get_cli() -> click.Group:
    """The `kitt` group with every plugin's commands added (once)."""
    plugins.load_plugins()
    if not _commands_by_plugin:
        _add_plugin_commands()
    return cli


def main() -> None:
    get_cli()
    try:
        cli.main(prog_name="kitt")
    except KittError as error:  # raised outside a command (e.g. while parsing)
        click.echo(f"Error: {error}", err=True)
        sys.exit(error.exit_code)

