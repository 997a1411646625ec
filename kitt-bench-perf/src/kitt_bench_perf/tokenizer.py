"""Tokenizers for building prompts of exact lengths and counting output tokens after a run.

Anything with `encode(str) -> list[int]` and `decode(list[int]) -> str` is a
`kitt.Tokenizer`: the engine's own (`kitt.EngineTokenizer`, the endpoint its plugin
declares) or a local Hugging Face `tokenizer.json` (`HFTokenizer`, needs the optional
`tokenizers` package). Neither is used on the request hot path: prompts are built before
a run and output tokens are counted after it, so tokenizing never loads the engine during
measurement.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import attrs

from kitt import Tokenizer, TokenizerError
from kitt_bench_perf.records import RequestRecord, TokenSource


class HFTokenizer:
    """A local Hugging Face `tokenizer.json` (file, or a folder holding one)."""

    def __init__(self, path: str | Path) -> None:
        try:
            from tokenizers import Tokenizer as _Tokenizer
        except ImportError as exc:
            raise TokenizerError(
                "HFTokenizer needs the 'tokenizers' package: pip install tokenizers"
            ) from exc
        path = Path(path)
        if path.is_dir():
            path = path / "tokenizer.json"
        if not path.is_file():
            raise TokenizerError(f"no tokenizer.json at {path}")
        self._tok = _Tokenizer.from_file(str(path))

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text, add_special_tokens=False).ids

    def decode(self, ids: list[int]) -> str:
        return self._tok.decode(list(ids), skip_special_tokens=False)


def count_output_tokens(records: Iterable[RequestRecord],
                        tokenizer: Tokenizer) -> list[RequestRecord]:
    """Replace chunk-count estimates by tokenizer counts where the server sent no usage.

    Only records whose output count came from chunks and whose text was captured change;
    their source becomes `tokenizer`. Reasoning text counts as output, as servers count it.
    """
    out = []
    for record in records:
        if (record.output_tokens_source is TokenSource.CHUNKS
                and (record.text is not None or record.reasoning is not None)):
            count = sum(len(tokenizer.encode(part))
                        for part in (record.reasoning, record.text) if part)
            record = attrs.evolve(record, output_tokens=count,
                                  output_tokens_source=TokenSource.TOKENIZER)
        out.append(record)
    return out
