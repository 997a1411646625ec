"""`kitt results submit`: local runs (by id, or results folders) uploaded to a live
`kitt web` over TLS, stored there once; the token only from the environment or an
owner-only config file; every refusal a clear exit 2."""

from __future__ import annotations

import json

import pytest
from support import free_port, run_kitt
from support.stores import make_run
from support.web import TOKEN, start_web

import kitt
from kitt_web.state import open_state, tokens


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    work = tmp_path_factory.mktemp("submit")
    url = f"sqlite:///{work / 'server.db'}"
    port = free_port()
    web, said = start_web("--port", str(port), "--store", url, env={
        "KITT_HOME": str(work / "home"), "KITT_STORE": "", "KITT_AUTH_TOKEN": ""},
        log=work / "web.log")
    with kitt.open_store(url) as store:
        db = open_state(store)
        made = {role: tokens.create(db, role, role)[1] for role in ("viewer", "operator")}
    yield {"url": url, "base": f"https://localhost:{port}", "tokens": made,
           "admin": TOKEN.search(said)[0], "ca": str(work / "home" / "web" / "tls" / "ca.pem")}
    web.stop()


@pytest.fixture
def local(tmp_path):
    url = f"sqlite:///{tmp_path / 'local.db'}"
    with kitt.open_store(url, create=True) as store:
        store.save_runs([make_run(1, run_id="sub-0001"), make_run(2, run_id="sub-0002")])
    return url


def submit(server, local, *refs, token="operator", extra=(), home=None):
    env = {"KITT_HOME": str(home or "/nonexistent"), "KITT_SERVER_TOKEN":
           server["tokens"].get(token, token) if token else ""}
    return run_kitt("results", "submit", *refs, "--server", server["base"], "--store", local,
                    *extra, "--ca-file", server["ca"], "--json", env=env)


def test_runs_are_stored_on_the_server_once(server, local, tmp_path):
    first = submit(server, local, "sub-0001", "sub-0002")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["runs"] == [{"run_id": "sub-0001", "stored": True},
                                                {"run_id": "sub-0002", "stored": True}]
    again = submit(server, local, "sub-0001")
    assert json.loads(again.stdout)["runs"] == [{"run_id": "sub-0001", "stored": False}]
    with kitt.open_store(server["url"]) as store:
        assert store.get_run("sub-0001") == make_run(1, run_id="sub-0001")
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "metrics.json").write_text(kitt.to_json(make_run(3, run_id="sub-0003")))
    from_folder = submit(server, local, str(folder))
    assert json.loads(from_folder.stdout)["runs"] == [{"run_id": "sub-0003", "stored": True}]


def test_a_viewer_token_is_refused_and_nothing_is_stored(server, local):
    refused = submit(server, local, "sub-0002", token="viewer")
    assert refused.returncode == 2
    assert "403" in refused.stderr and "operator" in refused.stderr


@pytest.mark.parametrize("token", ["", "kitt_" + "x" * 43])
def test_a_missing_or_bad_token_says_what_to_do(server, local, token):
    done = submit(server, local, "sub-0001", token=token)
    assert done.returncode == 2
    assert ("KITT_SERVER_TOKEN" in done.stderr) if not token else ("401" in done.stderr)


def test_the_token_may_live_in_an_owner_only_config_file(server, local, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    config = home / "config.yaml"
    config.write_text(f"server_token: {server['tokens']['operator']}\n")
    config.chmod(0o644)
    loose = submit(server, local, "sub-0001", token=None, home=home)
    assert loose.returncode == 2 and "chmod 600" in loose.stderr
    config.chmod(0o600)
    done = submit(server, local, "sub-0001", token=None, home=home)
    assert done.returncode == 0, done.stderr


def test_an_unverified_server_is_refused(server, local):
    done = run_kitt("results", "submit", "sub-0001", "--server", server["base"], "--store",
                    local, env={"KITT_SERVER_TOKEN": server["tokens"]["operator"],
                                "KITT_HOME": "/nonexistent"})
    assert done.returncode == 2 and "cannot verify" in done.stderr and "--ca-file" in done.stderr


def test_an_unknown_run_is_bad_input(server, local):
    done = submit(server, local, "nope")
    assert done.returncode == 2 and "nope" in done.stderr
