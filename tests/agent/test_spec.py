"""The agent's own check of a job: each kind becomes one fixed `kitt` command line of
separate arguments (no shell ever sees them), models only from its own storage, and
nothing from the job becomes an image, a mount, an engine flag or a command."""

from __future__ import annotations

import json
import sys

import pytest

from kitt_agent.spec import Unrunnable, plan

SUITE = {"name": "s", "benchmarks": [{"name": "throughput", "params": {}}]}
HOSTILE = ["a b.gguf", "it's.gguf", 'q"uote.gguf', "semi;colon.gguf", "$(touch pwned).gguf",
           "`id`.gguf", "new\nline.gguf"]


@pytest.fixture
def storage(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    for name in HOSTILE:
        (folder / name).write_bytes(b"GGUF")
    return folder


def make(spec, storage, tmp_path, kind="run"):
    return plan(kind, spec, job_dir=tmp_path / "job", model_dir=storage,
                store_url="sqlite:///agent.db")


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_model_names_stay_one_argument_each(storage, tmp_path, name):
    made = make({"model": name, "engine": "llamacpp", "suite": SUITE,
                 "options": {"ctx_size": 512, "binary": "$(rm -rf /)"}}, storage, tmp_path)
    argv = list(made.argv)
    assert argv[:4] == [sys.executable, "-m", "kitt", "run"]
    assert argv[argv.index("-m", 3) + 1] == str(storage / name)
    # An option's value is one argument, JSON-quoted so `-O` reads it back as that string.
    assert "binary=" + json.dumps("$(rm -rf /)") in argv and "ctx_size=512" in argv
    assert json.loads(made.files["suite.yaml"]) == SUITE


@pytest.mark.parametrize("ref", ["../outside.gguf", "/etc/passwd", "a/../../outside.gguf"])
def test_a_model_outside_the_storage_is_refused(storage, tmp_path, ref):
    (tmp_path / "outside.gguf").write_bytes(b"GGUF")
    with pytest.raises(Unrunnable, match="outside this agent's model storage"):
        make({"model": ref, "engine": "llamacpp", "suite": SUITE}, storage, tmp_path)


def test_a_symlink_out_of_the_storage_is_refused(storage, tmp_path):
    (tmp_path / "secret.gguf").write_bytes(b"GGUF")
    (storage / "link.gguf").symlink_to(tmp_path / "secret.gguf")
    with pytest.raises(Unrunnable, match="outside"):
        make({"model": "link.gguf", "engine": "llamacpp", "suite": SUITE}, storage, tmp_path)


@pytest.mark.parametrize(("spec", "says"), [
    ({"image": "evil:latest"}, "unknown field 'image'"),
    ({"extra_args": ["--privileged"]}, "unknown field 'extra_args'"),
    ({"engine": "nope"}, "not installed"),
    ({"engine": "llamacpp; id"}, "bad engine name"),
    ({"options": {"a;b": 1}}, "bad engine option name"),
    ({"options": {"ctx_size": [1]}}, "not a plain value"),
    ({"profile": "../x"}, "bad profile name"),
    ({"mode": "privileged"}, "does not run in"),
    ({"runs": True}, "bad runs"),
    ({"model": "missing.gguf"}, "is not in this agent's model storage"),
])
def test_a_job_it_cannot_run_is_refused_with_the_reason(storage, tmp_path, spec, says):
    full = {"model": HOSTILE[0], "engine": "llamacpp", "suite": SUITE, **spec}
    with pytest.raises(Unrunnable, match=says.replace("(", r"\(")):
        make(full, storage, tmp_path)


def test_unknown_kinds_and_shell_like_kinds_are_refused(storage, tmp_path):
    for kind in ("shell", "exec", "docker_run"):
        with pytest.raises(Unrunnable, match="does not run"):
            make({}, storage, tmp_path, kind=kind)


def test_cleanup_deletes_only_inside_the_storage(storage, tmp_path):
    made = make({"models": [HOSTILE[1]]}, storage, tmp_path, kind="cleanup_storage")
    assert made.argv == () and made.deletes == ((storage / HOSTILE[1]).resolve(),)
    for bad in (["../models"], ["."], ["/"]):
        with pytest.raises(Unrunnable):
            make({"models": bad}, storage, tmp_path, kind="cleanup_storage")


def test_engine_setup_runs_kitt_engines_setup(storage, tmp_path):
    made = make({"engine": "llamacpp"}, storage, tmp_path, kind="engine_setup")
    assert made.argv == (sys.executable, "-m", "kitt", "engines", "setup", "llamacpp")
