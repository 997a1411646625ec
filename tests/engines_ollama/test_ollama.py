"""The `ollama` engine: server command and container, GGUF import and tag pulls, reusing
a running service, and the wire format (NDJSON streams with Ollama's own timings, the
OpenAI-compatible API) against a local server that follows Ollama's documented API."""

from __future__ import annotations

import asyncio
import hashlib
import json
import urllib.request

import pytest
from support import free_port, run_kitt
from support.engines import launched
from support.fakes import fake_ollama_binary, start_service

import kitt
from kitt import Launch
from kitt._engines.native import group_members
from kitt._engines.preflight import check_options
from kitt.errors import BadInput, EngineFailed
from kitt_engine_ollama import Ollama
from kitt_engine_ollama.store import model_name


def _launch(**options) -> Launch:
    return Launch("/m/kitt-tiny.gguf", 11434, "0.0.0.0", "kitt-tiny",
                  check_options(Ollama(), options))


def test_native_command_configures_ollama_through_its_environment(tmp_path):
    binary = fake_ollama_binary(tmp_path)
    argv = Ollama().native_command(_launch(binary=str(binary), num_parallel=4,
                                           context_length=8192, keep_alive="5m",
                                           models_dir="/srv/ollama"))
    assert argv[0] == "env" and argv[-2:] == [str(binary), "serve"]
    assert set(argv[1:-2]) == {"OLLAMA_HOST=0.0.0.0:11434", "OLLAMA_NUM_PARALLEL=4",
                               "OLLAMA_CONTEXT_LENGTH=8192", "OLLAMA_KEEP_ALIVE=5m",
                               "OLLAMA_MODELS=/srv/ollama"}


def test_container_keeps_the_store_in_a_named_volume():
    spec = Ollama().container_spec(_launch(volume="my-store", num_parallel=2),
                                   "ollama/ollama:0.12")
    assert spec.command == ("serve",)  # ENTRYPOINT is /bin/ollama
    assert spec.volumes == {"my-store": "/root/.ollama"}
    assert spec.environment == {"OLLAMA_HOST": "0.0.0.0:11434", "OLLAMA_NUM_PARALLEL": "2"}
    assert spec.container_port == 11434


def test_model_names_are_valid_ollama_names():
    assert model_name("Kitt Tiny.Q4_K_M") == "kitt-tiny.q4_k_m"
    assert model_name("***") == "kitt-model"


def test_bad_options_stop_before_anything_starts():
    with pytest.raises(BadInput, match="num_parallel must be >= 1"):
        check_options(Ollama(), {"num_parallel": 0})


def test_server_timings_are_read_from_the_final_object():
    # The one NDJSON parser (kitt.new_parser) keeps Ollama's own timings; the perf
    # metrics turn them into milliseconds and rates (docs/metrics.md "Server timings").
    from kitt_bench_perf.metrics import server_timing_values
    from kitt_bench_perf.records import Outcome, RequestRecord

    parser = kitt.new_parser(kitt.Route.OLLAMA_GENERATE)
    for chunk in (b'{"response":" a","done":false}\n', b"\n",
                  b'{"response":"","done":true,"done_reason":"length",'
                  b'"total_duration":12000000,"load_duration":2000000,'
                  b'"prompt_eval_count":7,"prompt_eval_duration":1400000,'
                  b'"eval_count":10,"eval_duration":5000000}'):
        parser.feed(chunk, 0)
    parser.finish()
    assert parser.outcome() == "ok" and (parser.input_tokens, parser.output_tokens) == (7, 10)
    record = RequestRecord(0, Outcome.OK, 0, 1, server_timings=parser.server_timings)
    values = server_timing_values([record])
    assert values == {"eval_tokens_per_s": [pytest.approx(2000.0)], "prompt_eval_ms": [1.4],
                      "load_ms": [2.0], "total_ms": [12.0]}
    unfinished = kitt.new_parser(kitt.Route.OLLAMA_GENERATE)
    unfinished.feed(b'{"response":"a","done":false}', 0)
    unfinished.finish()
    assert unfinished.outcome() == "incomplete" and unfinished.server_timings is None


# -- against the fake server --------------------------------------------------------------

