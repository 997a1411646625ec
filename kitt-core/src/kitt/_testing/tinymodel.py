"""KITT's own tiny llama model, written offline and deterministically.

No model can be downloaded where KITT's tests run, so KITT makes one: a two-layer
llama-architecture model with random weights and a small byte-level BPE vocabulary. It is
written twice with the same weights: as a GGUF file (llama.cpp, llama-cpp-python) and as a
Hugging Face folder (transformers, vLLM). Both layouts compute the same function, so greedy
tokens and logprobs agree across engines.

Properties tests rely on:

* Same seed, same bytes: weights come from the raw PCG64 bit stream (stable across numpy
  versions, unlike its distribution methods) and every file is written in a fixed order.
* Every request runs to `max_tokens`: the special tokens (BOS, EOS) get a logit far below
  the others (around -190), whatever the input. Hidden channel 0 carries a constant that
  no layer writes to, so after the final RMSNorm it is always positive; only the blocked
  tokens' output rows read it, with a large negative weight.
* Generated text is printable ASCII (plus newline): byte tokens outside that range are
  blocked the same way. Output is then always valid UTF-8, so streaming engines never hold
  back partial characters and every engine's detokenizer returns the same text.
* Output varies: the random weights are scaled so that logits spread over a few units.

Heavy imports (numpy, gguf, safetensors) happen inside the functions that need them, so
importing this module (and `kitt --help`) stays fast.
"""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    import numpy as np

__all__ = ["TinyModel", "write_tiny_model"]

# Dimensions. vLLM's CPU attention accepts head sizes 32, 64, 80, 96, 112, 128 (and a few
# larger); 64 is supported by every backend, and two heads make a wrong per-head Q/K
# permutation visible (one head would hide a head-order mistake).
HIDDEN = 128
N_HEADS = 2
N_KV_HEADS = 2
HEAD_DIM = HIDDEN // N_HEADS
N_LAYERS = 2
FFN = 256
CONTEXT_LENGTH = 2048
RMS_EPS = 1e-5
ROPE_THETA = 10000.0

# Vocabulary: 256 byte tokens (id == byte value), N_MERGES merges, then BOS and EOS.
# 384 is a multiple of 64, so engines that pad the vocabulary have nothing to pad.
N_MERGES = 126
BOS = "<s>"
EOS = "</s>"
VOCAB_SIZE = 256 + N_MERGES + 2
BOS_ID = VOCAB_SIZE - 2
EOS_ID = VOCAB_SIZE - 1

# Channel 0 of the residual stream holds this constant in every position (see module doc).
CONST_CHANNEL_VALUE = 4.0
BLOCKED_LOGIT_WEIGHT = -100.0

# A plain, role-tagged template. It uses only what both Jinja2 (transformers, vLLM,
# llama-cpp-python) and llama.cpp's minja understand. It starts with bos_token like Llama
# templates do; llama.cpp strips that when it adds BOS itself.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)

# The text the BPE merges are learned from: it only needs common English letter groups.
_BPE_CORPUS = """
The quick brown fox jumps over the lazy dog. KITT tests inference engines: it starts a
server, sends requests and measures how fast the tokens come back and whether the answers
are right. The engine should answer every request in the same way, on the same model, with
the same settings. There is nothing to download here, so the model is made on the spot from
a fixed seed, and then the same weights are written for each engine that wants to read them.
Hello, world! What is the time? It is ten past three in the afternoon, and the weather is
fine. Please write a short story about a robot that learns to sing. Once upon a time there
was a small robot in a large city, and every morning it listened to the birds in the park.
Numbers: 0 1 2 3 4 5 6 7 8 9 10 100 1000 2024. Questions and answers, prompts and outputs,
throughput and latency, tokens per second, time to first token.
"""

# Close to GPT-2's pre-tokenizer (which needs Unicode classes Python's re lacks): words
# keep their leading space. Used only to learn merges; the tokenizers apply the real one.
_PRETOKENIZE = re.compile(r"'(?:s|t|re|ve|m|ll|d)| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+")


@attrs.frozen
class TinyModel:
    """Where `write_tiny_model` put the model, and the facts clients need about it."""

    gguf_path: Path
    hf_dir: Path
    name: str
    vocab_size: int
    context_length: int


