"""Workloads: exact synthetic prompt lengths, JSONL prompts and tokenizer adapters."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from kitt import Tokenizer, TokenizerError
from kitt_bench_perf.tokenizer import HFTokenizer
from kitt_bench_perf.workload import (
    LengthDist,
    RequestSpec,
    WorkloadError,
    load_jsonl,
    synthetic_requests,
)


class CharTokenizer:
    def encode(self, text: str) -> list[int]:
        return [ord(c) for c in text]

    def decode(self, ids: list[int]) -> str:
        return "".join(map(chr, ids))


@pytest.fixture(scope="module")
def bpe_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small byte-level BPE tokenizer.json trained here: merges make token boundaries
    shift when a decoded prefix is encoded again, which the prompt builder must handle."""
    tokenizers = pytest.importorskip("tokenizers")
    from kitt_bench_perf.workload import _WORDS

    tok = tokenizers.Tokenizer(tokenizers.models.BPE())
    tok.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=400, initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([" ".join(_WORDS[i:] + _WORDS[:i]) for i in range(50)], trainer)
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    tok.save(str(path))
    return path


def test_char_tokenizer_prompts_have_exact_lengths_and_are_seeded() -> None:
    tok = CharTokenizer()
    specs = synthetic_requests(tok, 50, LengthDist(100, 20, min=50, max=150),
                               LengthDist(30, 5, min=10, max=40), seed=1)
    assert all(len(tok.encode(s.prompt)) == s.input_tokens for s in specs)
    assert all(50 <= s.input_tokens <= 150 and 10 <= s.output_tokens <= 40 for s in specs)
    assert specs == synthetic_requests(tok, 50, LengthDist(100, 20, min=50, max=150),
                                       LengthDist(30, 5, min=10, max=40), seed=1)
    assert specs != synthetic_requests(tok, 50, LengthDist(100, 20, min=50, max=150),
                                       LengthDist(30, 5, min=10, max=40), seed=2)
    assert len({s.prompt for s in specs}) == 50  # distinct: no shared prefix to cache


def test_length_distribution_statistics() -> None:
    import random

    rng = random.Random(0)
    dist = LengthDist(200, 40, min=100, max=300)
    values = [dist.sample(rng) for _ in range(5000)]
    assert statistics.fmean(values) == pytest.approx(200, abs=3)
    assert statistics.pstdev(values) == pytest.approx(40, rel=0.1)
    assert min(values) >= 100 and max(values) <= 300
    assert {LengthDist(7).sample(rng) for _ in range(10)} == {7}
    clipped = LengthDist(5, 100, min=1, max=10)
    assert all(1 <= clipped.sample(rng) <= 10 for _ in range(200))
    with pytest.raises(WorkloadError):
        LengthDist(5, min=10)
    with pytest.raises(WorkloadError):
        LengthDist(50, max=10)


def test_bpe_prompts_have_exact_lengths(bpe_tokenizer: Path) -> None:
    tok = HFTokenizer(bpe_tokenizer)
    assert isinstance(tok, Tokenizer)
    specs = synthetic_requests(tok, 40, LengthDist(64, 30, min=1, max=200), LengthDist(16))
    for spec in specs:
        assert len(tok.encode(spec.prompt)) == spec.input_tokens
    lengths = [s.input_tokens for s in specs]
    target = synthetic_requests(CharTokenizer(), 40, LengthDist(64, 30, min=1, max=200),
                                LengthDist(16))
    # Same seed, same sampled lengths, whatever the tokenizer.
    assert lengths == [s.input_tokens for s in target]
    assert HFTokenizer(bpe_tokenizer.parent).encode("time") == tok.encode("time")


def test_hf_tokenizer_missing_file(tmp_path: Path) -> None:
    pytest.importorskip("tokenizers")
    with pytest.raises(TokenizerError, match=r"no tokenizer\.json"):
        HFTokenizer(tmp_path)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "prompts.jsonl"
    path.write_text(text, encoding="utf-8")
    return path


def test_jsonl_prompts(tmp_path: Path) -> None:
    path = write(tmp_path, '{"prompt": "Hello", "output_tokens": 5}\n\n'
                           '{"prompt": "Größe?", "output_tokens": null}\n{"prompt": "x"}\n')
    assert load_jsonl(path) == [RequestSpec("Hello", 5), RequestSpec("Größe?"),
                                RequestSpec("x")]
    assert [s.input_tokens for s in load_jsonl(path, CharTokenizer())] == [5, 6, 1]


@pytest.mark.parametrize(("text", "message"), [
    ('{"prompt": "a"}\n{"prompt": "b",}\n', ":2: not valid JSON"),
    ('["a"]\n', ":1: expected a JSON object, got list"),
    ('{"prompt": "a"}\n\n{"output_tokens": 3}\n', ":3: 'prompt' must be a non-empty string"),
    ('{"prompt": ""}\n', ":1: 'prompt' must be a non-empty string"),
    ('{"prompt": "a", "output_tokens": 0}\n', ":1: 'output_tokens' must be a positive integer"),
    ('{"prompt": "a", "output_tokens": "5"}\n', ":1: 'output_tokens' must be a positive"),
    ('{"prompt": "a", "max_tokens": 5}\n', ":1: unknown keys ['max_tokens']"),
    ("\n\n", ": no prompts"),
])
def test_jsonl_errors_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(WorkloadError) as info:
        load_jsonl(path)
    assert str(info.value).startswith(str(path))
    assert message in str(info.value)


def test_jsonl_missing_file(tmp_path: Path) -> None:
    with pytest.raises(WorkloadError, match="cannot read"):
        load_jsonl(tmp_path / "nope.jsonl")
