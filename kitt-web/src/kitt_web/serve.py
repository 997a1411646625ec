"""Starting `kitt web`: check the store, the tokens and TLS before listening, say how to
reach the server, then serve until SIGTERM or SIGINT and shut down gracefully (requests
in flight finish, then the store threads close)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Sequence

import click

import kitt
from kitt_web.config import WebConfig
from kitt_web.tls import TlsFiles

SHUTDOWN_GRACE_S = 30.0


def prepare_state(store_url: str, env_token: str | None) -> str | None:
    """Migrate the web's tables, keep KITT_AUTH_TOKEN's row in step, and on a first start
    with no admin create one: its secret (returned) is printed once."""
    from kitt_web.state import open_state, sessions, tokens

    with kitt.open_store(store_url) as store:
        db = open_state(store)
        tokens.sync_env_token(db, env_token)
        sessions.purge(db)
        if env_token or tokens.has_admin(db):
            return None
        _, secret = tokens.create(db, "admin", "admin", created_by="first start")
        return secret


def tls_files(tls_cert: str | None, tls_key: str | None, sans: Sequence[str],
              insecure: bool) -> TlsFiles | None:
    from kitt_web.tls import ensure_local_tls

    if insecure:
        if tls_cert or tls_key or sans:
            raise kitt.BadInput("--insecure serves plain HTTP; it takes no TLS options",
                                hint="drop --insecure, or the --tls-* options")
        return None
    if bool(tls_cert) != bool(tls_key):
        raise kitt.BadInput("--tls-cert and --tls-key go together",
                            hint="give both, or neither for KITT's own certificate")
    if tls_cert:
        if sans:
            raise kitt.BadInput("--tls-san names KITT's own certificate; yours has its SANs",
                                hint="drop --tls-san when giving --tls-cert")
        from pathlib import Path

        return TlsFiles(Path(tls_cert), Path(tls_key))
    return ensure_local_tls(sans)


def serve(*, host: str, port: int, store_url: str | None, tls_cert: str | None,
          tls_key: str | None, tls_sans: Sequence[str], insecure: bool,
          public_read: bool, open_enrollment: bool = False, agent_heartbeat_s: float = 15.0,
          agent_lost_after_s: float = 180.0, cancel_grace_s: float = 60.0,
          agent_dist: str | None = None, influx_url: str | None = None) -> None:
    from kitt_web.tls import fingerprint, server_context

    url, shown_url = _resolve(store_url)
    if influx_url:  # a wrong URL stops the start, not the first run that lands
        influx = kitt.Influx.parse(influx_url)
        influx.ping()
    files = tls_files(tls_cert, tls_key, tls_sans, insecure)
    context = server_context(files) if files else None
    env_token = os.environ.get("KITT_AUTH_TOKEN") or None
    first_admin = prepare_state(url, env_token)
    config = WebConfig(store_url=url, host=host, port=port, tls=files,
                       public_read=public_read, env_token=env_token,
                       open_enrollment=open_enrollment, agent_heartbeat_s=agent_heartbeat_s,
                       agent_lost_after_s=agent_lost_after_s,
                       cancel_grace_s=cancel_grace_s,
                       agent_dist=_agent_dist(agent_dist), influx_url=influx_url)

    def announce() -> None:
        shown = f"[{host}]" if ":" in host else host
        say(f"kitt web: serving {config.scheme}://{shown}:{port}/ (store {shown_url})")
        if files is None:
            say("kitt web: WARNING: plain HTTP (--insecure): tokens, session cookies and "
                "results cross the network unencrypted")
        elif files.ca is not None:
            say(f"kitt web: TLS by KITT's local CA {files.ca}")
            say(f"kitt web: CA SHA-256 fingerprint {fingerprint(files.ca)}")
        else:
            say(f"kitt web: TLS certificate {files.cert} (SHA-256 {fingerprint(files.cert)})")
        if files is not None:
            from kitt_web.tls import spki_sha256

            say(f"kitt web: agents pin sha256//{spki_sha256(files.cert)}")
        if open_enrollment:
            say("kitt web: --open-enrollment: agents may register without a token; they "
                "wait, pending, for an admin's approval")
        if influx_url:
            say(f"kitt web: runs that land here are also written to InfluxDB "
                f"{influx.base_url} (database {influx.database})")
        if public_read:
            say("kitt web: --public-read: runs and the catalogue are readable without a token")
        if first_admin:
            say("kitt web: no admin token existed; created one. It is shown once:")
            say(f"  {first_admin}")
            say("kitt web: log in with it at /login, or send it as `Authorization: Bearer`; "
                "create others with `kitt web token create`")
        say("kitt web: ready (SIGTERM or Ctrl-C stops it, letting requests finish)")

    asyncio.run(_serve(config, context, announce))


def _agent_dist(given: str | None):
    from pathlib import Path

    return Path(given).expanduser().resolve() if given else kitt.kitt_home() / "web" / \
        "agent-dist"


def _resolve(store_url: str | None) -> tuple[str, str]:
    """The full store URL (password included: each store thread opens it) and the same
    with its password masked, checked now so that a bad one exits 2 before anything
    listens."""
    url = kitt.resolve_store_url(store_url)
    with kitt.open_store(url) as store:
        return url, store.url


def say(line: str) -> None:
    click.echo(line, err=True)
    sys.stderr.flush()


async def _serve(config: WebConfig, context, announce) -> None:
    from aiohttp import web

    from kitt_web.app import AccessLogger, access_logger, make_app, stderr_logger

    stderr_logger("kitt.web")
    app = make_app(config)
    runner = web.AppRunner(app, access_log_class=AccessLogger, access_log=access_logger(),
                           shutdown_timeout=SHUTDOWN_GRACE_S, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, ssl_context=context,
                       shutdown_timeout=SHUTDOWN_GRACE_S)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise kitt.BadInput(f"cannot listen on {config.host}:{config.port}: "
                            f"{exc.strerror or exc}",
                            hint="pick another --port, or stop what holds it") from None
    announce()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    received: list[int] = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, lambda s=signum: (received.append(s), stop.set()))
    await stop.wait()
    say(f"kitt web: {signal.Signals(received[0]).name}: finishing requests in flight, "
        "then stopping")
    await runner.cleanup()
    say("kitt web: stopped")
