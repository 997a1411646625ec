"""`kitt web enroll`: an enrollment token shown once, with the command that uses it (the
token in the environment, the server's key pinned as `kitt web` prints it)."""

from __future__ import annotations

import re

from support import run_kitt

import kitt
from kitt_web.state import agents, open_state
from kitt_web.tls import ensure_local_tls, spki_sha256


def test_enroll_prints_the_command_with_the_token_and_the_pin(tmp_path):
    home = tmp_path / "home"
    files = ensure_local_tls(folder=home / "web" / "tls")
    store = f"sqlite:///{tmp_path / 'karr.db'}"
    done = run_kitt("web", "enroll", "rack-3", "--uses", "3", "--expires", "2h",
                    "--server", "https://gpu-lab:8080", "--store", store,
                    env={"KITT_HOME": str(home)})
    assert done.returncode == 0, done.stderr
    line = re.search(r"KITT_ENROLL_TOKEN=(kenr_[A-Za-z0-9_-]{43}) kitt-agent init "
                     r"--server https://gpu-lab:8080 --pin (sha256//\S+)", done.stdout)
    assert line, done.stdout
    assert line[2] == f"sha256//{spki_sha256(files.cert)}"
    assert "shown once" in done.stderr
    with kitt.open_store(store) as opened:
        [enrollment] = agents.list_enrollments(open_state(opened))
    assert enrollment.uses_allowed == 3 and enrollment.name == "rack-3"
    assert line[1] not in (tmp_path / "karr.db").read_bytes().decode("latin-1")


def test_a_bad_duration_is_refused(tmp_path):
    done = run_kitt("web", "enroll", "--expires", "soon", "--store",
                    f"sqlite:///{tmp_path / 'karr.db'}", env={"KITT_HOME": str(tmp_path)})
    assert done.returncode == 2 and "bad duration" in done.stderr
