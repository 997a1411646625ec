"""The `vllm` engine without vLLM: options, command line, images, container. (The real
server is exercised in test_vllm.py, in its own nox session.)"""

from __future__ import annotations

import json
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest
from support import run_kitt

from kitt import Launch
from kitt._engines.preflight import check_options
from kitt.errors import BadInput
from kitt.records import GPU, CPUSection, Fingerprint, GPUSection
from kitt_engine_vllm import Vllm
from kitt_engine_vllm.engine import NGC_IMAGE, UPSTREAM_IMAGE


def _launch(**options) -> Launch:
    return Launch("/models", 8000, "0.0.0.0", "kitt-tiny", check_options(Vllm(), options),
                  ("--seed", "1"))


def _host(cc: str | None, arch: str = "x86_64") -> Fingerprint:
    gpus = (GPU("gpu", compute_capability=cc),) if cc else ()
    return Fingerprint("x", gpu=GPUSection(gpus), cpu=CPUSection(architecture=arch))


def test_server_arguments_follow_the_options():
    args = Vllm().server_args(_launch(tensor_parallel_size=2, gpu_memory_utilization=0.85,
                                      max_model_len=4096, dtype="bfloat16",
                                      enforce_eager=True,
                                      extra_args=["--max-num-seqs", "64"]))
    assert args == ["--model", "/models", "--host", "0.0.0.0", "--port", "8000",
                    "--served-model-name", "kitt-tiny", "--tensor-parallel-size", "2",
                    "--gpu-memory-utilization", "0.85", "--max-model-len", "4096",
                    "--dtype", "bfloat16", "--enforce-eager", "--max-num-seqs", "64",
                    "--seed", "1"]


def test_served_model_name_option_is_what_requests_use():
    launch = _launch(served_model_name="llama")
    assert Vllm().server_args(launch)[7] == "llama"
    assert Vllm().prepare("http://x", launch) == "llama"  # the launcher adopts it
    assert Vllm().prepare("http://x", _launch()) is None


def test_extra_args_may_be_one_string():
    assert _launch(extra_args="--max-num-seqs 8").options["extra_args"] == [
        "--max-num-seqs", "8"]


@pytest.mark.parametrize("options, words", [
    ({"gpu_memory_utilization": 1.5}, "gpu_memory_utilization must be in"),
    ({"tensor_parallel_size": 0}, "tensor_parallel_size must be >= 1"),
    ({"dtype": "int4"}, "dtype must be one of"),
    ({"enforce_eager": "yes"}, "enforce_eager must be true or false"),
    ({"tp": 2}, "has no option 'tp'"),
])
def test_bad_options_stop_before_anything_starts(options, words):
    with pytest.raises(BadInput, match=words):
        check_options(Vllm(), options)


def test_native_command_uses_the_configured_python(tmp_path, monkeypatch):
    # A "python" that answers the vLLM lookup: exit 0 to `-c` (has vllm).
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    argv = Vllm().native_command(_launch(python=str(fake)))
    assert argv[:5] == ["env", "HF_HUB_OFFLINE=1", str(fake), "-m",
                        "vllm.entrypoints.openai.api_server"]  # local models: never the Hub
    # An interpreter without vLLM is "not installed" (preflight then prints the hint).
    if find_spec("vllm") is None:
        assert Vllm().find_native_binary({"python": sys.executable}) is None
    assert Vllm().find_native_binary({"python": str(tmp_path / "missing")}) is None


def test_images_by_hardware():
    engine = Vllm()
    assert engine.select_image(_host(None)).image == UPSTREAM_IMAGE
    assert engine.select_image(_host("9.0")).image == UPSTREAM_IMAGE
    blackwell = engine.select_image(_host("12.1", "arm64"))
    assert blackwell.image == NGC_IMAGE and "Blackwell" in blackwell.reason
    assert engine.select_image(_host("10.0")).image == NGC_IMAGE


def test_container_specs():
    engine = Vllm()
    upstream = engine.container_spec(_launch(shm_size="16g"), UPSTREAM_IMAGE)
    assert upstream.command[:2] == ("--model", "/models")  # ENTRYPOINT is the server
    assert upstream.shm_size == "16g" and upstream.container_port == 8000
    assert upstream.environment == {"HF_HUB_OFFLINE": "1"}
    ngc = engine.container_spec(_launch(), NGC_IMAGE)
    assert ngc.command[:3] == ("python3", "-m", "vllm.entrypoints.openai.api_server")


def test_gguf_is_refused_with_a_fix(tmp_path, monkeypatch):
    from support.engines import launched

    from kitt._testing.tinymodel import write_tiny_model

    monkeypatch.setenv("KITT_HOME", str(tmp_path / "home"))
    tiny = write_tiny_model(tmp_path / "m")
    with pytest.raises(BadInput, match="serves: safetensors, pytorch") as info, \
            launched("vllm", str(tiny.gguf_path), port=8999):
        pass
    assert "Hugging Face model folder" in info.value.hint


def test_engines_list_shows_vllm(tmp_path: Path):
    result = run_kitt("engines", "list", "--json", env={"KITT_HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    row = {r["name"]: r for r in json.loads(result.stdout)}["vllm"]
    assert row["formats"] == ["safetensors", "pytorch"]
    assert row["image"] == UPSTREAM_IMAGE and "prompt_logprobs" in row["features"]


def test_engines_list_shows_all_four_engines(tmp_path: Path):
    pytest.importorskip("kitt_engine_llamacpp")
    pytest.importorskip("kitt_engine_tgi")
    pytest.importorskip("kitt_engine_ollama")
    result = run_kitt("engines", "list", env={"KITT_HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    for engine, image in (("llamacpp", "ghcr.io/ggml-org/llama.cpp"),
                          ("vllm", "vllm/vllm-openai"),
                          ("tgi", "ghcr.io/huggingface/text-generation-inference"),
                          ("ollama", "ollama/ollama")):
        line = next(line for line in result.stdout.splitlines()
                    if line.startswith(engine + " "))
        assert image in line, line
