"""Sending stored runs to a KITT server (`kitt results submit`): each run's document, with
its SHA-256, to `POST /api/v1/runs`, which stores it once. The token comes from
KITT_SERVER_TOKEN or `server_token:` in KITT_HOME/config.yaml (readable by its owner
only), never from an argument."""

from __future__ import annotations

import hashlib
import json
import os
import ssl
import urllib.error
import urllib.request
from pathlib import Path

from kitt._util.converter import to_json
from kitt._util.files import kitt_home
from kitt.errors import BadInput
from kitt.records import Run


def server_token() -> str:
    token = os.environ.get("KITT_SERVER_TOKEN")
    if token:
        return token
    config = kitt_home() / "config.yaml"
    if config.is_file():
        from ruamel.yaml import YAML, YAMLError

        try:
            data = YAML(typ="safe").load(config.read_text()) or {}
        except (OSError, YAMLError) as exc:
            raise BadInput(f"cannot read {config}: {exc}", hint="fix the YAML") from exc
        token = data.get("server_token") if isinstance(data, dict) else None
        if token:
            if config.stat().st_mode & 0o077:
                raise BadInput(f"{config} holds server_token and others can read it",
                               hint=f"chmod 600 {config}")
            return str(token)
    raise BadInput("no token for the server",
                   hint="set KITT_SERVER_TOKEN to an operator token (kitt web token create "
                        "NAME --role operator), or server_token: in KITT_HOME/config.yaml")


def _context(ca_file: str | None) -> ssl.SSLContext:
    if ca_file:
        if not Path(ca_file).is_file():
            raise BadInput(f"--ca-file {ca_file} does not exist",
                           hint="give the server's CA (KITT_HOME/web/tls/ca.pem on it)")
        return ssl.create_default_context(cafile=ca_file)
    return ssl.create_default_context()


def submit(run: Run, server: str, token: str, ca_file: str | None = None) -> bool:
    """Send one run; True when the server stored it, False when it had it already."""
    body = to_json(run).encode()
    request = urllib.request.Request(
        server.rstrip("/") + "/api/v1/runs", data=body, method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                 "X-Content-SHA256": hashlib.sha256(body).hexdigest()})
    context = _context(ca_file) if server.startswith("https://") else None
    try:
        with urllib.request.urlopen(request, context=context, timeout=120) as response:
            return bool(json.loads(response.read())["stored"])
    except urllib.error.HTTPError as error:
        try:
            problem = json.loads(error.read())["error"]
        except (ValueError, KeyError, TypeError):
            problem = {"message": error.reason, "hint": None}
        raise BadInput(f"{server} refused run {run.id}: {error.code} {problem['message']}",
                       hint=problem.get("hint")) from None
    except urllib.error.URLError as error:
        reason = error.reason
        if isinstance(reason, ssl.SSLCertVerificationError):
            raise BadInput(f"cannot verify {server}: {reason.verify_message}",
                           hint="give --ca-file with the server's CA "
                                "(KITT_HOME/web/tls/ca.pem on the server)") from None
        raise BadInput(f"cannot reach {server}: {reason}",
                       hint="check --server and that kitt web runs there") from None
