"""kitt-web's plugin: `kitt web`, `kitt stack` and `kitt monitoring`. Only click loads
here; aiohttp, jinja2 and cryptography load when one of their commands runs."""

from __future__ import annotations

import kitt


@kitt.hookimpl
def register_commands(cli):
    from kitt_web.cli import web
    from kitt_web.deploy.cli import monitoring_group, stack

    cli.add_command(web)
    cli.add_command(stack)
    cli.add_command(monitoring_group)
