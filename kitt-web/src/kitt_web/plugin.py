"""kitt-web's plugin: `kitt web`. Only click loads here; aiohttp, jinja2 and cryptography
load when a `kitt web` command runs."""

from __future__ import annotations

import kitt


@kitt.hookimpl
def register_commands(cli):
    from kitt_web.cli import web

    cli.add_command(web)
