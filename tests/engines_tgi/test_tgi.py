"""The `tgi` engine: launcher arguments, container description, and the wire format
against a local server that follows TGI's documented API (no real TGI can run here)."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import pytest
from support import free_port, run_kitt
from support.engines import launched
from support.fakes import fake_launcher

import kitt
from kitt import Launch
from kitt._engines.preflight import check_options
from kitt.errors import BadInput
from kitt.records import GPU, CPUSection, Fingerprint, GPUSection
from kitt_engine_tgi import Tgi


def _launch(**options) -> Launch:
    opts = check_options(Tgi(), options)
    return Launch("/models", 8080, "0.0.0.0", "kitt-tiny", opts, ("--sharded", "false"))


def test_launcher_arguments_follow_the_options():
    args = Tgi().launcher_args(_launch(max_input_tokens=1024, max_total_tokens=2048,
                                       quantize="awq", num_shard=2, dtype="bfloat16"))
    assert args == ["--model-id", "/models", "--hostname", "0.0.0.0", "--port", "8080",
                    "--max-input-tokens", "1024", "--max-total-tokens", "2048",
                    "--quantize", "awq", "--num-shard", "2", "--dtype", "bfloat16",
                    "--sharded", "false"]
    assert Tgi().launcher_args(_launch())[:6] == ["--model-id", "/models", "--hostname",
                                                  "0.0.0.0", "--port", "8080"]


def test_container_mounts_the_model_at_data_with_shm_and_offline_hub():
    launch = attrs_evolve(_launch(shm_size="2g"), model="/models/sub")
    spec = Tgi().container_spec(launch, "ghcr.io/huggingface/text-generation-inference:3")
    assert spec.model_mount == "/data"
    assert spec.command[:2] == ("--model-id", "/data/sub")  # ENTRYPOINT is the launcher
    assert spec.shm_size == "2g" and spec.container_port == 8080
    assert spec.environment == {"HF_HUB_OFFLINE": "1"}


def attrs_evolve(launch: Launch, **changes) -> Launch:
    import attrs

    return attrs.evolve(launch, **changes)


@pytest.mark.parametrize("options, words", [
    ({"quantize": "int3"}, "quantize must be one of"),
    ({"num_shard": 0}, "num_shard must be >= 1"),
    ({"max_input_tokens": 4096, "max_total_tokens": 2048}, "less than max_total_tokens"),
    ({"shards": 2}, "has no option 'shards'"),
])
def test_bad_options_stop_before_anything_starts(options, words):
    with pytest.raises(BadInput, match=words):
        check_options(Tgi(), options)


def test_image_is_tgi_for_every_host():
    gpu = Fingerprint("x", gpu=GPUSection((GPU("B200", compute_capability="10.0"),)),
                      cpu=CPUSection(architecture="x86_64"))
    for host in (Fingerprint("x"), gpu):
        assert Tgi().select_image(host).image.startswith(
            "ghcr.io/huggingface/text-generation-inference:")


def test_native_mode_without_the_launcher_says_how_to_get_it(hf_model, kitt_env,
                                                             monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(BadInput, match="not installed for native mode") as info, \
            launched("tgi", str(hf_model), port=free_port()):
        pass
    assert "--mode docker" in info.value.hint


def test_gguf_is_refused_with_a_fix(tmp_path, kitt_env):
    from kitt._testing.tinymodel import write_tiny_model

    tiny = write_tiny_model(tmp_path / "m")
    with pytest.raises(BadInput, match="serves: safetensors, pytorch"), \
            launched("tgi", str(tiny.gguf_path), port=free_port()):
        pass


# -- wire format, against the fake server (launched as text-generation-launcher) -----------

def _post(url: str, body: dict) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, response.read()


@pytest.fixture
def tgi(hf_model, tmp_path, kitt_env, monkeypatch):
    monkeypatch.setenv("FAKE_TGI_LOADING_S", "0.5")  # health waits through a 503
    binary = fake_launcher(tmp_path)
    with launched("tgi", str(hf_model), port=free_port(), ready_timeout_s=60,
                       options={"binary": str(binary), "max_input_tokens": 512,
                                "max_total_tokens": 600}) as running:
        yield running


def test_native_lifecycle_info_and_version(tgi, hf_model):
    assert tgi.api == "tgi" and tgi.pid
    assert tgi.version == "tgi 3.3.4-fake"
    with urllib.request.urlopen(f"{tgi.base_url}/info", timeout=10) as response:
        info = json.load(response)
    # The launcher arguments reached the server.
    assert info["model_id"] == str(hf_model)
    assert (info["max_input_tokens"], info["max_total_tokens"]) == (512, 600)


def test_generate_stream_tokens_and_details(tgi):
    from kitt._engines.streams import post_stream

    route = kitt.Route.TGI_GENERATE_STREAM
    body = kitt.request_body(route, "", "Hello there", max_tokens=5)
    assert body == {"inputs": "Hello there", "stream": True,
                    "parameters": {"max_new_tokens": 5, "details": True}}
    status, parser = post_stream(tgi.base_url, route, body, 30)
    assert status == 200 and parser.outcome() == "ok"
    assert (parser.output_tokens, parser.input_tokens) == (5, 2)  # from the final details
    assert "".join(parser.text) == " w0 w1 w2 w3 w4"
    assert parser.chunk_tokens == [1] * 5 and parser.tokens_exact


def test_stream_events_parse_edge_cases():
    def parsed(*lines: str):
        parser = kitt.new_parser(kitt.Route.TGI_GENERATE_STREAM)
        for line in lines:
            parser.feed(line.encode() + b"\n", 0)
        parser.finish()
        return parser

    assert parsed("", ": keep-alive").outcome() == "incomplete"
    assert "Request failed" in parsed(
        'data:{"error":"Request failed","error_type":"generation"}').error
    assert parsed("data:{not json").error.startswith("malformed")
    special = parsed('data: {"token":{"id":1,"text":"a","logprob":-1.5,"special":true},'
                     '"generated_text":null,"details":null}')
    assert special.chunk_ns == [] and special.outcome() == "incomplete"  # not text
    stopped = parsed('data:{"token":{"id":1,"text":"a","logprob":0,"special":false}}')
    assert stopped.outcome() == "incomplete" and stopped.chunk_tokens == [1]


def test_validation_errors_come_back_as_422(tgi):
    with pytest.raises(urllib.error.HTTPError) as info:
        _post(f"{tgi.base_url}/generate", {"inputs": "w " * 600,
                                           "parameters": {"max_new_tokens": 1}})
    assert info.value.code == 422
    assert json.load(info.value)["error_type"] == "validation"


def test_messages_api_through_kitts_stream_client(tgi):
    client = pytest.importorskip("kitt_bench_perf.client")
    from kitt_bench_perf.records import TokenSource
    from kitt_bench_perf.workload import RequestSpec

    async def send():
        endpoint = client.Endpoint(tgi.base_url, "tgi", client.Route.OPENAI_CHAT)
        async with client.StreamClient(endpoint, 2) as streams:
            spec = RequestSpec(prompt="Hello there", output_tokens=6, input_tokens=None)
            return await streams.send(streams.prepare(spec))

    record = asyncio.run(send())
    assert record.ok, record.error
    assert record.output_tokens == 6 and record.output_tokens_source is TokenSource.USAGE
    assert record.input_tokens == 2 and len(record.chunk_ns) == 6
    assert record.text == " w0 w1 w2 w3 w4 w5"


def test_tokenize_and_metrics(tgi):
    status, raw = _post(f"{tgi.base_url}/tokenize", {"inputs": "Hello there"})
    tokens = json.loads(raw)
    assert status == 200 and [t["text"] for t in tokens] == ["Hello", "there"]
    assert {"id", "start", "stop"} <= set(tokens[0])
    with urllib.request.urlopen(f"{tgi.base_url}/metrics", timeout=10) as response:
        assert b"# TYPE tgi_request_count counter" in response.read()


def test_teardown_leaves_nothing(hf_model, tmp_path, kitt_env):
    from kitt._engines.native import group_members

    binary = fake_launcher(tmp_path)
    with launched("tgi", str(hf_model), port=free_port(), ready_timeout_s=60,
                       options={"binary": str(binary)}) as running:
        pid = running.pid
        assert group_members(pid)
    assert group_members(pid) == []


def test_engines_list_shows_tgi(kitt_env):
    result = run_kitt("engines", "list", "--json", env=kitt_env)
    assert result.returncode == 0, result.stderr
    row = {r["name"]: r for r in json.loads(result.stdout)}["tgi"]
    assert row["formats"] == ["safetensors", "pytorch"]
    assert row["image"].startswith("ghcr.io/huggingface/text-generation-inference")


# -- TGI's native /generate_stream through kitt-bench-perf -----------------------------------

def test_throughput_on_generate_stream(tgi, hf_model, tmp_path):
    pytest.importorskip("kitt_bench_perf.client")
    from kitt import plugins
    from kitt._util.converter import structure
    from kitt.benchmark import BenchmarkContext, Target
    from kitt.records import Fingerprint

    benchmark = plugins.benchmarks()["throughput"]
    target = Target(tgi.base_url, tgi.served_name, "tgi", "tgi", hf_model, pid=tgi.pid,
                    metrics_path="/metrics")
    context = BenchmarkContext(target, Fingerprint("test"), tmp_path, seed=1)
    params = structure({"endpoint": "generate_stream", "requests": 6, "concurrency": 2,
                        "max_tokens": 7, "prompt_tokens": 16, "temperature": 0.0},
                       benchmark.Params)
    measured = benchmark.run(context, params)
    json.dumps(measured.details, allow_nan=False)
    assert measured.passed, measured.details["summary"]["errors"]
    assert measured.details["api"] == "tgi-generate-stream"
    got = {m.name: m.value for m in measured.metrics}
    assert got["requests"] == 6 and got["error_rate"] == 0.0
    assert got["output_tokens_min"] == got["output_tokens_max"] == 7
    # Token counts are the server's (details.generated_tokens / input_length).
    assert measured.details["token_counting"]["output"] == {"usage": 6}
    assert measured.details["token_counting"]["input"] == {"usage": 6}
    for sample in measured.requests:
        assert sample.ok and sample.output_tokens == 7 and sample.input_tokens > 0
        assert 0 < sample.ttft_ms < sample.e2e_ms
    # One token per event: 6 gaps per request, every one pooled.
    assert measured.details["summary"]["itl_pooled_ms"]["count"] == 6 * 6
    assert not any(name.startswith("server_eval") for name in got)  # Ollama's only
