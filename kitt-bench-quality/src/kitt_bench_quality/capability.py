"""What the engine can serve: prompt logprobs (loglikelihood scoring) and token-id prompts.

Kept small and isolated: a conformance check in kitt-core may replace it later.
"""

from __future__ import annotations

from typing import Any

import attrs

from kitt.errors import EngineFailed

PROBE_PROMPT = "The quick brown fox jumps over the lazy dog."


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
    """Send `echo: true, logprobs: 1, max_tokens: 1` and check that prompt tokens come back
    with logprobs (llama-server, for one, ignores `echo` and scores generated tokens only)."""
    status, body = _post(completions_url(base_url), {
        "model": model, "prompt": PROBE_PROMPT, "max_tokens": 1, "temperature": 0,
        "echo": True, "logprobs": 1,
    }, timeout)
    if status != 200 or not isinstance(body, dict):
        return False, f"echo+logprobs request answered HTTP {status}: {str(body)[:200]}"
    try:
        logprobs = body["choices"][0].get("logprobs") or {}
    except (KeyError, IndexError, TypeError, AttributeError):
        return False, "response has no choices"
    token_logprobs = logprobs.get("token_logprobs") if isinstance(logprobs, dict) else None
    if not isinstance(token_logprobs, list):
        return False, "no `token_logprobs` in the response (prompt logprobs not supported)"
    # The probe prompt is several tokens long with any tokenizer: an echo returns them all
    # plus the generated one; without echo only the generated token is scored.
    if len(token_logprobs) < 3:
        return False, f"only {len(token_logprobs)} token logprob(s): the prompt is not echoed"
    if not any(isinstance(value, int | float) for value in token_logprobs[1:-1]):
        return False, "prompt tokens come back without logprobs"
    return True, f"echo+logprobs returned {len(token_logprobs)} token logprobs"


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
