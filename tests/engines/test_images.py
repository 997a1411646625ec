"""Image resolution: engines.yaml overrides > hardware rules > default; malformed
engines.yaml errors name the file, line and problem; `kitt engines list/check`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import run_kitt

from kitt._engines.images import load_engines_file, resolve_image
from kitt._util.yamlfile import load_yaml
from kitt.errors import BadInput
from kitt.records import GPU, CPUSection, Fingerprint, GPUSection
from kitt_engine_llamacpp import LlamaServer


def _host(arch: str, cc: str | None = None) -> Fingerprint:
    gpus = (GPU("gpu", compute_capability=cc),) if cc else ()
    return Fingerprint("test", gpu=GPUSection(gpus=gpus), cpu=CPUSection(architecture=arch))


@pytest.mark.parametrize(("arch", "cc", "image", "context"), [
    ("x86_64", None, "ghcr.io/ggml-org/llama.cpp:server", None),
    ("x86_64", "8.9", "ghcr.io/ggml-org/llama.cpp:server-cuda", None),
    ("x86_64", "10.0", "kitt/llama-cpp:spark", "llama-cpp-spark"),
    ("aarch64", "12.1", "kitt/llama-cpp:arm64", "llama-cpp-arm64"),  # DGX Spark
    ("aarch64", "8.7", "kitt/llama-cpp:arm64", "llama-cpp-arm64"),  # Jetson Orin
    ("aarch64", None, "ghcr.io/ggml-org/llama.cpp:server", None),
])
def test_llamacpp_hardware_rules(arch, cc, image, context, tmp_path):
    from kitt._engines.images import EnginesFile

    choice = resolve_image(LlamaServer(), _host(arch, cc), EnginesFile())
    assert (choice.image, choice.build_context) == (image, context)
    assert choice.reason
    if context:
        assert (Path(__file__).resolve().parents[2] / "docker" / context / "Dockerfile").is_file()


def test_override_beats_rules(tmp_path):
    path = tmp_path / "engines.yaml"
    path.write_text("image_overrides:\n  llamacpp: my.registry/llama:7\n"
                    "engine_options:\n  llamacpp: {threads: 3}\n")
    engines_file = load_engines_file(path)
    choice = resolve_image(LlamaServer(), _host("x86_64", "10.0"), engines_file)
    assert choice.image == "my.registry/llama:7"
    assert choice.reason == f"image_overrides.llamacpp in {path}"
    assert engines_file.engine_options == {"llamacpp": {"threads": 3}}


@pytest.mark.parametrize(("text", "line", "problem"), [
    ("image_overrides:\n  llamacpp: [unclosed\n", 3, "invalid YAML"),
    ("image_overrides:\n  llamacpp: 12\n", 2, "field 'image_overrides.llamacpp': expected a "
                                             "non-empty string"),
    ("image_overrides: nope\n", 1, "field 'image_overrides': expected a mapping"),
    ("image_overides:\n  llamacpp: x\n", 1, "unknown key 'image_overides'"),
    ("engine_options:\n  llamacpp: 3\n", 2, "field 'engine_options.llamacpp': expected a "
                                           "mapping"),
    ("image_overrides:\n  a: x\n  a: y\n", 3, "invalid YAML"),
    ("- a\n- b\n", None, "field '(top level)': expected a mapping"),
])
def test_malformed_engines_yaml_names_file_line_and_problem(tmp_path, text, line, problem):
    path = tmp_path / "engines.yaml"
    path.write_text(text)
    with pytest.raises(BadInput) as caught:
        load_engines_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}:" if line else f"{path}:"), message
    assert problem in message
    assert caught.value.hint


def test_yaml_helpers_report_lines(tmp_path):
    path = tmp_path / "suite.yaml"
    path.write_text("name: x\nbenchmarks:\n  - name: perf\n    params: {n: 1}\n")
    doc = load_yaml(path)
    benches = doc.data["benchmarks"]
    assert doc.line_of(doc.data, "benchmarks") == 2
    assert doc.line_of(benches, 0) == 3
    error = doc.error("bad thing", benches[0], "params", field="benchmarks[0].params")
    assert str(error) == f"{path}:4: field 'benchmarks[0].params': bad thing"
    with pytest.raises(BadInput, match="does not exist"):
        load_yaml(tmp_path / "missing.yaml")


def test_check_with_malformed_engines_yaml_exits_2(kitt_env):
    home = Path(kitt_env["KITT_HOME"])
    home.mkdir(parents=True)
    (home / "engines.yaml").write_text("image_overrides:\n  llamacpp: {x: 1}\n")
    result = run_kitt("engines", "check", "llamacpp", env=kitt_env)
    assert result.returncode == 2
    assert f"{home / 'engines.yaml'}:2: field 'image_overrides.llamacpp'" in result.stderr


def test_engines_list_json_and_check(kitt_env):
    result = run_kitt("engines", "list", "--json", env=kitt_env)
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["llamacpp"]["formats"] == ["gguf"]
    assert rows["llamacpp"]["modes"] == ["native", "docker"]
    assert rows["llamacpp"]["default_port"] == 8081
    assert rows["llamacpp-python"]["modes"] == ["native"]
    assert "prompt_logprobs" in rows["llamacpp-python"]["features"]
    assert {"native_binary", "image", "image_status"} <= set(rows["llamacpp"])
    check = run_kitt("engines", "check", "llamacpp", env=kitt_env)
    assert "image chosen because" in check.stdout
    assert check.returncode in (0, 1)


def test_models_tiny_writes_both_layouts(tmp_path):
    result = run_kitt("models", "tiny", str(tmp_path / "tiny"), "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    from kitt._engines.formats import detect_format

    assert detect_format(doc["gguf"]).format == "gguf"
    assert detect_format(doc["hf_dir"]).format == "safetensors"
