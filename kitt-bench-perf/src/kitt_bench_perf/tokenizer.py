"""Tokenizers for building prompts of exact lengths and counting output tokens after a run.

Anything with `encode(str) -> list[int]` and `decode(list[int]) -> str` is a `Tokenizer`:
the engine's own (`EngineTokenizer`, through its `/tokenize` endpoint) or a local Hugging
Face `tokenizer.json` (`HFTokenizer`, needs the optional `tokenizers` package).
Neither is used on the request hot path: prompts are built before a run and output tokens
are counted after it, so tokenizing never loads the engine during measurement.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import attrs

from kitt_bench_perf.records import RequestRecord, TokenSource


@runtime_checkable
class Tokenizer(Protocol):
    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...


class TokenizerError(RuntimeError):
    pass


class EngineTokenizer:
    """The engine's tokenizer over HTTP: vLLM (`/tokenize` -> `tokens`, `/detokenize` ->
    `prompt`) and llama.cpp (`/tokenize` -> `tokens`, `/detokenize` -> `content`).
    Special tokens (BOS) are not added: prompts are text that the server tokenizes again."""

    def __init__(self, base_url: str, model: str | None = None, timeout_s: float = 30) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout_s = timeout_s

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if self.model is not None:
            body = {"model": self.model, **body}
        request = urllib.request.Request(
            self.base_url + path, data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"}, method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode("utf-8", "replace")
            raise TokenizerError(f"{self.base_url}{path}: HTTP {exc.code}: {detail}") from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise TokenizerError(f"{self.base_url}{path}: {exc}") from exc

    def encode(self, text: str) -> list[int]:
        # vLLM reads `prompt` and `add_special_tokens`; llama.cpp reads `content` and
        # `add_special`. Each ignores the other's keys.
        reply = self._post("/tokenize", {"prompt": text, "content": text,
                                         "add_special_tokens": False, "add_special": False})
        tokens = reply.get("tokens")
        if not isinstance(tokens, list):
            raise TokenizerError(f"{self.base_url}/tokenize: no token list in {reply!r:.200}")
        # llama.cpp may return [{"id": .., "piece": ..}] when asked for pieces.
        return [t["id"] if isinstance(t, dict) else int(t) for t in tokens]

    def decode(self, ids: list[int]) -> str:
        reply = self._post("/detokenize", {"tokens": list(ids)})
        text = reply.get("prompt", reply.get("content"))
        if not isinstance(text, str):
            raise TokenizerError(f"{self.base_url}/detokenize: no text in {reply!r:.200}")
        return text


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
