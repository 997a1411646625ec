"""`kitt-agent service install|uninstall|status`: the agent as a systemd service (a user
unit by default; `--system` for one in /etc/systemd/system).

The unit restarts the agent on failure, after Docker and the network, but not when the
server refused it (exit 3: enroll again instead of looping). `KillMode=process`: on stop
systemd signals the agent alone, which cancels its job, reports it and exits; after a
crash, the job's processes live on in the unit and the restarted agent re-attaches to
them (docs/agent-protocol.md).
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import sys
from pathlib import Path

import kitt

UNIT = "kitt-agent.service"


def unit_path(system: bool) -> Path:
    if system:
        return Path("/etc/systemd/system") / UNIT
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return config / "systemd" / "user" / UNIT


def quote(value: str) -> str:
    """One argument as systemd reads it: double-quoted, with `\\`, `"`, `$` and `%`
    escaped (systemd.syntax(7), systemd.service(5) on command lines)."""
    if any(ord(c) < 32 for c in value):
        raise kitt.BadInput(f"{value!r} holds a control character",
                            hint="use a path without newlines or tabs")
    escaped = (value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "$$")
               .replace("%", "%%"))
    return f'"{escaped}"'


def render(home: Path, server: str, *, system: bool, python: str | None = None) -> str:
    python = python or sys.executable
    lines = [
        "# Written by `kitt-agent service install`; `kitt-agent service uninstall` removes it.",
        "[Unit]",
        f"Description=KITT agent for {server.replace('%', '%%')}",
        "Documentation=https://github.com/Kirizan/kitt/blob/main/docs/agents.md",
        "After=network-online.target docker.service",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=exec",
        f"Environment={quote('KITT_AGENT_HOME=' + str(home))}",
        f"ExecStart={quote(python)} -m kitt_agent.cli start",
        "Restart=on-failure",
        "RestartSec=10",
        "# 3: the server refused this agent (revoked, removed): enroll again, do not loop.",
        "RestartPreventExitStatus=3",
        "# The agent stops its own job (cancel, report); after a crash the job lives on",
        "# and the restarted agent re-attaches to it.",
        "KillMode=process",
        "TimeoutStopSec=180",
    ]
    if system:
        lines.append(f"User={getpass.getuser()}")
    lines += ["", "[Install]", f"WantedBy={'multi-user.target' if system else 'default.target'}",
              ""]
    return "\n".join(lines)


def systemctl(system: bool, *args: str) -> subprocess.CompletedProcess:
    binary = shutil.which("systemctl")
    if binary is None:
        raise kitt.BadInput("systemctl is not on this host (no systemd)",
                            hint="run `kitt-agent start` under the service manager you use, "
                                 "or --no-start to only write the unit")
    scope = [] if system else ["--user"]
    return subprocess.run([binary, *scope, *args], capture_output=True, text=True,
                          check=False)


def install(home: Path, server: str, *, system: bool, start: bool) -> Path:
    path = unit_path(system)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{UNIT}.tmp")
    tmp.write_text(render(home, server, system=system), encoding="utf-8")
    os.replace(tmp, path)
    if start:
        for args in (("daemon-reload",), ("enable", "--now", UNIT)):
            done = systemctl(system, *args)
            if done.returncode != 0:
                raise kitt.BadInput(f"systemctl {' '.join(args)} failed: "
                                    f"{done.stderr.strip()[:500]}",
                                    hint=f"the unit is at {path}; see journalctl "
                                         f"{'' if system else '--user '}-u {UNIT}")
    return path


def uninstall(*, system: bool) -> Path | None:
    path = unit_path(system)
    if not path.exists():
        return None
    if shutil.which("systemctl"):
        systemctl(system, "disable", "--now", UNIT)  # best effort: it may not be loaded
    path.unlink()
    if shutil.which("systemctl"):
        systemctl(system, "daemon-reload")
    return path


def status(*, system: bool) -> dict:
    path = unit_path(system)
    found = {"unit": str(path), "installed": path.exists(), "active": None}
    if path.exists() and shutil.which("systemctl"):
        found["active"] = systemctl(system, "is-active", UNIT).stdout.strip() or "unknown"
    return found