def write_tiny_model(out_dir: Path, *, seed: int = 0, name: str = "kitt-tiny") -> TinyModel:
    """Write `out_dir/<name>.gguf` and `out_dir/<name>-hf/` holding the same tiny model.

    Deterministic: the same `seed` gives byte-identical files. Existing files are replaced.
    """
    out_dir = Path(out_dir)
    hf_dir = out_dir / f"{name}-hf"
    hf_dir.mkdir(parents=True, exist_ok=True)
    gguf_path = out_dir / f"{name}.gguf"

    tokens, merges = build_vocab()
    weights = _hf_weights(seed, _blocked_ids(tokens))
    _write_gguf(gguf_path, name, tokens, merges, weights)
    _write_hf(hf_dir, name, tokens, merges, weights)
    return TinyModel(
        gguf_path=gguf_path,
        hf_dir=hf_dir,
        name=name,
        vocab_size=VOCAB_SIZE,
        context_length=CONTEXT_LENGTH,
    )


# --- vocabulary ---------------------------------------------------------------------------


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character map that byte-level BPE vocabularies use."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


def build_vocab() -> tuple[list[str], list[tuple[str, str]]]:
    """The token strings (index == id) and the BPE merges, in rank order.

    Merges are learned from a fixed corpus by plain BPE, ties broken by the pair itself,
    so the result is always the same.
    """
    byte_char = _bytes_to_unicode()
    words = Counter(
        tuple(byte_char[b] for b in piece.encode("utf-8"))
        for piece in _PRETOKENIZE.findall(_BPE_CORPUS)
    )
    tokens = [byte_char[b] for b in range(256)]
    known = set(tokens)
    merges: list[tuple[str, str]] = []
    while len(merges) < N_MERGES:
        pair = _best_pair(words, known)
        merges.append(pair)
        tokens.append(pair[0] + pair[1])
        known.add(pair[0] + pair[1])
        words = Counter({_merge_word(word, pair): n for word, n in words.items()})
    return [*tokens, BOS, EOS], merges


def _best_pair(words: Counter[tuple[str, ...]], known: set[str]) -> tuple[str, str]:
    pairs: Counter[tuple[str, str]] = Counter()
    for word, n in words.items():
        for pair in itertools.pairwise(word):
            # A pair whose concatenation is already a token would make a duplicate token.
            if pair[0] + pair[1] not in known:
                pairs[pair] += n
    if not pairs:
        raise RuntimeError("the BPE corpus is too small for the number of merges")
    return min(pairs, key=lambda p: (-pairs[p], p))


def _merge_word(word: tuple[str, ...], pair: tuple[str, str]) -> tuple[str, ...]:
    out: list[str] = []
    i = 0
    while i < len(word):
        if word[i : i + 2] == pair:
            out.append(pair[0] + pair[1])
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)


# --- weights ------------------------------------------------------------------------------


class _Uniform:
    """Uniform random floats from the raw PCG64 stream.

    `Generator.random()`/`normal()` may change between numpy versions; the bit generator's
    raw output may not, so this keeps files byte-identical across numpy releases.
    """

    def __init__(self, seed: int) -> None:
        import numpy as np

        self._bits = np.random.PCG64(seed)

    def __call__(self, shape: tuple[int, ...], std: float) -> np.ndarray:
        import numpy as np

        raw = self._bits.random_raw(int(np.prod(shape)))
        unit = (raw >> np.uint64(11)).astype(np.float64) * (1.0 / 2**53)  # [0, 1)
        # A uniform on [-a, a] has standard deviation a / sqrt(3).
        return ((unit * 2.0 - 1.0) * (std * 3**0.5)).reshape(shape).astype(np.float32)


def _blocked_ids(tokens: list[str]) -> list[int]:
    """Tokens the model never generates: specials and bytes that are not printable ASCII."""
    char_byte = {c: b for b, c in _bytes_to_unicode().items()}
    allowed = set(range(0x20, 0x7F)) | {ord("\n")}
    return [
        i
        for i, token in enumerate(tokens)
        if token in (BOS, EOS) or not all(char_byte[c] in allowed for c in token)
    ]


