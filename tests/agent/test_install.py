"""The one-liner an admin is shown: `curl ... install.sh | KITT_ENROLL_TOKEN=... bash`
against a real `kitt web` with its own CA, the server's key pinned for curl. It installs
kitt-agent from the wheels the server serves (built by `kitt web dist build` from this
tree, each checked against its SHA-256) and enrolls the host; with another key pinned,
nothing is fetched or installed."""

from __future__ import annotations

import json
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from support import ROOT, free_port, run_kitt
from support.web import TOKEN, start_web

pytestmark = [pytest.mark.packaging, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    work = tmp_path_factory.mktemp("install")
    built = run_kitt("web", "dist", "build", "--out", str(work / "dist"), timeout=900,
                     env={"KITT_HOME": str(work / "home")})
    assert built.returncode == 0, built.stderr
    assert {"kitt_core", "kitt_agent", "kitt_engine_llamacpp", "kitt_bench_perf"} <= {
        name.split("-")[0] for name in built.stdout.split()}
    port = free_port()
    web, said = start_web("--port", str(port), "--store", f"sqlite:///{work / 'karr.db'}",
                          "--agent-dist", str(work / "dist"),
                          env={"KITT_HOME": str(work / "home"), "KITT_STORE": "",
                               "KITT_AUTH_TOKEN": ""}, log=work / "web.log")
    yield {"base": f"https://127.0.0.1:{port}", "admin": TOKEN.search(said)[0],
           "pin": re.search(r"agents pin (sha256//\S+)", said)[1], "work": work}
    web.stop()


def enrollment(server) -> dict:
    done = subprocess.run(
        ["curl", "-fsS", "--cacert", str(server["work"] / "home" / "web" / "tls" / "ca.pem"),
         "-H", f"Authorization: Bearer {server['admin']}", "-H",
         "Content-Type: application/json", "-d", '{"name": "install"}',
         f"{server['base'].replace('127.0.0.1', 'localhost')}/api/v1/enrollments"],
        capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def installed(server, tmp_path_factory):
    """The one-liner run as an admin would on a GPU host: (the line, the agent's home,
    what it printed)."""
    made = enrollment(server)
    line = made["install"]
    assert line.startswith("curl -fsSL --insecure --pinnedpubkey sha256//")
    assert line.endswith(f"| KITT_ENROLL_TOKEN={made['secret']} bash")
    work = tmp_path_factory.mktemp("host")
    home = work / "agent home"  # a space in the path, quoted all the way through
    done = subprocess.run(["bash", "-c", f"{line} -s -- --name gpu-07"], capture_output=True,
                          text=True, timeout=900, env={
                              "PATH": "/usr/bin:/bin", "HOME": str(work),
                              "KITT_AGENT_HOME": str(home), "PYTHON": sys.executable})
    assert done.returncode == 0, done.stderr[-3000:]
    return line, home, done.stdout


def agent_cli(home, *args):
    return subprocess.run([str(home / "agent-venv" / "bin" / "kitt-agent"), *args],
                          capture_output=True, text=True, check=False, timeout=600,
                          env={"PATH": "/usr/bin:/bin", "KITT_AGENT_HOME": str(home),
                               "HOME": str(home.parent)})


def test_the_one_liner_installs_and_enrolls_the_agent(server, installed):
    _, home, said = installed
    script = subprocess.run(["curl", "-fsSL", "--insecure", "--pinnedpubkey", server["pin"],
                             f"{server['base']}/api/v1/agent/install.sh"],
                            capture_output=True, text=True, check=True).stdout
    assert "kenr_" not in script and "kagt_" not in script  # no secret in the script
    assert "enrolled gpu-07 as agt_" in said
    config = home / "agent.yaml"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert f"pin: {server['pin']}" in config.read_text()
    version = agent_cli(home, "--version")
    assert version.returncode == 0 and "0.1.0" in version.stdout


def test_update_installs_the_version_the_server_offers_only_when_idle(server, installed,
                                                                      tmp_path):
    _, home, _ = installed
    assert "up to date" in agent_cli(home, "update").stdout
    # A newer kitt-agent in the server's dist folder, built as `dist build` would.
    tree = tmp_path / "kitt-agent"
    shutil.copytree(ROOT / "kitt-agent", tree, ignore=shutil.ignore_patterns("__pycache__"))
    init = tree / "src" / "kitt_agent" / "__init__.py"
    init.write_text(init.read_text().replace('__version__ = "0.1.0"', '__version__ = "0.1.1"'))
    dist = server["work"] / "dist"
    for old in dist.glob("kitt_agent-*.whl"):
        old.unlink()
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                    "--wheel-dir", str(dist), str(tree)], check=True, timeout=600)
    # A job running here: the update waits for an idle agent.
    job = home / "agent" / "jobs" / "job_busy"
    job.mkdir(parents=True)
    (job / "job.json").write_text('{"id": "job_busy", "kind": "run", "spec": {}}')
    sleeper = subprocess.Popen(["sleep", "600"])
    try:
        started = Path(f"/proc/{sleeper.pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
        (job / "pid").write_text(f"{sleeper.pid} {started}\n")
        busy = agent_cli(home, "update")
        assert busy.returncode == 2 and "job_busy is running" in busy.stderr
    finally:
        sleeper.kill()
        sleeper.wait()
    (job / "reported").write_text("done\n")
    done = agent_cli(home, "update")
    assert done.returncode == 0, done.stderr
    assert "updated kitt-agent 0.1.0 -> 0.1.1" in done.stdout
    assert "0.1.1" in agent_cli(home, "--version").stdout


def test_another_key_pinned_fetches_nothing(server, tmp_path):
    made = enrollment(server)
    wrong = made["install"].replace(server["pin"], "sha256//" + "A" * 43 + "=")
    home = tmp_path / "home"
    done = subprocess.run(["bash", "-o", "pipefail", "-c", wrong], capture_output=True,
                          text=True, timeout=120, env={"PATH": "/usr/bin:/bin",
                                                       "HOME": str(tmp_path),
                                                       "KITT_AGENT_HOME": str(home)})
    assert done.returncode != 0
    assert not (home / "agent-venv").exists() and not (home / "agent.yaml").exists()
