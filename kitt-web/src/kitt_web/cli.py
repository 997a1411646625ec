"""`kitt web`: serve the dashboard and API; `kitt web token create|list|revoke`.

Only click is imported at module level; the server's libraries load when it starts.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone

import click

TOKEN_HINT = ("Keep it now: it is shown once and stored only as a hash. "
              "Use it as `Authorization: Bearer <token>`, or log in with it at /login.")


def _store_option(fn):
    return click.option("--store", "store_url", default=None, metavar="URL",
                        help="KARR store URL (default: KITT_STORE, then KITT_HOME's "
                             "SQLite file).")(fn)


@click.group(name="web", invoke_without_command=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@_store_option
@click.option("--tls-cert", type=click.Path(dir_okay=False), default=None,
              help="PEM certificate (chain) to serve; with --tls-key.")
@click.option("--tls-key", type=click.Path(dir_okay=False), default=None,
              help="PEM private key of --tls-cert.")
@click.option("--tls-san", multiple=True, metavar="NAME",
              help="Extra DNS name or IP address for KITT's own certificate (repeatable).")
@click.option("--insecure", is_flag=True,
              help="Serve plain HTTP: tokens and sessions cross the network unencrypted.")
@click.option("--public-read", is_flag=True,
              help="Let anyone read runs and the catalogue without a token (never tokens, "
                   "settings or agents).")
@click.pass_context
def web(ctx, host, port, store_url, tls_cert, tls_key, tls_san, insecure, public_read):
    """The dashboard and REST API over KARR (HTTPS by default; docs/web.md)."""
    ctx.ensure_object(dict)
    ctx.obj["store_url"] = store_url
    if ctx.invoked_subcommand is not None:
        return
    from kitt_web.serve import serve

    serve(host=host, port=port, store_url=store_url, tls_cert=tls_cert, tls_key=tls_key,
          tls_sans=tls_san, insecure=insecure, public_read=public_read)


def _state(ctx, store_url):
    import kitt
    from kitt_web.state import open_state

    store = kitt.open_store(store_url or ctx.obj.get("store_url"))
    return store, open_state(store)


def _when(epoch: float | None) -> str:
    if epoch is None:
        return ""
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds")


@web.group(name="token")
def token_group():
    """API and login tokens: create (shown once), list, revoke."""


@token_group.command(name="create")
@click.argument("name")
@click.option("--role", type=click.Choice(["viewer", "operator", "admin"]), required=True,
              help="viewer reads; operator also launches; admin also manages.")
@click.option("--expires", default=None, metavar="DURATION",
              help="e.g. 30d, 12h, 2w (default: never).")
@_store_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def token_create(ctx, name, role, expires, store_url, as_json):
    """Create a token NAME with a role; its secret is printed once."""
    from kitt_web.state import tokens

    seconds = tokens.parse_duration(expires) if expires else None
    store, db = _state(ctx, store_url)
    with store:
        token, secret = tokens.create(db, name, role, expires_in=seconds,
                                      created_by=f"cli:{_user()}")
    if as_json:
        click.echo(json.dumps({"id": token.id, "name": token.name, "role": token.role,
                               "expires_at": _when(token.expires_at) or None,
                               "secret": secret}))
        return
    click.echo(f"token {token.id} ({token.name}, {token.role}"
               f"{', expires ' + _when(token.expires_at) if token.expires_at else ''}):")
    click.echo(f"  {secret}")
    click.echo(TOKEN_HINT, err=True)


def _user() -> str:
    try:
        import getpass

        return getpass.getuser()
    except Exception:
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


@token_group.command(name="list")
@_store_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def token_list(ctx, store_url, as_json):
    """Every token: id, name, role, state, created, expires, last used (never secrets)."""
    import attrs

    from kitt_web.state import tokens

    store, db = _state(ctx, store_url)
    with store:
        found = tokens.list_all(db)
    if as_json:
        click.echo(json.dumps([{**attrs.asdict(t), "state": t.state()} for t in found]))
        return
    rows = [(t.id, t.name, t.role, t.state(), _when(t.created_at), _when(t.expires_at),
             _when(t.last_used_at)) for t in found]
    head = ("id", "name", "role", "state", "created", "expires", "last used")
    widths = [max(len(str(v)) for v in column) for column in zip(head, *rows, strict=True)]
    for row in (head, *rows):
        click.echo("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


@token_group.command(name="revoke")
@click.argument("token")
@_store_option
@click.pass_context
def token_revoke(ctx, token, store_url):
    """Revoke TOKEN (its id, or its name when unique); its sessions end at once."""
    from kitt_web.state import tokens

    store, db = _state(ctx, store_url)
    with store:
        found = tokens.resolve(db, token)
        tokens.revoke(db, found.id)
    click.echo(f"revoked {found.id} ({found.name})")
    if found.id == tokens.ENV_TOKEN_ID:
        click.echo("note: KITT_AUTH_TOKEN is re-enabled on the next `kitt web` start while "
                   "it is still set; unset it there.", err=True)