def _hf_weights(seed: int, blocked_ids: list[int]) -> dict[str, np.ndarray]:
    """All tensors under their Hugging Face names, in HF layout ([out, in])."""
    import numpy as np

    rand = _Uniform(seed)
    fan_in = HIDDEN**-0.5
    w: dict[str, np.ndarray] = {}

    embed = rand((VOCAB_SIZE, HIDDEN), 1.0)
    embed[:, 0] = CONST_CHANNEL_VALUE
    w["model.embed_tokens.weight"] = embed

    for i in range(N_LAYERS):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = np.ones(HIDDEN, np.float32)
        w[p + "self_attn.q_proj.weight"] = rand((N_HEADS * HEAD_DIM, HIDDEN), fan_in)
        w[p + "self_attn.k_proj.weight"] = rand((N_KV_HEADS * HEAD_DIM, HIDDEN), fan_in)
        w[p + "self_attn.v_proj.weight"] = rand((N_KV_HEADS * HEAD_DIM, HIDDEN), fan_in)
        w[p + "self_attn.o_proj.weight"] = _keep_channel0(rand((HIDDEN, HIDDEN), fan_in))
        w[p + "post_attention_layernorm.weight"] = np.ones(HIDDEN, np.float32)
        w[p + "mlp.gate_proj.weight"] = rand((FFN, HIDDEN), fan_in)
        w[p + "mlp.up_proj.weight"] = rand((FFN, HIDDEN), fan_in)
        w[p + "mlp.down_proj.weight"] = _keep_channel0(rand((HIDDEN, FFN), FFN**-0.5))

    w["model.norm.weight"] = np.ones(HIDDEN, np.float32)
    w["lm_head.weight"] = _lm_head(rand((VOCAB_SIZE, HIDDEN), 2.5 * fan_in), blocked_ids)
    return w


def _keep_channel0(proj: np.ndarray) -> np.ndarray:
    """Zero the output row of channel 0, so no layer changes the constant it carries."""
    proj[0, :] = 0.0
    return proj


def _lm_head(head: np.ndarray, blocked_ids: list[int]) -> np.ndarray:
    """Read channel 0 only for the blocked tokens, with a large negative weight.

    After the final RMSNorm channel 0 is CONST / rms(x) > 0 (CONST stays put while the
    other channels have a standard deviation below ~2), so blocked logits sit near
    -100 * 4 / 2 = -200 while the others spread over +-8: never sampled, even hot.
    Allowed tokens ignore channel 0, so it biases none of them.
    """
    head[:, 0] = 0.0
    head[blocked_ids, :] = 0.0
    head[blocked_ids, 0] = BLOCKED_LOGIT_WEIGHT
    return head


