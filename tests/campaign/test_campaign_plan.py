"""Campaign files and plans: format matching, quantization filters, disk limits and
every mistake reported with FILE:LINE before anything starts. Nothing here starts an
engine (`--dry-run`, or runs postponed for lack of disk)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.campaigns import entries, kitt, state, write_campaign

from kitt._campaign.plan import detect_quantization, normalize_quant

TWO_MODELS = """\
name: plan
models:
  - models/tiny.gguf
  - {model: models/tiny-hf, label: tiny-hf}
engines: [llamacpp, vllm]
suite: hello.yaml
"""


def dry_run(work: dict, text: str) -> dict:
    path = write_campaign(work, text)
    result = kitt(work, "campaign", "run", str(path), "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    return {e["id"]: e for e in json.loads(result.stdout)["entries"]}


def test_models_go_to_the_engines_that_serve_their_format(work):
    plan = dry_run(work, TWO_MODELS)
    assert {k: (e["format"], e["action"]) for k, e in plan.items()} == {
        "tiny@llamacpp": ("gguf", "run"),
        "tiny@vllm": ("gguf", "skip"),
        "tiny-hf@llamacpp": ("safetensors", "skip"),
        "tiny-hf@vllm": ("safetensors", "run"),
    }
    assert plan["tiny@vllm"]["reason"] == "vllm serves safetensors, pytorch; the model is gguf"
    assert plan["tiny@llamacpp"]["quantization"] == "F32"
    assert plan["tiny-hf@vllm"]["quantization"] == "F32"  # config.json torch_dtype
    assert not (work["home"] / "campaigns").exists()  # a dry run starts and writes nothing

    table = kitt(work, "campaign", "run", str(work["dir"] / "campaign.yaml"), "--dry-run")
    assert table.returncode == 0, table.stderr
    assert "skip: llamacpp serves gguf; the model is safetensors" in table.stdout
    assert "2 run(s) planned, 2 pair(s) skipped" in table.stdout


def test_per_model_engines_and_suite_overrides(work):
    (work["dir"] / "other.yaml").write_text("name: other\nbenchmarks: [hello]\n")
    plan = dry_run(work, """\
name: overrides
models:
  - {model: models/tiny.gguf, engines: [small]}
  - {model: models/tiny.gguf, label: again, suite: other.yaml}
engines:
  - {name: llamacpp, label: small, options: {ctx_size: 256}, suite: other.yaml}
  - llamacpp
