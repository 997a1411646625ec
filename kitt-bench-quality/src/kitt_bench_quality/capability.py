"""Whether the engine takes token-id prompts (lm-eval then sends token ids, skipping a
second tokenization). Prompt logprobs are judged by `kitt.probe_prompt_logprobs`, exactly
as `kitt engines conformance` judges them."""

from __future__ import annotations

from typing import Any

import kitt


def completions_url(base_url: str) -> str:
    return base_url.rstrip("/") + "/v1/completions"


def _post(url: str, payload: dict[str, Any], timeout: float) -> tuple[int, Any]:
    import requests

    try:
        response = requests.post(url, json=payload, timeout=timeout)
    except requests.RequestException as exc:
        raise kitt.EngineFailed(f"cannot reach the engine at {url}: {exc}",
                                hint="is the engine running and healthy?") from None
    try:
        body = response.json()
    except ValueError:
        body = response.text
    return response.status_code, body


def probe_token_prompts(base_url: str, model: str, token_ids: list[int], *,
                        timeout: float = 60) -> bool:
    """Whether the completions endpoint takes token ids as the prompt."""
    status, body = _post(completions_url(base_url), {
        "model": model, "prompt": token_ids, "max_tokens": 1, "temperature": 0,
    }, timeout)
    return status == 200 and isinstance(body, dict) and bool(body.get("choices"))
