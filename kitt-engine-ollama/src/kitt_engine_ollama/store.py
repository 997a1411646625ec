"""Ollama's model store over its HTTP API: list, pull, and import a GGUF file.

Importing is what `ollama create -f Modelfile` does for `FROM ./model.gguf`: upload the
file as a blob named by its SHA-256 (`POST /api/blobs/sha256:...`, skipped when `HEAD`
says the server has it), then `POST /api/create` with `files` mapping the file name to
that digest. Over HTTP it works alike for a native server, a container and a service
started by someone else, and needs no `ollama` client on KITT's side.
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import kitt
from kitt import EngineFailed

# Pulling or importing a large model takes minutes; the API answers when it is done.
SLOW_TIMEOUT_S = 3600.0


def model_name(served_name: str) -> str:
    """A valid Ollama model name from a file name (lower case, no odd characters)."""
    name = re.sub(r"[^a-z0-9._-]+", "-", served_name.lower()).strip("-._")
    return name or "kitt-model"


def _request(base_url: str, path: str, *, method: str = "GET", body: Any = None,
             data: Any = None, headers: dict[str, str] | None = None,
             timeout: float = 30.0) -> tuple[int, bytes]:
    if body is not None:
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", **(headers or {})}
    request = urllib.request.Request(base_url + path, data=data, method=method,
                                     headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read() if exc.fp else b""
    except (urllib.error.URLError, OSError) as exc:
        raise EngineFailed(f"Ollama at {base_url} did not answer {method} {path}: {exc}",
                           hint="check the Ollama server's log") from None


def _fail(what: str, status: int, payload: bytes) -> EngineFailed:
    try:
        detail = json.loads(payload).get("error") or payload.decode()
    except (ValueError, AttributeError):
        detail = payload.decode("utf-8", "replace")
    return EngineFailed(f"Ollama could not {what}: HTTP {status}: {str(detail)[:300]}",
                        hint="check the model and the Ollama server's log")


def has_model(base_url: str, name: str) -> bool:
    status, payload = _request(base_url, "/api/tags")
    if status != 200:
        raise _fail("list its models", status, payload)
    names = {m.get("name") or m.get("model") for m in json.loads(payload).get("models", [])}
    return name in names or (":" not in name and f"{name}:latest" in names)


def pull(base_url: str, name: str) -> None:
    status, payload = _request(base_url, "/api/pull", method="POST",
                               body={"model": name, "stream": False}, timeout=SLOW_TIMEOUT_S)
    if status != 200:
        raise _fail(f"pull {name}", status, payload)


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(8 << 20):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def upload_blob(base_url: str, path: Path, digest: str) -> None:
    status, _ = _request(base_url, f"/api/blobs/{digest}", method="HEAD")
    if status == 200:
        return  # the server has this file already (an earlier import)
    size = path.stat().st_size
    with path.open("rb") as f:
        status, payload = _request(base_url, f"/api/blobs/{digest}", method="POST", data=f,
                                   headers={"Content-Length": str(size),
                                            "Content-Type": "application/octet-stream"},
                                   timeout=SLOW_TIMEOUT_S)
    if status not in (200, 201):
        raise _fail(f"take {path.name} ({size} bytes)", status, payload)


def import_gguf(base_url: str, path: Path, name: str, *,
                parameters: dict[str, Any] | None = None) -> None:
    """Make model `name` from the GGUF at `path` (every shard of a split GGUF)."""
    info = kitt.detect_format(str(path))
    files = {}
    for shard in info.files or (path,):
        digest = file_digest(shard)
        upload_blob(base_url, shard, digest)
        files[shard.name] = digest
    body: dict[str, Any] = {"model": name, "files": files, "stream": False}
    if parameters:
        body["parameters"] = parameters
    status, payload = _request(base_url, "/api/create", method="POST", body=body,
                               timeout=SLOW_TIMEOUT_S)
    if status != 200:
        raise _fail(f"create model {name} from {path.name}", status, payload)
