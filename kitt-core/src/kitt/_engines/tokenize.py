"""The engine's own tokenizer over HTTP: the one client of every engine's tokenize endpoint,
driven by the `kitt.TokenizeApi` the engine plugin declares (`Engine.tokenize_api`).

Benchmarks build prompts of exact token lengths and count output tokens with it, quality
scoring finds where a continuation starts, and the conformance check tries it. Stdlib HTTP
only; every request has a timeout.
"""

from __future__ import annotations

import json
from typing import Any, Protocol, runtime_checkable

from kitt.engine import TokenizeApi


@runtime_checkable
class Tokenizer(Protocol):
    """Anything that turns text into token ids and back."""

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...


class TokenizerError(RuntimeError):
    """A tokenize endpoint that did not answer, or answered something else."""


class EngineTokenizer:
    """The tokenizer of the server at `base_url`, as `api` describes its endpoints.

    Special tokens are never added: prompts are text that the server tokenizes again. A
    server that always puts a BOS token first shows it when tokenizing the empty string;
    that prefix is stripped from every encoding.
    """

    def __init__(self, base_url: str, api: TokenizeApi, model: str | None = None,
                 timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.api = api
        self.model = model
        self.timeout_s = timeout_s
        self._prefix: list[int] | None = None

    @property
    def can_decode(self) -> bool:
        return self.api.detokenize_path is not None

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        import urllib.error
        import urllib.request

        if self.api.send_model and self.model is not None:
            body = {"model": self.model, **body}
        request = urllib.request.Request(
            self.base_url + path, data=json.dumps(body).encode(), method="POST",
            headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode("utf-8", "replace") if exc.fp else ""
            raise TokenizerError(f"{self.base_url}{path}: HTTP {exc.code}: {detail}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise TokenizerError(f"{self.base_url}{path}: {exc}") from None

    def _tokenize(self, text: str) -> list[int]:
        answer = self._post(self.api.path, {self.api.text_field: text, **self.api.extra})
        ids = token_ids(answer)
        if ids is None:
            raise TokenizerError(f"{self.base_url}{self.api.path}: no token list in "
                                 f"{json.dumps(answer)[:200]}")
        return ids

    def encode(self, text: str) -> list[int]:
        if self._prefix is None:
            try:
                self._prefix = self._tokenize("")
            except TokenizerError:  # some servers refuse empty input: nothing to strip
                self._prefix = []
        ids = self._tokenize(text)
        prefix = self._prefix
        return ids[len(prefix):] if prefix and ids[:len(prefix)] == prefix else ids

    def decode(self, ids: list[int]) -> str:
        if self.api.detokenize_path is None:
            raise TokenizerError(f"{self.base_url} has no detokenize endpoint")
        answer = self._post(self.api.detokenize_path, {"tokens": list(ids)})
        text = answer.get(self.api.detokenize_field) if isinstance(answer, dict) else None
        if not isinstance(text, str):
            raise TokenizerError(f"{self.base_url}{self.api.detokenize_path}: no text in "
                                 f"{json.dumps(answer)[:200]}")
        return text


def token_ids(answer: Any) -> list[int] | None:
    """Token ids from a tokenize answer: `{"tokens": [ids]}` (vLLM, llama.cpp), the same
    with `{"id": ...}` objects (llama-server with pieces), or a list of `{"id": ...}`
    objects (TGI). None when it is neither."""
    tokens = answer.get("tokens") if isinstance(answer, dict) else answer
    if not isinstance(tokens, list):
        return None
    ids = [t.get("id") if isinstance(t, dict) else t for t in tokens]
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        return None
    return ids
