"""Engine aliases: upstream KITT's names (`llama_cpp`) work wherever an engine is named,
and KITT stores the engine's own name, so queries do not split between spellings."""

from __future__ import annotations

import json

from support import run_kitt

from kitt import Engine, plugins
from kitt._engines.config import ConfigLayer, merge
from kitt._engines.images import load_engines_file


def test_the_registry_answers_to_aliases_and_lists_each_engine_once():
    engines = plugins.engines()
    assert "llama_cpp" in engines and engines["llama_cpp"].name == "llamacpp"
    assert engines.get("llama.cpp").name == "llamacpp"
    assert "llama_cpp" not in list(engines) and list(engines).count("llamacpp") == 1
    assert plugins.engine_name("llama_cpp") == "llamacpp"
    assert plugins.engine_name("llamacpp") == "llamacpp"
    assert plugins.engine_name("nope") == "nope" and "nope" not in engines


def test_an_alias_never_shadows_an_engine_name_nor_a_first_claim():
    class A(Engine):
        name, formats, aliases = "a", ("gguf",), ("b", "shared")

    class B(Engine):
        name, formats, aliases = "b", ("gguf",), ("shared",)

    engines = plugins.Engines({"a": A(), "b": B()})
    assert engines["b"].name == "b"  # b is an engine's name: A's alias does not take it
    assert engines["shared"].name == "a"  # first claim wins
    assert engines.aliases == {"shared": "a"}


def test_configs_store_the_engines_own_name():
    layer = ConfigLayer(source="upstream.yaml", engine="llama_cpp", options={"ctx_size": 8})
    config = merge("llama_cpp", [layer])
    assert config.engine == "llamacpp" and config.options == {"ctx_size": 8}
    assert merge("llamacpp", [layer]).engine == "llamacpp"  # either spelling matches


def test_engines_yaml_keys_may_use_upstream_names(tmp_path):
    path = tmp_path / "engines.yaml"
    path.write_text("image_overrides:\n  llama_cpp: ghcr.io/ggml-org/llama.cpp:server-cuda\n"
                    "engine_options:\n  llama_cpp: {ctx_size: 8192}\n")
    found = load_engines_file(path)
    assert found.image_overrides == {"llamacpp": "ghcr.io/ggml-org/llama.cpp:server-cuda"}
    assert found.engine_options == {"llamacpp": {"ctx_size": 8192}}


def test_engines_list_shows_the_aliases(tmp_path):
    result = run_kitt("engines", "list", "--json", env={"KITT_HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["llamacpp"]["aliases"] == ["llama_cpp", "llama.cpp", "llama-cpp"]
    assert "llama_cpp" not in rows