suite: hello.yaml
""")
    assert list(plan) == ["tiny@small", "again@small", "again@llamacpp"]
    assert plan["tiny@small"]["suite"].endswith("other.yaml")  # the engine's suite
    assert plan["again@llamacpp"]["suite"].endswith("other.yaml")  # the model's suite
    assert all(e["action"] == "run" for e in plan.values())


def test_quantization_filter(work):
    plan = dry_run(work, TWO_MODELS.replace("suite:", "filters: {quantizations: [q8_0, f16]}\n"
                                                       "suite:"))
    assert plan["tiny@llamacpp"]["action"] == "skip"
    assert plan["tiny@llamacpp"]["reason"] == "quantization F32 not in filter (q8_0, f16)"
    plan = dry_run(work, TWO_MODELS.replace("suite:", "filters: {quantizations: [F32]}\n"
                                                       "suite:"))
    assert [k for k, e in plan.items() if e["action"] == "run"] == ["tiny@llamacpp",
                                                                    "tiny-hf@vllm"]
    # A quantization given in the file wins over detection.
    plan = dry_run(work, TWO_MODELS.replace(
        "- models/tiny.gguf", "- {model: models/tiny.gguf, quantization: Q4_K_M}").replace(
        "suite:", "filters: {quantizations: [Q4_K_M]}\nsuite:"))
    assert [k for k, e in plan.items() if e["action"] == "run"] == ["tiny@llamacpp"]


def _gguf_with_file_type(path: Path, file_type) -> Path:
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_file_type(file_type)
    writer.add_tensor("w", np.zeros((4, 4), dtype=np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_quantization_detection(tmp_path, tiny_model):
    import gguf

    assert detect_quantization(str(tiny_model.gguf_path)) == "F32"
    q4 = _gguf_with_file_type(tmp_path / "q4.gguf", gguf.LlamaFileType.MOSTLY_Q4_K_M)
    assert detect_quantization(str(q4)) == "Q4_K_M"
    hf = tmp_path / "hf"
    hf.mkdir()
    for name in ("model.safetensors", "tokenizer.json"):
        (hf / name).write_bytes((tiny_model.hf_dir / name).read_bytes()
                                if (tiny_model.hf_dir / name).exists() else b"{}")
    (hf / "config.json").write_text(json.dumps({"torch_dtype": "bfloat16"}))
    assert detect_quantization(str(hf)) == "BF16"
    (hf / "config.json").write_text(json.dumps(
        {"torch_dtype": "float16", "quantization_config": {"quant_method": "awq"}}))
    assert detect_quantization(str(hf)) == "AWQ"
    assert detect_quantization("llama3.2:1b-instruct-q4_K_M") == "Q4_K_M"
    assert detect_quantization("qwen2:7b-fp16") == "F16"
    assert detect_quantization("llama3.2:1b") is None
    assert normalize_quant("mostly_q8_0") == normalize_quant("Q8_0") == "Q8_0"


@pytest.mark.parametrize(("text", "line", "field", "words"), [
    ("name: bad\nmodels: [models/tiny.gguf]\nengines: [llamacpp\n", 4, None,
     "invalid YAML"),
    ("name: bad\nmodels: [models/tiny.gguf]\nengines:\n  - llamacpp\n  - nosuch\n", 5,
     "engines[1].name", "unknown engine 'nosuch'"),
    ("name: bad\nmodels:\n  - models/tiny.gguf\n  - models/missing.gguf\nengines: [llamacpp]\n",
     4, "models[1].model", "no such file or folder"),
    ("name: bad\nmodels: [models/tiny.gguf]\nengines: [llamacpp]\nsuits: quick\n", 4,
     "suits", "unknown key 'suits'"),
    ("name: bad\nmodels: [models/tiny.gguf]\nengines:\n  - name: llamacpp\n"
     "    options: {ctx_sise: 4}\n", 5, "engines[0].options", "no option 'ctx_sise'"),
    ("name: bad\nmodels:\n  - {model: models/tiny.gguf, engines: [vllm]}\n"
     "engines: [llamacpp]\n", 3, "models[0].engines", "not one of the campaign's engines"),
    ("name: bad\nmodels: [models/tiny.gguf]\nengines: [llamacpp]\nsuite: nosuch\n", 4,
     "suite", "unknown suite 'nosuch'"),
    ("name: bad\nmodels: [models/tiny.gguf]\nengines: [llamacpp]\ndisk: {min_free_gb: -1}\n",
     4, "disk.min_free_gb", "expected a number of GB"),
    ("name: bad\nmodels: [models/tiny.gguf]\nengines: [llamacpp]\n"
     "notify: {webhook: ftp://x, on: [run_finished]}\n", 4, "notify.webhook", "not an http"),
    ("name: bad/name\nmodels: [models/tiny.gguf]\nengines: [llamacpp]\n", 1, "name",
     "must be letters"),
    ("models: [models/tiny.gguf]\nengines: [llamacpp]\n", 1, "name",
     "missing required key 'name'"),
])
def test_mistakes_name_file_line_and_field(work, text, line, field, words):
    path = write_campaign(work, text)
    result = kitt(work, "campaign", "run", str(path))
    assert result.returncode == 2, result.stderr
    assert f"{path}:{line}:" in result.stderr
    if field:
        assert f"field {field!r}" in result.stderr
    assert words in result.stderr
    assert not (work["home"] / "campaigns").exists()


def test_disk_limit_postpones_runs_and_resume_retries_them(work):
    # 10**9 GB free is more than any disk has: every run is postponed, nothing starts.
    text = TWO_MODELS.replace("suite:", "disk: {min_free_gb: 1000000000}\nsuite:")
    path = write_campaign(work, text)
    result = kitt(work, "campaign", "run", str(path))
    assert result.returncode == 1, result.stderr
    found = entries(work, "plan")
    assert found["tiny@llamacpp"]["status"] == "postponed"
    assert "disk.min_free_gb is 1e+09" in found["tiny@llamacpp"]["reason"]
    assert found["tiny@llamacpp"]["attempts"] == 0
    assert found["tiny@vllm"]["status"] == "skipped"
    status = kitt(work, "campaign", "status", "plan")
    assert "postponed" in status.stdout

    refused = kitt(work, "campaign", "run", str(path))
    assert refused.returncode == 2 and "--resume" in refused.stderr
    both = kitt(work, "campaign", "run", str(path), "--resume", "--restart")
    assert both.returncode == 2


def test_injected_free_space_postpones_in_process(tmp_path, monkeypatch):
    """The scheduler asks `free_bytes` before every run (tests inject it)."""
    from kitt._campaign.model import CampaignSpec, EngineSpec, Entry, ModelSpec
    from kitt._campaign.scheduler import run_campaign
    from kitt._campaign.state import new_state
    from kitt.records import EngineConfig

    monkeypatch.setenv("KITT_HOME", str(tmp_path / "home"))
    model = ModelSpec(reference=str(tmp_path / "m.gguf"), label="m")
    engine = EngineSpec("llamacpp", EngineConfig(engine="llamacpp"))
    spec = CampaignSpec(name="disk", path=tmp_path / "c.yaml", models=(model,),
                        engines=(engine,), output=tmp_path / "out", min_free_gb=5)
    plan = [Entry("m@llamacpp", model, engine, "quick", "gguf", "F32")]
    asked, said = [], []

    def free(path: Path) -> int:
        asked.append(path)
        return 4_999_999_999

    code = run_campaign(spec, plan, new_state(spec, plan), events=None, say=said.append,
                        warn=said.append, free_bytes=free)
    assert code == 1
    assert asked == [tmp_path / "out"]
    doc = json.loads((tmp_path / "home" / "campaigns" / "disk" / "state.json").read_text())
    assert doc["entries"][0]["status"] == "postponed"
    assert doc["entries"][0]["reason"].startswith("only 5.0 GB free")
    assert doc["status"] == "finished" and doc["all_passed"] is False


def test_status_and_list_without_campaigns(work):
    listed = kitt(work, "campaign", "list", "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == []
    missing = kitt(work, "campaign", "status", "nosuch")
    assert missing.returncode == 2 and "has no state" in missing.stderr
    assert state  # imported helper used by other tests


def test_a_suite_error_points_at_the_line_naming_it(work):
    path = write_campaign(work, """\
name: suites
models:
  - models/tiny.gguf
  - {model: models/tiny.gguf, label: b, suite: nosuch}
engines: [llamacpp]
suite: hello.yaml
""")
    result = kitt(work, "campaign", "run", str(path), "--dry-run")
    assert result.returncode == 2
    assert f"{path}:4: field 'models[1].suite': unknown suite 'nosuch'" in result.stderr


def test_upstream_engine_names_are_accepted_and_stored_as_ours(work):
    plan = dry_run(work, TWO_MODELS.replace("[llamacpp, vllm]", "[llama_cpp]"))
    [entry] = [e for e in plan.values() if e["action"] == "run"]
    # The file's spelling labels the entry; the engine is stored under its own name.
    assert (entry["id"], entry["engine_label"], entry["engine"]) == (
        "tiny@llama_cpp", "llama_cpp", "llamacpp")
