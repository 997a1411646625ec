"""What the engine can serve: prompt logprobs (loglikelihood scoring, judged exactly as
`kitt engines conformance` judges it) and token-id prompts."""

from __future__ import annotations

from typing import Any

import attrs

from kitt.conformance import PROMPT_LOGPROBS_PROBE, judge_prompt_logprobs
from kitt.errors import EngineFailed


@attrs.frozen
class Capabilities:
    prompt_logprobs: bool
    """`echo: true, logprobs: 1` returns a logprob for every prompt token."""
    token_prompts: bool | None = None
    """The completions endpoint accepts a list of token ids as the prompt (None: untested)."""
    detail: str = ""


def completions_url(base_url: str) -> str:
    return base_url.rstrip("/") + "/v1/completions"


def _post(url: str, payload: dict[str, Any], timeout: float) -> tuple[int, Any]:
    import requests

    try:
        response = requests.post(url, json=payload, timeout=timeout)
    except requests.RequestException as exc:
        raise EngineFailed(f"cannot reach the engine at {url}: {exc}",
                           hint="is the engine running and healthy?") from None
    try:
        body = response.json()
    except ValueError:
        body = response.text
    return response.status_code, body


def probe_prompt_logprobs(base_url: str, model: str, *, timeout: float = 60) -> tuple[bool, str]:
    """Whether the engine returns prompt logprobs: the conformance check's own probe and
    verdict, so `kitt engines conformance` and the scoring mode always agree."""
    status, body = _post(completions_url(base_url), {"model": model, **PROMPT_LOGPROBS_PROBE},
                         timeout)
    return judge_prompt_logprobs(status, body)


def probe_token_prompts(base_url: str, model: str, token_ids: list[int], *,
                        timeout: float = 60) -> bool:
    """Whether the completions endpoint takes token ids as the prompt."""
    status, body = _post(completions_url(base_url), {
        "model": model, "prompt": token_ids, "max_tokens": 1, "temperature": 0,
    }, timeout)
    return status == 200 and isinstance(body, dict) and bool(body.get("choices"))


def detect(base_url: str, model: str, *, timeout: float = 60) -> Capabilities:
    supported, detail = probe_prompt_logprobs(base_url, model, timeout=timeout)
    return Capabilities(prompt_logprobs=supported, detail=detail)
