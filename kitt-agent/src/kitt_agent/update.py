"""`kitt-agent update [--restart]`: install the kitt-agent the server offers (the wheels
of `GET /api/v1/agent/dist`, each checked against its SHA-256, fetched over the pinned
connection) into this agent's environment, only while no job runs here; with
`--restart`, restart the agent on the new version (through systemd when its unit is
installed, else by stopping it and starting it in the background)."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

import kitt
from kitt_agent import __version__
from kitt_agent.config import AgentConfig
from kitt_agent.jobs import JobRun


def running_job(home: Path) -> str | None:
    for leftover in JobRun.leftovers(home):
        if leftover.alive():
            return leftover.id
    return None


async def fetch_wheels(config: AgentConfig, into: Path) -> dict[str, str]:
    """Download every wheel the server offers into `into`; name -> version of each
    distribution. Raises BadInput when one does not match its SHA-256."""
    from kitt_agent.client import ServerClient

    async with ServerClient(config.server, pin=config.pin, ca_file=config.ca_file) as client:
        _, index = await client.call("GET", "/api/v1/agent/dist", authorized=False)
        files = (index or {}).get("files") or []
        versions = {}
        for entry in files:
            name = entry["name"]
            if "/" in name or not name.endswith(".whl"):
                raise kitt.BadInput(f"the server offers a bad file name {name!r}")
            data = await client.raw("GET", f"/api/v1/agent/dist/{name}")
            if hashlib.sha256(data).hexdigest() != entry["sha256"]:
                raise kitt.BadInput(f"{name} does not match its SHA-256: nothing installed",
                                    hint="the download was damaged or altered; try again")
            (into / name).write_bytes(data)
            versions[name.split("-")[0].replace("_", "-")] = name.split("-")[1]
    return versions


def update(home: Path, config: AgentConfig) -> tuple[str, str | None]:
    """(the version before, the version installed or None when already current)."""
    busy = running_job(home)
    if busy is not None:
        raise kitt.BadInput(f"job {busy} is running here: updating now could break it",
                            hint="update when the agent is idle (kitt-agent status)")
    with tempfile.TemporaryDirectory() as folder:
        versions = asyncio.run(fetch_wheels(config, Path(folder)))
        offered = versions.get("kitt-agent")
        if offered is None:
            raise kitt.BadInput("the server offers no kitt-agent wheel",
                                hint="on the server: kitt web dist build")
        if offered == __version__:
            return __version__, None
        wheels = sorted(str(p) for p in Path(folder).glob("*.whl"))
        done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",
                               "--disable-pip-version-check", "--upgrade", *wheels],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise kitt.BadInput(f"pip could not install the update: "
                                f"{done.stderr.strip()[-1500:]}",
                                hint="the agent's environment is unchanged where pip failed")
    return __version__, offered
