"""How a docker-mode job becomes a `docker run` of the KITT image: the same kitt command,
each value one argument, the paths mounted at themselves (model storage read-only), and
labels that tie the container to its job and agent. The real thing:
tests/agent/test_fleet_image.py."""

from __future__ import annotations

import itertools
from pathlib import Path

from kitt_agent.container import LABEL_AGENT, LABEL_JOB, wrap


def test_the_job_command_runs_unchanged_in_the_image(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/user docker.sock")
    home, models = tmp_path / "home", tmp_path / "models; rm -rf ~"
    argv = ("/venv/bin/python", "-m", "kitt", "run", "-m", str(models / "a b.gguf"),
            "-e", "llamacpp", "-O", 'threads="4; reboot"')
    command = wrap(argv, image="kitt:0.1.0", job_id="job_01$(x)", agent_id="kagt_1",
                   home=home, model_dir=models)
    image = command.index("kitt:0.1.0")
    assert command[image + 1:] == argv[3:]  # the same arguments, none joined or split
    assert command[:4] == ("docker", "run", "--rm", "--name")
    assert command[4] == "kitt-job-job_01--x-"  # a container name Docker accepts
    flags = list(itertools.pairwise(command[:image + 1]))
    assert ("--label", f"{LABEL_JOB}=job_01$(x)") in flags
    assert ("--label", f"{LABEL_AGENT}=kagt_1") in flags
    volumes = [value for flag, value in flags if flag == "--volume"]
    assert volumes == ["/run/user docker.sock:/var/run/docker.sock",
                       f"{home.resolve()}:{home.resolve()}",
                       f"{models.resolve()}:{models.resolve()}:ro"]
    assert ("--env", f"KITT_HOME={home.resolve()}") in flags
    assert not any(flag == "--privileged" or flag.startswith("--cap") for flag in command)
    assert Path(command[image + 3]).name == "a b.gguf"


def test_a_path_a_volume_cannot_carry_is_refused(tmp_path):
    import pytest

    from kitt.errors import BadInput

    with pytest.raises(BadInput) as refused:
        wrap(("/py", "-m", "kitt", "run"), image="kitt:1", job_id="j", agent_id="a",
             home=tmp_path / "a:b", model_dir=tmp_path)
    assert "holds ':'" in str(refused.value)
