"""Installing an agent from the server: the wheels it serves (`--agent-dist`, filled by
`kitt web dist build` from a KITT checkout) with their SHA-256, and the install script.

    GET /api/v1/agent/dist          the wheels: name, SHA-256, size
    GET /api/v1/agent/dist/{name}   one of them
    GET /api/v1/agent/install.sh    the script; it holds no secret

The one-liner pins the server's key for curl as the agent pins it afterwards
(`--pinnedpubkey`: curl aborts unless the server presents that key; `--insecure` only
lifts the check of the CA chain, which a pin replaces):

    curl -fsSL --insecure --pinnedpubkey sha256//... https://SERVER:8080/api/v1/agent/install.sh \\
        | KITT_ENROLL_TOKEN=kenr_... bash
"""

from __future__ import annotations

import hashlib
import re
import shlex
from pathlib import Path

from aiohttp import web

from kitt_web import keys
from kitt_web.api.params import json_response
from kitt_web.auth import access
from kitt_web.errors import not_found

routes = web.RouteTableDef()
_WHEEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*\.whl")
_HOST = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")


def wheels(folder: Path | None) -> list[dict]:
    """The wheels in the dist folder, each with its SHA-256 (read per request: a folder
    rebuilt while the server runs is served as it is now)."""
    if folder is None or not folder.is_dir():
        return []
    return [{"name": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
             "bytes": path.stat().st_size}
            for path in sorted(folder.iterdir()) if _WHEEL.fullmatch(path.name)]


def agent_version(folder: Path | None) -> str | None:
    """The kitt-agent version the dist folder holds (what `kitt-agent update` installs)."""
    if folder is None or not folder.is_dir():
        return None
    for path in sorted(folder.glob("kitt_agent-*.whl")):
        return path.name.split("-")[1]
    return None


def server_url(request: web.Request) -> str:
    """This server as the client reached it; a Host header that is not a plain host and
    port is refused (it would go into a shell script)."""
    host = request.host
    if not _HOST.fullmatch(host):
        raise not_found("usable Host header", "reach the server by its name or address")
    return f"{request.scheme}://{host}"


def one_liner(request: web.Request, secret: str | None, pin: str | None) -> str | None:
    """The install command for this server, or None when it serves no wheels."""
    if not wheels(request.app[keys.CONFIG].agent_dist):
        return None
    url = f"{server_url(request)}/api/v1/agent/install.sh"
    fetch = ["curl", "-fsSL", *(["--insecure", "--pinnedpubkey", pin] if pin else []), url]
    token = f"KITT_ENROLL_TOKEN={shlex.quote(secret)} " if secret else ""
    return f"{shlex.join(fetch)} | {token}bash"


@routes.get("/api/v1/agent/dist")
@access("open")
async def dist_index(request: web.Request) -> web.Response:
    folder = request.app[keys.CONFIG].agent_dist
    found = wheels(folder)
    if not found:
        raise not_found("agent wheels on this server",
                        f"build them: kitt web dist build --out {folder}")
    return json_response({"files": found})


@routes.get("/api/v1/agent/dist/{name}")
@access("open")
async def dist_file(request: web.Request) -> web.FileResponse:
    name = request.match_info["name"]
    folder = request.app[keys.CONFIG].agent_dist
    if not _WHEEL.fullmatch(name) or folder is None or not (folder / name).is_file():
        raise not_found(f"agent wheel {name!r}", "see GET /api/v1/agent/dist")
    return web.FileResponse(folder / name, headers={"Content-Type": "application/octet-stream"})


@routes.get("/api/v1/agent/image")
@access("open")
async def image_index(request: web.Request) -> web.Response:
    """The KITT image's build context agents build from (`kitt-agent build`), with its
    SHA-256; it holds KITT's sources, no secret."""
    from kitt_web import imagecontext

    folder = request.app[keys.CONFIG].agent_dist
    found = imagecontext.find(folder)
    if found is None:
        raise not_found("KITT image build context on this server",
                        f"pack it: kitt web dist build --out {folder}")
    return json_response(found)


