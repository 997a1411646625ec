"""Format detection from content, and the preflight matrix: every format x engine pair,
plus corrupt and missing models. Nothing here starts a process."""

from __future__ import annotations

import json
import shutil
import struct
import zipfile
from pathlib import Path

import pytest
from support import processes_mentioning, run_kitt

from kitt import Engine
from kitt._engines.formats import detect_format
from kitt._engines.preflight import check_model
from kitt.errors import BadInput


class _Fake(Engine):
    def __init__(self, name: str, formats: tuple[str, ...]):
        self.name = name  # type: ignore[misc]
        self.formats = formats  # type: ignore[misc]


# The formats each engine family declares (vLLM, TGI, Ollama come as their own plugins).
ENGINES = {
    "llamacpp": ("gguf",),
    "llamacpp-python": ("gguf",),
    "vllm": ("safetensors", "pytorch"),
    "tgi": ("safetensors", "pytorch"),
    "ollama": ("gguf", "ollama"),
}


def _engine(name: str) -> Engine:
    if name.startswith("llamacpp"):
        from kitt_engine_llamacpp import LlamaCppPython, LlamaServer

        return LlamaServer() if name == "llamacpp" else LlamaCppPython()
    return _Fake(name, ENGINES[name])


def _safetensors_bytes(header: dict | None = None) -> bytes:
    raw = json.dumps(header or {"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})
    return struct.pack("<Q", len(raw)) + raw.encode() + b"\0" * 4


def _pytorch_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:  # torch.save's layout, without torch
        archive.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
        archive.writestr("archive/version", "3\n")
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory, tiny_model) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("formats")
    gguf = tiny_model.gguf_path
    made: dict[str, Path] = {"gguf": gguf, "hf_safetensors": tiny_model.hf_dir}
    # A model whose file name lies: GGUF content under a .bin name.
    made["gguf_renamed"] = root / "weights.bin"
    shutil.copy(gguf, made["gguf_renamed"])
    split = root / "split"
    split.mkdir()
    for i in (1, 2):
        shutil.copy(gguf, split / f"m-{i:05d}-of-00002.gguf")
    made["gguf_split"] = split / "m-00001-of-00002.gguf"
    made["safetensors_file"] = root / "single.safetensors"
    made["safetensors_file"].write_bytes(_safetensors_bytes())
    made["pytorch_file"] = _pytorch_zip(root / "model.pt")
    made["pytorch_legacy"] = root / "legacy.bin"
    made["pytorch_legacy"].write_bytes(b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.")
    hf_pt = root / "hf-pytorch"
    hf_pt.mkdir()
    shutil.copy(tiny_model.hf_dir / "config.json", hf_pt)
    _pytorch_zip(hf_pt / "pytorch_model.bin")
    made["hf_pytorch"] = hf_pt
    sharded = root / "hf-sharded"
    sharded.mkdir()
    shutil.copy(tiny_model.hf_dir / "config.json", sharded)
    for i in (1, 2):
        (sharded / f"model-{i:05d}-of-00002.safetensors").write_bytes(_safetensors_bytes())
    (sharded / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
        "a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    made["hf_sharded"] = sharded
    gguf_dir = root / "gguf-dir"
    gguf_dir.mkdir()
    shutil.copy(gguf, gguf_dir / "model.gguf")
    made["gguf_folder"] = gguf_dir
    return made


EXPECTED = {
    "gguf": ("gguf", "file"), "gguf_renamed": ("gguf", "file"),
    "gguf_split": ("gguf", "sharded"), "gguf_folder": ("gguf", "file"),
    "hf_safetensors": ("safetensors", "folder"), "hf_pytorch": ("pytorch", "folder"),
    "hf_sharded": ("safetensors", "folder"), "safetensors_file": ("safetensors", "file"),
    "pytorch_file": ("pytorch", "file"), "pytorch_legacy": ("pytorch", "file"),
}


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_format_is_detected_from_content(models, kind):
    info = detect_format(models[kind])
    assert (info.format, info.layout) == EXPECTED[kind], info
    assert info.size_bytes > 0
    if kind in ("gguf_split", "hf_sharded"):
        assert len(info.files) == 2


@pytest.mark.parametrize("tag", ["llama3.2:1b", "library/qwen2:0.5b", "hf.co/org/repo:Q4_K_M"])
def test_ollama_tags_are_references_not_paths(tag):
    info = detect_format(tag)
    assert (info.format, info.layout, info.path) == ("ollama", "tag", None)


@pytest.mark.parametrize("engine_name", sorted(ENGINES))
@pytest.mark.parametrize("kind", [*sorted(EXPECTED), "ollama"])
def test_preflight_matrix(models, kind, engine_name):
    engine = _engine(engine_name)
    model = "llama3.2:1b" if kind == "ollama" else str(models[kind])
    fmt = "ollama" if kind == "ollama" else EXPECTED[kind][0]
    if fmt in engine.formats:
        assert check_model(engine, model).format == fmt
        return
    with pytest.raises(BadInput) as caught:
        check_model(engine, model)
    message = str(caught.value)
    assert model in message and fmt in message, message
    assert ", ".join(engine.formats) in message, message
    assert caught.value.hint, "a fix must be suggested"
    assert caught.value.exit_code == 2


def _broken(tmp_path: Path, gguf: Path) -> dict[str, tuple[Path, str]]:
    data = gguf.read_bytes()
    cases: dict[str, tuple[bytes | None, str]] = {
        "truncated_header": (data[:12], "truncated GGUF header"),
        "bad_version": (data[:4] + struct.pack("<I", 99) + data[8:], "unsupported GGUF version"),
        "huge_counts": (data[:8] + struct.pack("<QQ", 2**60, 2**60) + data[24:],
                        "corrupt GGUF header"),
        "truncated_tensors": (data[:40], "truncated GGUF file"),
        "empty_file": (b"", "the file is empty"),
        "garbage": (b"hello world, not a model" * 10, "unknown file format"),
        "bad_safetensors": (struct.pack("<Q", 50) + b"{not json" + b" " * 41,
                            "corrupt safetensors header"),
    }
    out = {}
    for name, (content, expected) in cases.items():
        path = tmp_path / f"{name}.gguf"
        path.write_bytes(content)
        out[name] = (path, expected)
    empty = tmp_path / "empty-folder"
    empty.mkdir()
    out["empty_folder"] = (empty, "the folder is empty")
    config_only = tmp_path / "config-only"
    config_only.mkdir()
    (config_only / "config.json").write_text("{}")
    out["config_without_weights"] = (config_only, "no weights")
    out["missing"] = (tmp_path / "nope.gguf", "no such file or folder")
    split = tmp_path / "split"
    split.mkdir()
    shutil.copy(gguf, split / "m-00001-of-00003.gguf")
    out["missing_shard"] = (split / "m-00001-of-00003.gguf", "missing shard")
    return out


@pytest.mark.parametrize("engine_name", ["llamacpp", "vllm"])
@pytest.mark.parametrize("case", ["truncated_header", "bad_version", "huge_counts",
                                  "truncated_tensors", "empty_file", "garbage", "bad_safetensors",
                                  "empty_folder", "config_without_weights", "missing",
                                  "missing_shard"])
def test_corrupt_and_missing_models_stop_preflight(tmp_path, tiny_model, case,
                                                   engine_name):
    path, expected = _broken(tmp_path, tiny_model.gguf_path)[case]
    with pytest.raises(BadInput) as caught:
        check_model(_engine(engine_name), str(path))
    message = str(caught.value)
    assert expected in message and str(path) in message, message
    assert "fix:" in message


@pytest.mark.parametrize("mode", ["native", "docker"])
def test_serve_with_wrong_format_exits_2_before_starting(tiny_model, kitt_env, mode):
    result = run_kitt("engines", "serve", "-m", str(tiny_model.hf_dir), "-e", "llamacpp",
                      "--mode", mode, "--port", "1", env=kitt_env)
    assert result.returncode == 2, result.stderr
    assert "is safetensors (folder" in result.stderr
    assert "engine llamacpp serves: gguf" in result.stderr
    assert "fix: " in result.stderr and "convert" in result.stderr
    assert not processes_mentioning(str(tiny_model.hf_dir))
    assert not (Path(kitt_env["KITT_HOME"]) / "logs").exists()


def test_unknown_engine_and_bad_option_exit_2(tiny_model, kitt_env):
    result = run_kitt("engines", "serve", "-m", str(tiny_model.gguf_path), "-e", "nope",
                      env=kitt_env)
    assert result.returncode == 2
    assert "engine 'nope' is not installed" in result.stderr
    result = run_kitt("engines", "serve", "-m", str(tiny_model.gguf_path), "-e", "llamacpp",
                      "-O", "threads=zero", env=kitt_env)
    assert result.returncode == 2
    assert "threads must be an integer" in result.stderr
    result = run_kitt("engines", "serve", "-m", str(tiny_model.gguf_path), "-e", "llamacpp",
                      "-O", "thread=2", env=kitt_env)
    assert result.returncode == 2
    assert "no option 'thread'" in result.stderr
