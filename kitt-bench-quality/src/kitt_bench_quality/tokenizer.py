"""Which tokenizer loglikelihood scoring uses. Never a downloaded one: the model folder's
`tokenizer.json` or the engine's own tokenize endpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

import kitt
from kitt import BadInput


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


class LmEvalTokenizer:
    """The engine's own tokenizer (`kitt.EngineTokenizer`, the endpoint the engine plugin
    declares) with the interface lm-eval's `remote` tokenizer backend calls: `encode`,
    `batch_decode`, `eos_token(_id)`, `bos_token_id`."""

    eos_token = None
    eos_token_id = None
    bos_token_id = None

    def __init__(self, engine: kitt.EngineTokenizer):
        self.engine = engine

    def encode(self, text: str) -> list[int]:
        return self._call(self.engine.encode, text)

    def decode(self, tokens: list[int]) -> str:
        return self._call(self.engine.decode, tokens)

    def batch_decode(self, batch: list[list[int]]) -> list[str]:
        return [self.decode(tokens) for tokens in batch]

    def _call(self, method: Any, argument: Any) -> Any:
        try:
            return method(argument)
        except kitt.TokenizerError as exc:
            raise kitt.EngineFailed(f"the engine's tokenizer failed: {exc}",
                                    hint="check the engine log") from None


def engine_tokenizer(target: kitt.Target, *, timeout: float = 60) -> LmEvalTokenizer:
    """The engine's tokenizer for loglikelihood scoring; BadInput when it has none."""
    api = target.tokenize
    if api is None or api.detokenize_path is None:
        raise kitt.BadInput(
            f"engine {target.engine} has no tokenize and detokenize endpoints KITT can use",
            hint="set `tokenizer:` to the model's Hugging Face folder (tokenizer.json)")
    tokenizer = kitt.EngineTokenizer(target.base_url, api, target.model, timeout)
    try:
        tokenizer.encode("Hello world")
    except kitt.TokenizerError as exc:
        raise kitt.BadInput(f"the tokenize endpoint of {target.base_url} does not answer: "
                            f"{exc}", hint="set `tokenizer:` to the model's Hugging Face "
                                           "folder (tokenizer.json)") from None
    return LmEvalTokenizer(tokenizer)
