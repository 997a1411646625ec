"""KITT's lm-eval model: lm-eval's own `local-completions` client, plus checkpoints,
item progress and chat templates rendered from the model folder.

Requests, payloads and the parsing of responses are lm-eval's code, unchanged, so that
scores agree exactly with `lm_eval --model local-completions`. This module imports
lm_eval at import time: import it only inside functions.
"""

from __future__ import annotations

import contextlib
import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from lm_eval.models.openai_completions import LocalCompletionsAPI

from kitt_bench_quality.checkpoint import Checkpoint, request_key


class ItemProgress:
    """Counts items (documents), not requests: an item is done when all its requests are."""

    def __init__(self, report: Callable[[int, int | None], None]):
        self._report = report
        self._pending: dict[tuple[str, int], int] = {}
        self._docs_of_key: dict[str, list[tuple[str, int]]] = defaultdict(list)
        self._done = 0
        self._lock = threading.Lock()

    def expect(self, keys: list[str], requests: list[Any]) -> None:
        with self._lock:
            for key, request in zip(keys, requests, strict=True):
                doc = (str(request.task_name), int(request.doc_id))
                self._pending[doc] = self._pending.get(doc, 0) + 1
                self._docs_of_key[key].append(doc)
        self._emit()

    def finished(self, key: str) -> None:
        with self._lock:
            for doc in self._docs_of_key.pop(key, ()):
                self._pending[doc] -= 1
                if self._pending[doc] == 0:
                    self._done += 1
        self._emit()

    def _emit(self) -> None:
        # A broken progress display must not fail the evaluation.
        with contextlib.suppress(Exception):
            self._report(self._done, len(self._pending))


class _Hook:
    """Receives every finished request from lm-eval (its partial-cache hook)."""

    def __init__(self, checkpoint: Checkpoint, progress: ItemProgress):
        self.checkpoint = checkpoint
        self.progress = progress

    def add_partial(self, attr: str, req: Any, res: Any) -> None:
        if attr not in ("loglikelihood", "generate_until"):
            return
        key = request_key(attr, req)
        self.checkpoint.add(key, list(res) if isinstance(res, tuple) else res)
        self.progress.finished(key)


class KittCompletions(LocalCompletionsAPI):
    """`local-completions` with a resumable request log and per-item progress."""

    def __init__(self, *, checkpoint: Checkpoint, progress: ItemProgress,
                 engine_tokenizer: Any = None, chat_tokenizer: Any = None, **kwargs: Any):
        super().__init__(**kwargs)
        if engine_tokenizer is not None:
            # lm-eval's "remote" backend calls exactly encode/batch_decode/eos/bos.
            self.tokenizer = engine_tokenizer
            self.tokenizer_backend = "remote"
        self._chat_tokenizer = chat_tokenizer
        self._checkpoint = checkpoint
        self._progress = progress
        self.cache_hook = _Hook(checkpoint, progress)

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        return self._resumable("loglikelihood", requests, super().loglikelihood, tuple)

    def generate_until(self, requests, disable_tqdm: bool = False):
        return self._resumable("generate_until", requests, super().generate_until, str)

    def _resumable(self, method: str, requests: list, compute: Callable, kind: type) -> list:
        keys = [request_key(method, request.args) for request in requests]
        self._progress.expect(keys, requests)
        results: list[Any] = [None] * len(requests)
        todo = []
        for index, key in enumerate(keys):
            if key in self._checkpoint:
                results[index] = kind(self._checkpoint.get(key))
                self._checkpoint.reused += 1
                self._progress.finished(key)
            else:
                todo.append(index)
        if todo:
            computed = compute([requests[index] for index in todo])
            for index, value in zip(todo, computed, strict=True):
                results[index] = value
        return results

    def apply_chat_template(self, chat_history, add_generation_prompt: bool = True):
        # Completions endpoints take text: render the model's own template here.
        if self._chat_tokenizer is None:
            import kitt

            raise kitt.BadInput(
                "chat_template: true needs the model's chat template, but no tokenizer folder "
                "is known for this model",
                hint="set `tokenizer:` to the model's Hugging Face folder, or chat_template: false",
            )
        return self._chat_tokenizer.apply_chat_template(
            chat_history, tokenize=False, add_generation_prompt=add_generation_prompt,
            continue_final_message=not add_generation_prompt,
        )

    @property
    def tokenizer_name(self) -> str:
        return "kitt"

    def chat_template(self, chat_template=False):
        return getattr(self._chat_tokenizer, "chat_template", None)