def _stream(url: str, body: dict) -> list[dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.headers["Content-Type"].startswith("application/x-ndjson")
        return [json.loads(line) for line in response if line.strip()]


def test_gguf_is_imported_and_served_natively(tiny_gguf, tmp_path, kitt_env, monkeypatch):
    log = tmp_path / "calls.log"
    monkeypatch.setenv("FAKE_OLLAMA_LOG", str(log))
    binary = fake_ollama_binary(tmp_path)
    with launched("ollama", str(tiny_gguf), port=free_port(), ready_timeout_s=60,
                       options={"binary": str(binary), "num_parallel": 2,
                                "context_length": 2048}) as running:
        assert running.api == "ollama" and running.pid
        assert running.served_name == "kitt-tiny"
        assert running.version == "ollama 0.12.3-fake"
        with urllib.request.urlopen(f"{running.base_url}/api/tags", timeout=10) as response:
            names = [m["name"] for m in json.load(response)["models"]]
        assert names == ["kitt-tiny:latest"]
        objects = _stream(f"{running.base_url}/api/generate",
                          {"model": running.served_name, "prompt": "Hello there",
                           "options": {"num_predict": 5}})
        assert "".join(o["response"] for o in objects) == " w0 w1 w2 w3 w4"
        final = objects[-1]
        assert final["eval_count"] == 5 and final["prompt_eval_count"] == 2
        assert final["load_duration"] == 2_000_000
        assert final["total_duration"] > final["eval_duration"] > 0
        chat = _stream(f"{running.base_url}/api/chat",
                       {"model": running.served_name, "options": {"num_predict": 3},
                        "messages": [{"role": "user", "content": "Hi"}]})
        assert chat[-1]["done"] and chat[-1]["eval_count"] == 3
        assert [o["message"]["content"] for o in chat[:-1]] == [" w0", " w1", " w2"]
        pid = running.pid
    assert group_members(pid) == []
    calls = log.read_text().splitlines()
    digest = "sha256:" + hashlib.sha256(tiny_gguf.read_bytes()).hexdigest()
    # The server got KITT's settings, then the file as a blob, then the model.
    assert "OLLAMA_NUM_PARALLEL=2" in calls[0]
    assert calls.index(f"HEAD /api/blobs/{digest}") < calls.index(
        f"POST /api/blobs/{digest}") < calls.index("POST /api/create")


def test_ollama_streams_through_kitts_stream_client(tiny_gguf, tmp_path, kitt_env):
    client = pytest.importorskip("kitt_bench_perf.client")
    from kitt_bench_perf.records import TokenSource
    from kitt_bench_perf.workload import RequestSpec

    binary = fake_ollama_binary(tmp_path)
    with launched("ollama", str(tiny_gguf), port=free_port(), ready_timeout_s=60,
                       options={"binary": str(binary)}) as running:
        async def send(api):
            endpoint = client.Endpoint(running.base_url, running.served_name, api)
            async with client.StreamClient(endpoint, 2) as streams:
                spec = RequestSpec(prompt="Hello there", output_tokens=4)
                return await streams.send(streams.prepare(spec))

        for api in (client.Route.OLLAMA_GENERATE, client.Route.OLLAMA_CHAT,
                    client.Route.OPENAI_CHAT, client.Route.OPENAI_COMPLETIONS):
            record = asyncio.run(send(api))
            assert record.ok, (api, record.error)
            assert record.output_tokens == 4, api
            assert record.output_tokens_source is TokenSource.USAGE, api
            assert record.text == " w0 w1 w2 w3", api


def test_a_tag_is_pulled_when_missing(tmp_path, kitt_env, monkeypatch):
    monkeypatch.setenv("FAKE_OLLAMA_PULLABLE", "tinyllama:1b")
    binary = fake_ollama_binary(tmp_path)
    with launched("ollama", "tinyllama:1b", port=free_port(), ready_timeout_s=60,
                       options={"binary": str(binary)}) as running:
        assert running.served_name == "tinyllama:1b" and running.model_path is None
        objects = _stream(f"{running.base_url}/api/generate",
                          {"model": "tinyllama:1b", "prompt": "x",
                           "options": {"num_predict": 1}})
        assert objects[-1]["done"]


def test_pull_off_or_unknown_tag_fails_and_tears_down(tmp_path, kitt_env):
    binary = fake_ollama_binary(tmp_path)
    with pytest.raises(EngineFailed, match="pulling is off"), \
            launched("ollama", "tinyllama:1b", port=free_port(), ready_timeout_s=60,
                          options={"binary": str(binary), "pull": False}):
        pass
    with pytest.raises(EngineFailed, match="could not pull nope:7b") as info, \
            launched("ollama", "nope:7b", port=free_port(), ready_timeout_s=60,
                          options={"binary": str(binary)}):
        pass
    assert "file does not exist" in str(info.value)
    assert not list((tmp_path / "kitt-home" / "running").glob("*.json"))


def test_a_running_service_is_reused_and_left_running(tiny_gguf, tmp_path, kitt_env):
    port = free_port()
    service = start_service(port, tmp_path / "service.log")
    try:
        binary = fake_ollama_binary(tmp_path)
        with launched("ollama", str(tiny_gguf), port=port, ready_timeout_s=30,
                           options={"binary": str(binary)}) as running:
            assert running.pid is None and running.served_name == "kitt-tiny"
            objects = _stream(f"{running.base_url}/api/generate",
                              {"model": "kitt-tiny", "prompt": "a b",
                               "options": {"num_predict": 2}})
            assert objects[-1]["eval_count"] == 2
        assert service.poll() is None  # not stopped at teardown
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/tags", timeout=5) as resp:
            assert json.load(resp)["models"][0]["name"] == "kitt-tiny:latest"
        # Nothing was started: the fake binary never ran `serve`.
        assert "serve" not in (tmp_path / "service.log").read_text().split("\n", 1)[1]
        # A second import finds the blob there already and does not upload it again.
        with launched("ollama", str(tiny_gguf), port=port, ready_timeout_s=30):
            pass
        calls = (tmp_path / "service.log").read_text().splitlines()
        assert sum(c.startswith("POST /api/blobs/") for c in calls) == 1
        assert sum(c == "POST /api/create" for c in calls) == 2
    finally:
        service.terminate()
        service.wait(timeout=10)


def test_reuse_off_means_the_port_must_be_free(tiny_gguf, tmp_path, kitt_env):
    port = free_port()
    service = start_service(port, tmp_path / "service.log")
    try:
        with pytest.raises(BadInput, match=f"port {port} .* already in use"), \
                launched("ollama", str(tiny_gguf), port=port,
                              options={"reuse_running": False,
                                       "binary": str(fake_ollama_binary(tmp_path))}):
            pass
    finally:
        service.terminate()
        service.wait(timeout=10)


def test_hf_folder_is_refused_with_a_fix(tmp_path, kitt_env):
    from kitt._testing.tinymodel import write_tiny_model

    tiny = write_tiny_model(tmp_path / "m")
    (tiny.hf_dir / tiny.gguf_path.name).unlink(missing_ok=True)
    with pytest.raises(BadInput, match="serves: gguf, ollama"), \
            launched("ollama", str(tiny.hf_dir), port=free_port()):
        pass


def test_engines_list_shows_ollama(kitt_env):
    result = run_kitt("engines", "list", "--json", env=kitt_env)
    assert result.returncode == 0, result.stderr
    row = {r["name"]: r for r in json.loads(result.stdout)}["ollama"]
    assert row["formats"] == ["gguf", "ollama"] and row["modes"] == ["native", "docker"]
    assert row["image"].startswith("ollama/ollama")


def test_throughput_records_ollamas_own_timings(tiny_gguf, tmp_path, kitt_env):
    """The `throughput` benchmark on the fake server: Ollama's final-object timings
    become server_* metrics, equal to what the server sent."""
    pytest.importorskip("kitt_bench_perf.client")
    from kitt import plugins
    from kitt._util.converter import structure
    from kitt.benchmark import BenchmarkContext, Target
    from kitt.records import Fingerprint

    binary = fake_ollama_binary(tmp_path)
    benchmark = plugins.benchmarks()["throughput"]
    with launched("ollama", str(tiny_gguf), port=free_port(), ready_timeout_s=60,
                       options={"binary": str(binary)}) as running:
        target = Target(running.base_url, running.served_name, "ollama", "ollama",
                        tiny_gguf, pid=running.pid, metrics_path=None)
        context = BenchmarkContext(target, Fingerprint("test"), tmp_path, seed=1)
        # The warmup request loads the model (the fake's load_duration is 2 ms then, 0
        # after), so every measured request reports load_duration 0.
        params = structure({"requests": 6, "warmup_requests": 1, "concurrency": 2,
                            "max_tokens": 5, "prompt_tokens": 16, "scrape_interval_s": 0},
                           benchmark.Params)
        measured = benchmark.run(context, params)
        with pytest.raises(BadInput, match="generate_stream"):
            benchmark.run(context, structure({"endpoint": "generate_stream"},
                                             benchmark.Params))
    json.dumps(measured.details, allow_nan=False)
    assert measured.passed
    got = {m.name: m.value for m in measured.metrics}
    units = {m.name: m.unit for m in measured.metrics}
    assert got["requests"] == 6 and got["output_tokens_min"] == got["output_tokens_max"] == 5
    # The fake sends eval_count n and eval_duration 250 us * n: 4000 tokens/s exactly.
    assert got["server_eval_tokens_per_s_p50"] == pytest.approx(4000.0)
    assert got["server_eval_tokens_per_s_min"] == pytest.approx(4000.0)
    assert units["server_eval_tokens_per_s_p50"] == "tokens/s"
    # prompt_eval_duration 1.5 ms, load_duration 0 once loaded.
    assert got["server_prompt_eval_ms_mean"] == pytest.approx(1.5)
    assert got["server_prompt_eval_ms_max"] == pytest.approx(1.5)
    assert got["server_load_ms_max"] == 0.0 and units["server_load_ms_max"] == "ms"
    # total_duration = the server's handling time + 1.5 ms: inside the client's E2E.
    assert 1.5 <= got["server_total_ms_p50"] <= got["e2e_ms_max"]
    summary = measured.details["summary"]
    assert summary["server_eval_tokens_per_s"]["count"] == 6
    assert summary["server_total_ms"]["count"] == 6
