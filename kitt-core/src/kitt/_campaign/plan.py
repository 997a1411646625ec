"""Planning: models x engines, kept where the engine serves the model's format (the
detection preflight uses) and the model passes the quantization filter."""

from __future__ import annotations

import json
import re
from pathlib import Path

from kitt._campaign.model import CampaignSpec, EngineSpec, Entry, ModelSpec

# Ollama tags often name the quantization: llama3.2:1b-instruct-q4_K_M, qwen2:7b-fp16.
_TAG_QUANT = re.compile(r"(?i)(?:^|[-_:])(iq\d_[a-z]+|q\d_k_[sml]|q\d_k|q\d_\d|bf16|fp16|f16|"
                        r"fp32|f32)$")
_HF_DTYPES = {"float32": "F32", "float16": "F16", "bfloat16": "BF16", "float8_e4m3fn": "FP8"}


def make_plan(spec: CampaignSpec) -> list[Entry]:
    """Every (model, engine) pair in file order; pairs left out carry `skip_reason`."""
    from kitt import plugins
    from kitt._engines.formats import detect_format

    installed = plugins.engines()
    wanted = {normalize_quant(q) for q in spec.quantizations or ()}
    entries = []
    for model in spec.models:
        info = detect_format(model.reference)
        quant = model.quantization or detect_quantization(model.reference)
        for engine in spec.engines:
            if model.engines is not None and engine.label not in model.engines:
                continue  # the model chose its engines: other pairs are not part of it
            reason = _format_reason(info, installed[engine.config.engine])
            if reason is None and spec.quantizations is not None:
                reason = _quant_reason(quant, wanted, spec.quantizations)
            entries.append(Entry(
                id=f"{model.label}@{engine.label}", model=model, engine=engine,
                suite=_suite(spec, model, engine), format=info.format,
                quantization=quant, skip_reason=reason))
    return entries


def _suite(spec: CampaignSpec, model: ModelSpec, engine: EngineSpec) -> str:
    return model.suite or engine.suite or spec.suite


def _format_reason(info, engine) -> str | None:
    if info.format in engine.formats:
        return None
    if any(fmt in engine.formats for fmt in info.alternatives):
        return None  # preflight picks the other format from the same folder
    return f"{engine.name} serves {', '.join(engine.formats)}; the model is {info.format}"


def _quant_reason(quant: str | None, wanted: set[str], given: tuple[str, ...]
                  ) -> str | None:
    if quant is None:
        return ("quantization unknown, filter is " + ", ".join(given)
                + " (set `quantization:` on the model)")
    if normalize_quant(quant) not in wanted:
        return f"quantization {quant} not in filter ({', '.join(given)})"
    return None


def normalize_quant(name: str) -> str:
    """One spelling per quantization: q4_k_m -> Q4_K_M, fp16 -> F16, MOSTLY_Q8_0 -> Q8_0."""
    text = name.strip().upper().removeprefix("MOSTLY_").removeprefix("ALL_")
    return {"FP16": "F16", "FP32": "F32", "FLOAT16": "F16", "FLOAT32": "F32",
            "BFLOAT16": "BF16"}.get(text, text)


def detect_quantization(reference: str) -> str | None:
    """Q4_K_M, F16, ...: a GGUF's `general.file_type` (else its most common tensor type);
    a Hugging Face folder's `quantization_config.quant_method` (AWQ, GPTQ, ...) or its
    `torch_dtype`; an Ollama tag's suffix. None when nothing says."""
    from kitt._engines.formats import detect_format

    info = detect_format(reference)
    try:
        if info.format == "gguf" and info.path is not None:
            return _gguf_quant(info.path)
        if info.format in ("safetensors", "pytorch") and info.path is not None:
            folder = info.path if info.path.is_dir() else info.path.parent
            return _hf_quant(folder / "config.json")
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None  # an unreadable header just means "unknown" for filtering
    if info.format == "ollama":
        match = _TAG_QUANT.search(reference)
        return normalize_quant(match.group(1)) if match else None
    return None


def _gguf_quant(path: Path) -> str | None:
    from collections import Counter

    import gguf  # heavy (numpy): only when a campaign plans a GGUF

    reader = gguf.GGUFReader(path)
    field = reader.fields.get("general.file_type")
    if field is not None and field.data:
        value = int(field.parts[field.data[0]][0])
        try:
            return normalize_quant(gguf.LlamaFileType(value).name)
        except ValueError:
            pass
    # No file type: the weights' most common type (norms and embeddings are often F32).
    types = Counter(t.tensor_type.name for t in reader.tensors if len(t.shape) > 1)
    return normalize_quant(types.most_common(1)[0][0]) if types else None


def _hf_quant(config_path: Path) -> str | None:
    if not config_path.is_file():
        return None
    config = json.loads(config_path.read_text(encoding="utf-8"))
    quant = config.get("quantization_config")
    if isinstance(quant, dict) and quant.get("quant_method"):
        return str(quant["quant_method"]).upper()
    dtype = config.get("torch_dtype") or config.get("dtype")
    return _HF_DTYPES.get(str(dtype), str(dtype).upper()) if dtype else None
