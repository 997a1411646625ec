"""Which tokenizer loglikelihood scoring uses. Never a downloaded one: the model folder's
`tokenizer.json` or the engine's own tokenize endpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from kitt.errors import BadInput, EngineFailed


@attrs.frozen
class TokenizerChoice:
    kind: str
    """`huggingface` (a local folder) or `engine` (the server's tokenize endpoint)."""
    folder: Path | None = None
    description: str = ""


def _has_tokenizer(folder: Path) -> bool:
    return folder.is_dir() and (folder / "tokenizer.json").is_file()


def find_tokenizer_folder(model_path: Path | None) -> Path | None:
    """The model folder itself, or for a single file (GGUF) a folder beside it that holds
    the same model's tokenizer (`<dir>/`, `<dir>/<stem>-hf/`, `<dir>/<stem>/`)."""
    if model_path is None:
        return None
    path = Path(model_path).expanduser()
    if _has_tokenizer(path):
        return path
    if path.is_file():
        for candidate in (path.parent, path.parent / f"{path.stem}-hf", path.parent / path.stem):
            if _has_tokenizer(candidate):
                return candidate
    return None


def choose(setting: str | None, model_path: Path | None) -> TokenizerChoice:
    if setting == "engine":
        return TokenizerChoice("engine", None, "the engine's tokenize endpoint")
    if setting:
        folder = Path(setting).expanduser()
        if not _has_tokenizer(folder):
            raise BadInput(f"tokenizer folder {folder} has no tokenizer.json",
                           hint="point `tokenizer:` at the model's Hugging Face folder, "
                                "or use `tokenizer: engine`")
        return TokenizerChoice("huggingface", folder.resolve(), f"{folder.resolve()}")
    folder = find_tokenizer_folder(model_path)
    if folder is not None:
        return TokenizerChoice("huggingface", folder.resolve(), f"{folder.resolve()}")
    return TokenizerChoice("engine", None, "the engine's tokenize endpoint")


def load_hf(folder: Path) -> Any:
    """A transformers tokenizer from a local folder, with the hub switched off."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import transformers

    return transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)


class EngineTokenizer:
    """The engine's own tokenizer over HTTP, with the interface lm-eval's `remote` backend
    uses (`encode`, `batch_decode`, `eos_token(_id)`, `bos_token_id`).

    Endpoints: vLLM `/tokenize` `/detokenize` (`prompt`, `add_special_tokens`), llama-server
    `/tokenize` `/detokenize` (`content`, `add_special`), llama-cpp-python
    `/extras/tokenize` `/extras/detokenize` (`input`, always adds BOS: stripped here).
    """

    eos_token = None
    eos_token_id = None
    bos_token_id = None

    def __init__(self, base_url: str, model: str, *, timeout: float = 60):
        import requests

        self._session = requests.Session()
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout = timeout
        self.flavour = None
        self._prefix: list[int] = []
        for flavour in ("vllm", "llama-server", "llama-cpp-python"):
            try:
                tokens = self._tokenize(flavour, "Hello world")
            except (EngineFailed, KeyError, TypeError, ValueError):
                continue
            if isinstance(tokens, list) and tokens and all(isinstance(t, int) for t in tokens):
                self.flavour = flavour
                break
        if self.flavour is None:
            raise BadInput(f"the engine at {self.base_url} has no tokenize endpoint KITT knows",
                           hint="set `tokenizer:` to the model's Hugging Face folder "
                                "(tokenizer.json)")
        # A tokenizer that always adds BOS shows it on the empty string.
        self._prefix = self._tokenize(self.flavour, "")

    def _tokenize(self, flavour: str, text: str) -> list[int]:
        url, payload = {
            "vllm": ("/tokenize", {"model": self.model, "prompt": text,
                                   "add_special_tokens": False}),
            "llama-server": ("/tokenize", {"content": text, "add_special": False}),
            "llama-cpp-python": ("/extras/tokenize", {"input": text, "model": self.model}),
        }[flavour]
        body = self._post(url, payload)
        return list(body["tokens"])

    def _post(self, path: str, payload: dict) -> Any:
        import requests

        try:
            response = self._session.post(self.base_url + path, json=payload,
                                          timeout=self.timeout)
        except requests.RequestException as exc:
            raise EngineFailed(f"tokenize request to {self.base_url}{path} failed: {exc}") from None
        if response.status_code != 200:
            raise EngineFailed(f"{self.base_url}{path} answered HTTP {response.status_code}")
        return response.json()

    def encode(self, text: str) -> list[int]:
        tokens = self._tokenize(self.flavour, text)
        if self._prefix and tokens[: len(self._prefix)] == self._prefix:
            tokens = tokens[len(self._prefix):]
        return tokens

    def decode(self, tokens: list[int]) -> str:
        path = "/extras/detokenize" if self.flavour == "llama-cpp-python" else "/detokenize"
        key = "text" if self.flavour == "llama-cpp-python" else (
            "prompt" if self.flavour == "vllm" else "content")
        payload = {"tokens": list(tokens)}
        if self.flavour == "vllm":
            payload["model"] = self.model
        return self._post(path, payload)[key]

    def batch_decode(self, batch: list[list[int]]) -> list[str]:
        return [self.decode(tokens) for tokens in batch]
