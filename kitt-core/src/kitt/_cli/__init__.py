"""The `kitt` command: a thin click host over the core and whatever plugins are installed.

This package is the only part of kitt-core that imports click, and nothing imports from
it. Each module is a built-in plugin adding its commands (`kitt.plugins.DEFAULT_PLUGINS`),
exactly as a third-party plugin does.

Conventions for every command: `--json` prints machine output on stdout, otherwise
tables; errors go to stderr; exit codes are 0 ok, 1 failed checks, 2 bad input or usage,
3 engine failure (docs/cli.md).
"""

from __future__ import annotations

import sys

import click

from kitt import plugins
from kitt._util.version import __version__
from kitt.errors import KittError


class KittGroup(click.Group):
    """Turns `KittError`s into a message on stderr and their exit code, and a stop signal
    (`Interrupted`: SIGINT, SIGTERM) into what was stopped and kept, and 128 + N."""

    def invoke(self, ctx: click.Context):
        from kitt._util.signals import Interrupted

        try:
            return super().invoke(ctx)
        except KittError as error:
            click.echo(f"Error: {error}", err=True)
            ctx.exit(error.exit_code)
        except Interrupted as stop:
            click.echo(f"kitt: {stop}", err=True)
            ctx.exit(stop.exit_code)


@click.group(cls=KittGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="kitt")
def cli():
    """KITT: launch inference engines, measure quality and performance, keep the results."""


commands_by_plugin: dict[str, list[str]] = {}
"""The commands each plugin added (`kitt plugins list` shows them)."""


def _add_plugin_commands() -> None:
    for impl in plugins.pm.hook.register_commands.get_hookimpls():
        before = set(cli.commands)
        try:
            impl.function(cli=cli)
        except Exception as exc:  # one plugin's broken command must not break kitt
            click.echo(f"kitt: warning: plugin {impl.plugin_name!r} failed to add commands: "
                       f"{type(exc).__name__}: {exc}", err=True)
            continue
        commands_by_plugin[impl.plugin_name] = sorted(set(cli.commands) - before)


def get_cli() -> click.Group:
    """The `kitt` group with every plugin's commands added (once)."""
    plugins.load_plugins()
    if not commands_by_plugin:
        _add_plugin_commands()
    return cli


def main() -> None:
    get_cli()
    try:
        cli.main(prog_name="kitt")
    except KittError as error:  # raised outside a command (e.g. while parsing)
        click.echo(f"Error: {error}", err=True)
        sys.exit(error.exit_code)
