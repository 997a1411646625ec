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
@click.option("--open-enrollment", is_flag=True,
              help="Let agents register without an enrollment token; each waits, pending, "
                   "until an admin approves it.")
@click.option("--agent-heartbeat", type=click.FloatRange(1, 3600), default=15.0,
              show_default=True, metavar="SECONDS", help="Agents' heartbeat interval.")
@click.option("--agent-lost-after", type=click.FloatRange(2, 86400), default=180.0,
              show_default=True, metavar="SECONDS",
              help="An agent silent this long is lost, with the job it held.")
@click.option("--cancel-grace", type=click.FloatRange(1, 3600), default=60.0,
              show_default=True, metavar="SECONDS",
              help="A cancel a silent agent has not confirmed in this long is finalised "
                   "by the server.")
@click.option("--agent-dist", default=None, metavar="DIR",
              help="Agent wheels the installer serves (default KITT_HOME/web/agent-dist; "
                   "kitt web dist build fills it).")
@click.option("--influx", "influx_url", default=None, metavar="URL",
              help="Also write every run that lands here to InfluxDB: "
                   "http(s)://HOST:PORT/DATABASE (docs/monitoring.md).")
@click.pass_context
def web(ctx, host, port, store_url, tls_cert, tls_key, tls_san, insecure, public_read,
        open_enrollment, agent_heartbeat, agent_lost_after, cancel_grace, agent_dist,
        influx_url):
    """The dashboard and REST API over KARR (HTTPS by default; docs/web.md)."""
    ctx.ensure_object(dict)
    ctx.obj["store_url"] = store_url
    if ctx.invoked_subcommand is not None:
        return
    from kitt_web.serve import serve

    if agent_lost_after <= agent_heartbeat:
        raise click.BadParameter("must be longer than --agent-heartbeat",
                                 param_hint="--agent-lost-after")
    serve(host=host, port=port, store_url=store_url, tls_cert=tls_cert, tls_key=tls_key,
          tls_sans=tls_san, insecure=insecure, public_read=public_read,
          open_enrollment=open_enrollment, agent_heartbeat_s=agent_heartbeat,
          agent_lost_after_s=agent_lost_after, cancel_grace_s=cancel_grace,
          agent_dist=agent_dist, influx_url=influx_url)


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


@web.command(name="enroll")
@click.argument("name", default="agents")
@click.option("--uses", type=click.IntRange(1, 1000), default=1, show_default=True,
              help="How many agents the token may enroll.")
@click.option("--expires", default="24h", show_default=True, metavar="DURATION",
              help="e.g. 1h, 24h, 7d.")
@click.option("--server", metavar="URL", default=None,
              help="The URL agents reach this server at, for the printed command "
                   "(default: https://HOSTNAME:8080).")
@_store_option
@click.pass_context
def enroll(ctx, name, uses, expires, server, store_url):
    """An enrollment token for agents (shown once), and the command to run on each GPU
    host with it."""
    import shlex
    import socket

    from kitt_web.state import agents, tokens
    from kitt_web.tls import spki_sha256, tls_dir

    seconds = tokens.parse_duration(expires)
    store, db = _state(ctx, store_url)
    with store:
        enrollment, secret = agents.create_enrollment(
            db, name, uses=uses, expires_in=seconds, created_by=f"cli:{_user()}")
    server = (server or f"https://{socket.getfqdn()}:8080").rstrip("/")
    parts = ["kitt-agent", "init", "--server", server]
    cert = tls_dir() / "server.pem"
    if server.startswith("https://") and cert.exists():
        parts += ["--pin", f"sha256//{spki_sha256(cert)}"]
    click.echo(f"enrollment token {enrollment.id} ({uses} use(s), expires "
               f"{_when(enrollment.expires_at)}). On each GPU host, run:")
    click.echo(f"  KITT_ENROLL_TOKEN={shlex.quote(secret)} {shlex.join(parts)}")
    click.echo("It is shown once and stored only as a hash.", err=True)


@web.group(name="dist")
def dist_group():
    """The agent wheels this server serves to `install.sh`."""


AGENT_DISTRIBUTIONS = ("kitt-core", "kitt-agent", "kitt-bench-perf", "kitt-engine-llamacpp",
                       "kitt-engine-vllm", "kitt-engine-tgi", "kitt-engine-ollama")


@dist_group.command(name="build")
@click.option("--from", "tree", default=None, metavar="DIR",
              help="A KITT checkout (default: the one this KITT was installed from).")
@click.option("--out", default=None, metavar="DIR",
              help="Where the wheels go (default KITT_HOME/web/agent-dist).")
@click.option("--quality", is_flag=True,
              help="Add kitt-bench-quality (it brings lm-eval: a large install on agents).")
@click.option("--wheelhouse", default=None, metavar="DIR",
              help="Put this wheelhouse (`nox -s wheelhouse`) in the image's build context, "
                   "so that agents build the KITT image offline.")
def dist_build(tree, out, quality, wheelhouse):
    """Build the wheels agents install (kitt-core, kitt-agent, the engines, the perf
    benchmarks) from a KITT checkout, and pack the KITT image's build context
    (`kitt-agent build`): the server serves both with their SHA-256."""
    import subprocess
    import sys
    from pathlib import Path

    import kitt

    root = Path(tree).resolve() if tree else Path(kitt.__file__).resolve().parents[3]
    names = [*AGENT_DISTRIBUTIONS, *(("kitt-bench-quality",) if quality else ())]
    missing = [name for name in names if not (root / name / "pyproject.toml").is_file()]
    if missing:
        raise kitt.BadInput(f"{root} is not a KITT checkout (no {missing[0]}/pyproject.toml)",
                            hint="give --from DIR, a clone of the KITT repository")
    target = Path(out).expanduser() if out else kitt.kitt_home() / "web" / "agent-dist"
    target.mkdir(parents=True, exist_ok=True)
    for old in target.glob("*.whl"):
        old.unlink()
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                           "--wheel-dir", str(target), *(str(root / n) for n in names)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise kitt.BadInput(f"building the wheels failed: {done.stderr.strip()[-1500:]}",
                            hint="pip wheel needs hatchling (from PyPI, or its cache)")
    from kitt_web import imagecontext

    if wheelhouse and not any(Path(wheelhouse).glob("*.whl")):
        raise kitt.BadInput(f"--wheelhouse {wheelhouse} holds no wheels",
                            hint="make one with `nox -s wheelhouse`")
    context = imagecontext.pack(root, target, Path(wheelhouse) if wheelhouse else None)
    for wheel in sorted(target.glob("*.whl")):
        click.echo(f"{wheel.name}")
    click.echo(context.name)
    click.echo(f"{len(list(target.glob('*.whl')))} wheels in {target}; `kitt web "
               f"--agent-dist {target}` serves them", err=True)
