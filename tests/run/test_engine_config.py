"""Engine config files and profiles: layered, validated, with file/line errors."""

from __future__ import annotations

import pytest

from kitt._engines.config import ConfigLayer, load_config_file, load_profile, merge
from kitt.errors import BadInput
from kitt.records import EngineConfig


def test_profile_then_config_then_command_line(tmp_path, monkeypatch):
    monkeypatch.setenv("KITT_HOME", str(tmp_path))
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "big.yaml").write_text(
        "engine: llamacpp\nmode: docker\noptions: {ctx_size: 32768, threads: 8}\n")
    config = tmp_path / "mine.yaml"
    config.write_text("port: 9000\noptions: {threads: 2}\nextra_args: [--verbose]\n")
    merged = merge("llamacpp", [load_profile("big"), load_config_file(config),
                                ConfigLayer("cli", options={"n_gpu_layers": 0})])
    assert merged == EngineConfig(engine="llamacpp", mode="docker", port=9000,
                                  options={"ctx_size": 32768, "threads": 2, "n_gpu_layers": 0},
                                  extra_args=("--verbose",))


def test_builtin_profile_exists():
    assert load_profile("llamacpp-32k").options == {"ctx_size": 32768}


def test_config_for_another_engine_is_refused(tmp_path):
    config = tmp_path / "vllm.yaml"
    config.write_text("engine: vllm\n")
    with pytest.raises(BadInput, match="not 'llamacpp'"):
        merge("llamacpp", [load_config_file(config)])


@pytest.mark.parametrize(("text", "words"), [
    ("mode: cloud\n", [":1:", "unknown mode 'cloud'"]),
    ("port: 70000\n", [":1:", "port number"]),
    ("options: [1, 2]\n", [":1:", "expected a mapping"]),
    ("extra_args: --flag\n", [":1:", "list of strings"]),
    ("engine: llamacpp\nimage_tag: x\n", [":2:", "unknown key 'image_tag'"]),
])
def test_bad_config_files_name_line_and_problem(tmp_path, text, words):
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    with pytest.raises(BadInput) as caught:
        load_config_file(config)
    for word in words:
        assert word in str(caught.value)


def test_unknown_profile_lists_known_ones():
    with pytest.raises(BadInput) as caught:
        load_profile("nope")
    assert "llamacpp-32k" in caught.value.hint
