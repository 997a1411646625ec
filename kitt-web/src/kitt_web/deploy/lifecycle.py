"""start, stop, status and remove, for stacks and monitoring deployments alike.

`start` brings the services up and waits until each is healthy; in a stack with kitt-web
it then makes, once, what needs the running server: the viewer token Prometheus scrapes
with, and the enrollment token of the stack's agent, which starts last. A start that
fails takes down what it brought up (a deployment it found running stays up). `stop`
removes containers and networks and keeps the data volumes; `remove` deletes the volumes
too, unless told to keep them.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import kitt
from kitt_web.deploy import compose
from kitt_web.deploy.folder import REGISTRY_FILE, Deployment, read_env, render_env
from kitt_web.deploy.generate import SCRAPE_TOKEN
from kitt_web.deploy.services import LOOPBACK_ONLY

READY_TIMEOUT_S = 300.0


def _compose(deployment: Deployment) -> compose.Compose:
    return compose.Compose(tuple(compose.compose_tool()), deployment.project,
                           str(deployment.folder))


def start(deployment: Deployment, say: Callable[[str], None]) -> list[compose.ServiceState]:
    tool = _compose(deployment)
    client = compose.daemon()
    running = [s for s in compose.states(client, deployment.project) if s.state == "running"]
    if not running:
        ports = deployment.settings.get("ports", {})
        compose.check_ports_free({service: ("127.0.0.1" if service in LOOPBACK_ONLY
                                            else "0.0.0.0", int(port))
                                  for service, port in ports.items()})
    first = [s for s in deployment.services if s != "agent"]
    try:
        if first:
            say(f"{deployment.kind} {deployment.name}: starting {', '.join(first)}")
            tool.run("up", "-d", "--remove-orphans", *first)
            compose.wait_ready(client, deployment.project, first, timeout=READY_TIMEOUT_S,
                               say=say)
        if "kitt-web" in deployment.services:
            _server_side_setup(deployment, say)
        if "agent" in deployment.services:
            say(f"{deployment.kind} {deployment.name}: starting agent")
            tool.run("up", "-d", "agent")
            compose.wait_ready(client, deployment.project, ["agent"],
                               timeout=READY_TIMEOUT_S, say=say)
    except BaseException:
        logs = tool.run("logs", "--no-color", "--tail", "15", check=False)
        say(f"{deployment.kind} {deployment.name}: start failed; the services' last lines:")
        for line in (logs.stdout or "").splitlines()[-60:]:
            say(f"  {line}")
        if not running:  # what this start brought up goes; a stack found running stays
            say(f"{deployment.kind} {deployment.name}: taking it down again")
            tool.run("down", "--remove-orphans", check=False)
        raise
    return compose.states(client, deployment.project)


def stop(deployment: Deployment) -> dict[str, list[str]]:
    """Containers and networks go; the data volumes stay (what is left is returned)."""
    client = compose.daemon()
    _compose(deployment).run("down", "--remove-orphans")
    return compose.leftovers(client, deployment.project)


def remove(deployment: Deployment, *, keep_volumes: bool, delete_files: bool
           ) -> dict[str, list[str]]:
    client = compose.daemon()
    _compose(deployment).run("down", "--remove-orphans", *(() if keep_volumes else ("-v",)))
    left = compose.leftovers(client, deployment.project)
    if delete_files:
        shutil.rmtree(deployment.folder)
    else:  # the files stay for a person to read; the registry no longer lists them
        os.replace(deployment.folder / REGISTRY_FILE,
                   deployment.folder / f"{REGISTRY_FILE}.removed")
    return left


def status(deployment: Deployment) -> list[dict[str, Any]]:
    client = compose.daemon()
    found = {s.service: s for s in compose.states(client, deployment.project)}
    ports = deployment.settings.get("ports", {})
    rows = []
    for service in deployment.services:
        state = found.get(service)
        rows.append({"service": service, "state": state.state if state else "absent",
                     "health": state.health if state else None,
                     "container": state.container if state else None,
                     "port": ports.get(service)})
    return rows


# -- what needs kitt-web running ------------------------------------------------------------

def _server_side_setup(deployment: Deployment, say: Callable[[str], None]) -> None:
    env_path = deployment.folder / ".env"
    env = read_env(env_path)
    api = _StackApi(deployment, env["KITT_AUTH_TOKEN"])
    token_file = deployment.folder / SCRAPE_TOKEN
    if "prometheus" in deployment.services and not token_file.read_text().strip():
        created = api.post("/api/v1/tokens", {"name": f"prometheus-{deployment.name}",
                                              "role": "viewer"})
        # Prometheus (user nobody in its image) reads it; the stack folder is 0700.
        token_file.write_text(created["secret"])
        say(f"{deployment.kind} {deployment.name}: made viewer token "
            f"{created['token']['id']} for Prometheus ({SCRAPE_TOKEN})")
    if "agent" in deployment.services and not env.get("KITT_ENROLL_TOKEN"):
        made = api.post("/api/v1/enrollments", {"name": env["KITT_AGENT_NAME"], "uses": 1,
                                                "expires_in": "1h"})
        env["KITT_ENROLL_TOKEN"] = made["secret"]
        comments = {"KITT_ENROLL_TOKEN": "the agent's one-use enrollment token"}
        tmp = env_path.with_name(".env.new")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(render_env(env, comments))
        os.replace(tmp, env_path)
        say(f"{deployment.kind} {deployment.name}: made enrollment "
            f"{made['enrollment']['id']} for the agent")


class _StackApi:
    """kitt-web of the stack, on its published port, trusted through the stack's CA."""

    def __init__(self, deployment: Deployment, admin_token: str) -> None:
        port = deployment.settings["ports"]["kitt-web"]
        self.base = f"https://127.0.0.1:{port}"
        self.context = ssl.create_default_context(
            cafile=str(deployment.folder / "tls" / "ca.pem"))
        self.token = admin_token

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            self.base + path, data=json.dumps(body).encode(), method="POST",
            headers={"Authorization": f"Bearer {self.token}",
                     "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, context=self.context, timeout=30) as answer:
                return json.load(answer)
        except urllib.error.HTTPError as exc:
            raise kitt.KittError(f"kitt-web refused {path}: HTTP {exc.code} "
                                 f"{exc.read().decode(errors='replace')[:300]}",
                                 hint="check KITT_AUTH_TOKEN in the stack's .env") from None
        except (urllib.error.URLError, OSError) as exc:
            raise kitt.KittError(f"cannot reach the stack's kitt-web at {self.base}: "
                                 f"{getattr(exc, 'reason', exc)}",
                                 hint="see `kitt stack status` and kitt-web's log") from None


def scrape_targets(url: str) -> list[dict[str, Any]]:
    """Prometheus's active targets (its HTTP API): job, instance, health, last error."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise kitt.BadInput(f"{url!r} is not a Prometheus URL",
                            hint="give http://HOST:PORT, e.g. http://127.0.0.1:9090")
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/api/v1/targets?state=active",
                                    timeout=15) as answer:
            doc = json.load(answer)
    except urllib.error.HTTPError as exc:
        raise kitt.KittError(f"Prometheus at {url} answered HTTP {exc.code}",
                             hint="is this Prometheus's address?") from None
    except (urllib.error.URLError, OSError) as exc:
        raise kitt.BadInput(f"cannot reach Prometheus at {url}: {getattr(exc, 'reason', exc)}",
                            hint="start it (kitt monitoring start NAME), or give "
                                 "--prometheus URL") from None
    except ValueError:
        raise kitt.BadInput(f"{url} did not answer as Prometheus's API does",
                            hint="give Prometheus's own address") from None
    found = doc.get("data", {}).get("activeTargets", []) if isinstance(doc, dict) else []
    return [{"job": t.get("labels", {}).get("job"),
             "instance": t.get("labels", {}).get("instance"), "health": t.get("health"),
             "last_scrape": t.get("lastScrape"), "error": t.get("lastError") or None}
            for t in found]
