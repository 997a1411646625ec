"""What to send: synthetic prompts of controlled token lengths, or prompts from a JSONL file.

A workload is a list of `RequestSpec`; a run cycles through it (request i uses spec
i % len). Output length is enforced by the request builder with `max_tokens` and, where the
engine has one, its ignore-EOS option (see `client.Endpoint.ignore_eos`).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import attrs

from kitt import Tokenizer

__all__ = [
    "LengthDist",
    "RequestSpec",
    "Tokenizer",
    "WorkloadError",
    "load_jsonl",
    "synthetic_requests",
]


class WorkloadError(ValueError):
    pass


@attrs.frozen
class RequestSpec:
    prompt: str
    output_tokens: int | None = None
    """Requested output length (`max_tokens`); None lets the server decide."""
    input_tokens: int | None = None
    """The prompt's length in tokens as the workload's tokenizer counted it (no chat
    template or BOS), used when the server reports no usage."""


@attrs.frozen
class LengthDist:
    """A token length: normal(mean, stdev) rounded and clipped to [min, max]; stdev 0 gives
    exactly `mean`."""

    mean: float
    stdev: float = 0.0
    min: int = 1
    max: int | None = None

    def __attrs_post_init__(self) -> None:
        if self.min < 1 or self.stdev < 0:
            raise WorkloadError(f"invalid length distribution {self}: need min >= 1, stdev >= 0")
        if self.mean < self.min or (self.max is not None and not self.min <= self.mean <= self.max):
            raise WorkloadError(f"invalid length distribution {self}: need min <= mean <= max")

    def sample(self, rng: random.Random) -> int:
        value = round(self.mean if self.stdev == 0 else rng.gauss(self.mean, self.stdev))
        value = max(self.min, value)
        return value if self.max is None else min(self.max, value)


# Common English words: prompts read as text (so every tokenizer round-trips them cleanly)
# and random word order keeps prompts distinct, defeating prefix caches.
_WORDS_TEXT = (
    "time year people way day man thing woman life child world school state family student "
    "group country problem hand part place case week company system program question work "
    "government number night point home water room mother area money story fact month lot "
    "right study book eye job word business issue side kind head house service friend father "
    "power hour game line end member law car city community name president team minute idea "
    "kid body information back parent face others level office door health person art war "
    "history party result change morning reason research girl guy moment air teacher force "
    "education foot boy age policy music process market sense nation plan college interest "
    "death experience effect use class control care field development role effort rate heart "
    "drug show leader light voice wife police mind price report decision son view relationship "
    "town road arm difference value building action model season society tax director "
    "position player record paper space ground form event official matter center couple site "
    "project activity star table need court oil situation cost industry figure street image "
    "phone data picture practice piece land product doctor wall patient worker news test movie "
    "north love support technology step baby computer type attention film tree source organization "
    "hair window evidence population truth song boat"
)
_WORDS = _WORDS_TEXT.split()


def _exact_prompt(tokenizer: Tokenizer, rng: random.Random, n_tokens: int) -> tuple[str, int]:
    """Random words cut to `n_tokens` tokens. Decoding a token prefix and encoding it again
    can merge or split tokens at the cut, so the cut is corrected until the round trip
    holds; the returned length is the tokenizer's count of the returned text."""
    words: list[str] = []
    text = ""
    ids: list[int] = []
    # Words rarely take more than 3 tokens, so n/2 + 8 words usually suffice at once.
    while len(ids) < n_tokens + 2:
        words.extend(rng.choice(_WORDS) for _ in range(n_tokens // 2 + 8))
        text = " ".join(words)
        ids = tokenizer.encode(text)
    for _ in range(16):
        text = tokenizer.decode(ids[:n_tokens])
        ids = tokenizer.encode(text)
        if len(ids) == n_tokens:
            return text, n_tokens
        if len(ids) < n_tokens:
            # The cut merged tokens: borrow more words and cut again.
            ids = tokenizer.encode(text + " " + " ".join(rng.choice(_WORDS) for _ in range(4)))
    return text, len(ids)


def synthetic_requests(tokenizer: Tokenizer, count: int, input_tokens: LengthDist,
                       output_tokens: LengthDist, seed: int = 0) -> list[RequestSpec]:
    """`count` prompts whose token lengths follow `input_tokens` (exact per the tokenizer)
    and whose requested output lengths follow `output_tokens`. Same seed, same workload."""
    if count < 1:
        raise WorkloadError("count must be >= 1")
    rng = random.Random(seed)
    specs = []
    for _ in range(count):
        n_in = input_tokens.sample(rng)
        n_out = output_tokens.sample(rng)
        text, actual = _exact_prompt(tokenizer, rng, n_in)
        specs.append(RequestSpec(prompt=text, output_tokens=n_out, input_tokens=actual))
    return specs


def load_jsonl(path: str | Path, tokenizer: Tokenizer | None = None) -> list[RequestSpec]:
    """Prompts from a JSONL file: one `{"prompt": str, "output_tokens": int | null}` object
    per line (blank lines skipped). With a tokenizer, input lengths are measured too."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkloadError(f"{path}: cannot read: {exc}") from exc
    specs = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise WorkloadError(f"{where}: not valid JSON: {exc}") from exc
        if not isinstance(obj, dict):
            raise WorkloadError(f"{where}: expected a JSON object, got {type(obj).__name__}")
        unknown = set(obj) - {"prompt", "output_tokens"}
        if unknown:
            raise WorkloadError(f"{where}: unknown keys {sorted(unknown)} "
                                "(allowed: prompt, output_tokens)")
        prompt = obj.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            raise WorkloadError(f"{where}: 'prompt' must be a non-empty string")
        out = obj.get("output_tokens")
        if out is not None and (type(out) is not int or out < 1):
            raise WorkloadError(f"{where}: 'output_tokens' must be a positive integer or null")
        n_in = len(tokenizer.encode(prompt)) if tokenizer is not None else None
        specs.append(RequestSpec(prompt=prompt, output_tokens=out, input_tokens=n_in))
    if not specs:
        raise WorkloadError(f"{path}: no prompts")
    return specs

