"""Finished requests, kept on disk so an interrupted evaluation resumes where it stopped.

One JSON line per finished request (`{"k": key, "r": result}`) after a header line that
fingerprints everything that could change a result (engine URL, model, task settings).
A checkpoint written with other settings is set aside, never reused. A torn last line (the
process was killed mid-write) is ignored.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any

FORMAT = 1


def request_key(method: str, args: Any) -> str:
    """A stable key for one lm-eval request (`Instance.args`)."""
    text = json.dumps([method, args], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Checkpoint:
    def __init__(self, path: Path | None, fingerprint: dict[str, Any], *, resume: bool = True):
        self.path = path
        self.fingerprint = hashlib.sha256(
            json.dumps(fingerprint, sort_keys=True, default=str).encode()
        ).hexdigest()
        self.results: dict[str, Any] = {}
        self.reused = 0
        self._lock = threading.Lock()
        self._file = None
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            if resume and self._read(path):
                self._file = path.open("a", encoding="utf-8")
                return
            path.replace(path.with_suffix(path.suffix + ".old"))
            self.results.clear()
        self._file = path.open("w", encoding="utf-8")
        self._file.write(json.dumps({"kitt_checkpoint": FORMAT, "fingerprint": self.fingerprint})
                         + "\n")
        self._file.flush()

    def _read(self, path: Path) -> bool:
        with path.open(encoding="utf-8") as handle:
            lines = handle.read().splitlines()
        try:
            header = json.loads(lines[0]) if lines else {}
        except json.JSONDecodeError:
            return False
        if header != {"kitt_checkpoint": FORMAT, "fingerprint": self.fingerprint}:
            return False
        for line in lines[1:]:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:  # torn write at the moment of interruption
                continue
            self.results[entry["k"]] = entry["r"]
        if lines and not lines[-1].endswith("}"):
            # Make sure the next record starts on its own line.
            with path.open("a", encoding="utf-8") as handle:
                handle.write("\n")
        return True

    def get(self, key: str) -> Any:
        return self.results.get(key)

    def __contains__(self, key: str) -> bool:
        return key in self.results

    def add(self, key: str, result: Any) -> None:
        with self._lock:
            if key in self.results:
                return
            self.results[key] = result
            if self._file is not None:
                self._file.write(json.dumps({"k": key, "r": result}, ensure_ascii=False) + "\n")
                self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