@routes.get("/api/v1/agent/image/{name}")
@access("open")
async def image_file(request: web.Request) -> web.FileResponse:
    from kitt_web import imagecontext

    name = request.match_info["name"]
    folder = request.app[keys.CONFIG].agent_dist
    if not imagecontext.NAME.fullmatch(name) or folder is None or \
            not (folder / name).is_file():
        raise not_found(f"build context {name!r}", "see GET /api/v1/agent/image")
    return web.FileResponse(folder / name, headers={"Content-Type": "application/gzip"})


@routes.get("/api/v1/agent/install.sh")
@access("open")
async def install_script(request: web.Request) -> web.Response:
    from kitt_web.api.agents import server_pin

    script = SCRIPT.replace("@SERVER@", shlex.quote(server_url(request))).replace(
        "@PIN@", shlex.quote(server_pin(request.app) or ""))
    return web.Response(text=script, content_type="text/x-shellscript")


SCRIPT = r"""#!/usr/bin/env bash
# Installs kitt-agent from a KITT server into $KITT_AGENT_HOME/agent-venv (default
# ~/.kitt/agent-venv) and enrolls it. This script holds no secret: the enrollment token
# comes from KITT_ENROLL_TOKEN in the environment (without one, a server with open
# enrollment lists the agent as pending until an admin approves it). Arguments after
# `bash -s --` go to `kitt-agent init` (e.g. --name gpu-01 --models /data/models).
set -euo pipefail
SERVER=@SERVER@
PIN=@PIN@
AGENT_HOME="${KITT_AGENT_HOME:-$HOME/.kitt}"
VENV="$AGENT_HOME/agent-venv"
PYTHON="${PYTHON:-python3}"

say() { echo "kitt-agent install: $*" >&2; }
fetch() {  # the server's key is pinned: curl aborts before sending anything otherwise
  if [ -n "$PIN" ]; then curl -fsSL --insecure --pinnedpubkey "$PIN" "$@"
  else curl -fsSL "$@"; fi
}

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  say "needs Python 3.10 or newer as $PYTHON (set PYTHON=/path/to/python3)"; exit 1
fi
command -v sha256sum >/dev/null || { say "needs sha256sum (coreutils)"; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

say "fetching the wheel list from $SERVER"
fetch "$SERVER/api/v1/agent/dist" -o "$work/index.json"
"$PYTHON" - "$work/index.json" > "$work/sums" <<'PY'
import json, re, sys
for entry in json.load(open(sys.argv[1]))["files"]:
    if not re.fullmatch(r"[0-9a-f]{64}", entry["sha256"]) or not re.fullmatch(
            r"[A-Za-z0-9][A-Za-z0-9._+-]*\.whl", entry["name"]):
        sys.exit("the server's wheel list is malformed")
    print(entry["sha256"] + "  " + entry["name"])
PY
while read -r sum name; do
  fetch "$SERVER/api/v1/agent/dist/$name" -o "$work/$name"
done < "$work/sums"
if ! (cd "$work" && sha256sum --check --quiet sums); then
  say "a wheel does not match its SHA-256: nothing installed"; exit 1
fi

say "installing into $VENV"
mkdir -p "$AGENT_HOME"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$work"/*.whl

if [ -f "$AGENT_HOME/agent.yaml" ]; then
  say "already enrolled ($AGENT_HOME/agent.yaml): kept; kitt-agent init --force enrolls again"
else
  init=("$VENV/bin/kitt-agent" init --server "$SERVER")
  if [ -n "$PIN" ]; then init+=(--pin "$PIN"); fi
  KITT_AGENT_HOME="$AGENT_HOME" "${init[@]}" "$@"
fi
say "done. Start it: KITT_AGENT_HOME=$AGENT_HOME $VENV/bin/kitt-agent start"
"""
