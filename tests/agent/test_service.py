"""`kitt-agent service`: the systemd unit it writes is one systemd accepts
(`systemd-analyze verify`), restarts the agent on failure but not when the server
refused it, leaves the agent to stop its own job, and quotes a hostile home path."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from support import require

from kitt_agent import config as agent_config
from kitt_agent import service


@pytest.fixture
def enrolled(tmp_path):
    home = tmp_path / 'agent $HOME "quoted" 100%'
    agent_config.save(home, agent_config.AgentConfig(
        server="https://gpu-lab:8080", agent_id="agt_000000000001",
        token="kagt_" + "x" * 43, name="gpu-01"))
    return home


def cli(*args, env):
    return subprocess.run([sys.executable, "-m", "kitt_agent.cli", *args],
                          capture_output=True, text=True, env=env, check=False)


def test_the_unit_is_valid_and_restarts_only_what_should_restart(enrolled, tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path),
           "KITT_AGENT_HOME": str(enrolled)}
    done = cli("service", "install", "--no-start", env=env)
    assert done.returncode == 0, done.stderr
    unit = tmp_path / "systemd" / "user" / "kitt-agent.service"
    text = unit.read_text()
    assert "Restart=on-failure" in text and "RestartPreventExitStatus=3" in text
    assert "KillMode=process" in text and "After=network-online.target docker.service" in text
    assert "kagt_" not in text  # the token stays in agent.yaml
    assert f'ExecStart={service.quote(sys.executable)} -m kitt_agent.cli start' in text
    assert r'"KITT_AGENT_HOME=' in text and "$$HOME" in text and r'\"quoted\"' in text \
        and "100%%" in text
    require("systemd-analyze", shutil.which("systemd-analyze") is not None,
            "install systemd (its systemd-analyze checks the unit)")
    verified = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)],
                              capture_output=True, text=True, check=False)
    assert verified.returncode == 0 and "kitt-agent.service" not in verified.stderr, \
        verified.stderr
    status = cli("service", "status", "--json", env=env)
    assert '"installed": true' in status.stdout
    removed = cli("service", "uninstall", env=env)
    assert removed.returncode == 0 and not unit.exists()


def test_a_control_character_in_a_path_is_refused():
    with pytest.raises(Exception, match="control character"):
        service.quote("/home/a\nb")


def test_install_before_enrolling_says_to_enroll(tmp_path):
    done = cli("service", "install", "--no-start", env={
        "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path),
        "KITT_AGENT_HOME": str(tmp_path / "none")})
    assert done.returncode == 2 and "kitt-agent init" in done.stderr