def _llama_cpp_permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """The Q/K row permutation llama.cpp's convert_hf_to_gguf.py applies.

    HF rotates halves of each head (rotate_half: pairs i and i + d/2); llama.cpp's llama
    graph rotates adjacent pairs (2i, 2i+1). Interleaving each head's two halves makes the
    GGUF layout compute exactly what the HF layout computes.
    """
    rows = w.shape[0]
    return w.reshape(n_head, 2, rows // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


# --- GGUF ---------------------------------------------------------------------------------


def _gguf_tensors(w: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
    """HF tensors renamed (and Q/K permuted) the way convert_hf_to_gguf.py does it."""
    out = [("token_embd.weight", w["model.embed_tokens.weight"])]
    for i in range(N_LAYERS):
        p, b = f"model.layers.{i}.", f"blk.{i}."
        q = _llama_cpp_permute(w[p + "self_attn.q_proj.weight"], N_HEADS)
        k = _llama_cpp_permute(w[p + "self_attn.k_proj.weight"], N_KV_HEADS)
        out += [
            (b + "attn_norm.weight", w[p + "input_layernorm.weight"]),
            (b + "attn_q.weight", q),
            (b + "attn_k.weight", k),
            (b + "attn_v.weight", w[p + "self_attn.v_proj.weight"]),
            (b + "attn_output.weight", w[p + "self_attn.o_proj.weight"]),
            (b + "ffn_norm.weight", w[p + "post_attention_layernorm.weight"]),
            (b + "ffn_gate.weight", w[p + "mlp.gate_proj.weight"]),
            (b + "ffn_up.weight", w[p + "mlp.up_proj.weight"]),
            (b + "ffn_down.weight", w[p + "mlp.down_proj.weight"]),
        ]
    out += [("output_norm.weight", w["model.norm.weight"]), ("output.weight", w["lm_head.weight"])]
    return out


def _write_gguf(
    path: Path,
    name: str,
    tokens: list[str],
    merges: list[tuple[str, str]],
    w: dict[str, np.ndarray],
) -> None:
    import gguf

    writer = gguf.GGUFWriter(path, "llama")
    writer.add_name(name)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_context_length(CONTEXT_LENGTH)
    writer.add_embedding_length(HIDDEN)
    writer.add_block_count(N_LAYERS)
    writer.add_feed_forward_length(FFN)
    writer.add_head_count(N_HEADS)
    writer.add_head_count_kv(N_KV_HEADS)
    writer.add_rope_dimension_count(HEAD_DIM)
    writer.add_rope_freq_base(ROPE_THETA)
    writer.add_layer_norm_rms_eps(RMS_EPS)
    writer.add_vocab_size(VOCAB_SIZE)

    writer.add_tokenizer_model("gpt2")
    # "gpt-2" selects GPT-2's pre-tokenizer regex, the one tokenizers' ByteLevel uses.
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(tokens)
    normal, control = gguf.TokenType.NORMAL, gguf.TokenType.CONTROL
    writer.add_token_types([control if t in (BOS, EOS) else normal for t in tokens])
    writer.add_token_merges([f"{a} {b}" for a, b in merges])
    writer.add_bos_token_id(BOS_ID)
    writer.add_eos_token_id(EOS_ID)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)

    for tensor_name, data in _gguf_tensors(w):
        writer.add_tensor(tensor_name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


# --- Hugging Face folder ------------------------------------------------------------------


def _write_hf(
    hf_dir: Path,
    name: str,
    tokens: list[str],
    merges: list[tuple[str, str]],
    w: dict[str, np.ndarray],
) -> None:
    from safetensors.numpy import save_file

    save_file(w, str(hf_dir / "model.safetensors"), metadata={"format": "pt"})
    _write_json(hf_dir / "config.json", _hf_config())
    _write_json(hf_dir / "generation_config.json", _generation_config())
    _write_json(hf_dir / "tokenizer.json", _tokenizer_json(tokens, merges))
    _write_json(hf_dir / "tokenizer_config.json", _tokenizer_config(name))


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _hf_config() -> dict[str, Any]:
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": HIDDEN,
        "intermediate_size": FFN,
        "num_hidden_layers": N_LAYERS,
        "num_attention_heads": N_HEADS,
        "num_key_value_heads": N_KV_HEADS,
        "head_dim": HEAD_DIM,
        "hidden_act": "silu",
        "max_position_embeddings": CONTEXT_LENGTH,
        "rms_norm_eps": RMS_EPS,
        "rope_theta": ROPE_THETA,
        "rope_scaling": None,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "mlp_bias": False,
        "tie_word_embeddings": False,
        "vocab_size": VOCAB_SIZE,
        "bos_token_id": BOS_ID,
        "eos_token_id": EOS_ID,
        "initializer_range": 0.02,
        "torch_dtype": "float32",
        "use_cache": True,
    }


def _generation_config() -> dict[str, Any]:
    return {"bos_token_id": BOS_ID, "eos_token_id": EOS_ID}


def _tokenizer_json(tokens: list[str], merges: list[tuple[str, str]]) -> dict[str, Any]:
    """A `tokenizers` byte-level BPE (GPT-2 style) that prepends BOS like the GGUF does."""

    def special(token: str, token_id: int) -> dict[str, Any]:
        return {
            "id": token_id,
            "content": token,
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }

    bos_only = [{"SpecialToken": {"id": BOS, "type_id": 0}}]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [special(BOS, BOS_ID), special(EOS, EOS_ID)],
        "normalizer": None,
        "pre_tokenizer": {
            "type": "ByteLevel",
            "add_prefix_space": False,
            "trim_offsets": True,
            "use_regex": True,
        },
        "post_processor": {
            "type": "Sequence",
            "processors": [
                {
                    "type": "ByteLevel",
                    "add_prefix_space": False,
                    "trim_offsets": False,
                    "use_regex": True,
                },
                {
                    "type": "TemplateProcessing",
                    "single": [*bos_only, {"Sequence": {"id": "A", "type_id": 0}}],
                    "pair": [
                        *bos_only,
                        {"Sequence": {"id": "A", "type_id": 0}},
                        {"SpecialToken": {"id": BOS, "type_id": 1}},
                        {"Sequence": {"id": "B", "type_id": 1}},
                    ],
                    "special_tokens": {BOS: {"id": BOS, "ids": [BOS_ID], "tokens": [BOS]}},
                },
            ],
        },
        "decoder": {
            "type": "ByteLevel",
            "add_prefix_space": True,
            "trim_offsets": True,
            "use_regex": True,
        },
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": False,
            "vocab": {token: i for i, token in enumerate(tokens[:-2])},
            # Space-separated strings: the form every tokenizers version reads.
            "merges": [f"{a} {b}" for a, b in merges],
        },
    }


def _tokenizer_config(name: str) -> dict[str, Any]:
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": BOS,
        "eos_token": EOS,
        "pad_token": None,
        "unk_token": None,
        "add_bos_token": True,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": CONTEXT_LENGTH,
        "chat_template": CHAT_TEMPLATE,
        "name_or_path": name,
        "added_tokens_decoder": {
            str(BOS_ID): _added_token(BOS),
            str(EOS_ID): _added_token(EOS),
        },
    }


def _added_token(content: str) -> dict[str, Any]:
    return {
        "content": content,
        "lstrip": False,
        "normalized": False,
        "rstrip": False,
        "single_word": False,
        "special": True,
    }
