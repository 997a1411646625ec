"""The one-liner an admin is shown: `curl ... install.sh | KITT_ENROLL_TOKEN=... bash`
against a real `kitt web` with its own CA, the server's key pinned for curl. It installs
kitt-agent from the wheels the server serves (built by `kitt web dist build` from this
tree, each checked against its SHA-256) and enrolls the host; with another key pinned,
nothing is fetched or installed."""

from __future__ import annotations

import json
import re
import stat
import subprocess
import sys

import pytest
from support import free_port, run_kitt
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


def test_the_one_liner_installs_and_enrolls_the_agent(server, tmp_path):
    made = enrollment(server)
    line = made["install"]
    assert line.startswith("curl -fsSL --insecure --pinnedpubkey sha256//")
    assert line.endswith(f"| KITT_ENROLL_TOKEN={made['secret']} bash")
    script = subprocess.run(["curl", "-fsSL", "--insecure", "--pinnedpubkey", server["pin"],
                             f"{server['base']}/api/v1/agent/install.sh"],
                            capture_output=True, text=True, check=True).stdout
    assert "kenr_" not in script and "kagt_" not in script  # no secret in the script
    home = tmp_path / "agent home"  # a space in the path, quoted all the way through
    done = subprocess.run(["bash", "-c", f"{line} -s -- --name gpu-07"], capture_output=True,
                          text=True, timeout=900, env={
                              "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                              "KITT_AGENT_HOME": str(home), "PYTHON": sys.executable})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "enrolled gpu-07 as agt_" in done.stdout
    config = home / "agent.yaml"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert f"pin: {server['pin']}" in config.read_text()
    version = subprocess.run([str(home / "agent-venv" / "bin" / "kitt-agent"), "--version"],
                             capture_output=True, text=True, check=False)
    assert version.returncode == 0 and "0.1.0" in version.stdout


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
