"""Server settings: saved (by an admin, in `web_settings`) > environment > default. Every
value is reported with where it came from."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any

import attrs

import kitt


def _path(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        raise ValueError("must be a non-empty path")
    return value.strip()


def _url(value: Any) -> str:
    if value == "":
        return ""
    if not isinstance(value, str) or not value.startswith(("http://", "https://")) \
            or any(c.isspace() for c in value):
        raise ValueError("must be an http:// or https:// URL, or empty")
    return value.rstrip("/")


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false",
                                                    "no", "off"):
        return value.lower() in ("1", "true", "yes", "on")
    raise ValueError("must be true or false")


@attrs.frozen
class Setting:
    key: str
    env: str
    default: Callable[[], Any]
    parse: Callable[[Any], Any]
    description: str


SETTINGS = {s.key: s for s in (
    Setting("model_dir", "KITT_MODEL_DIR", lambda: str(kitt.kitt_home() / "models"), _path,
            "the folder the model browser scans"),
    Setting("results_dir", "KITT_RESULTS_DIR", lambda: str(kitt.kitt_home() / "results"),
            _path, "where runs started from the web write their results folders"),
    Setting("devon_url", "DEVON_URL", lambda: "", _url,
            "the Devon server that manages models (empty: none)"),
    Setting("devon_tab", "KITT_DEVON_TAB", lambda: False, _bool,
            "show the Devon tab in the dashboard"),
)}


@attrs.frozen
class Value:
    key: str
    value: Any
    source: str  # saved | environment | default
    description: str


def parse(key: str, value: Any) -> Any:
    """The stored form of `value` for `key`; BadInput naming the key when it is wrong."""
    setting = SETTINGS.get(key)
    if setting is None:
        raise kitt.BadInput(f"unknown setting {key!r}",
                            hint=f"settings are: {', '.join(SETTINGS)}")
    try:
        return setting.parse(value)
    except ValueError as exc:
        raise kitt.BadInput(f"setting {key}: {exc}", hint=setting.description) from exc


def current(db: kitt.Database) -> dict[str, Value]:
    saved = {key: json.loads(value) for key, value in
             db.query("SELECT key, value FROM web_settings")}
    out = {}
    for key, setting in SETTINGS.items():
        if key in saved:
            out[key] = Value(key, saved[key], "saved", setting.description)
        elif os.environ.get(setting.env):
            try:
                value = setting.parse(os.environ[setting.env])
            except ValueError:  # a bad variable is reported as the default, not a crash
                out[key] = Value(key, setting.default(), "default", setting.description)
                continue
            out[key] = Value(key, value, "environment", setting.description)
        else:
            out[key] = Value(key, setting.default(), "default", setting.description)
    return out


def save(db: kitt.Database, changes: dict[str, Any], by: str | None) -> dict[str, Value]:
    """Validate every change first, then save them in one transaction. A change to `null`
    removes the saved value (back to environment or default)."""
    parsed = {key: None if value is None else parse(key, value)
              for key, value in changes.items()}
    if any(key not in SETTINGS for key in parsed):
        parse(next(key for key in parsed if key not in SETTINGS), None)
    now = time.time()
    with db.transaction() as cur:
        for key, value in parsed.items():
            cur.execute("DELETE FROM web_settings WHERE key = ?", (key,))
            if value is not None:
                cur.execute("INSERT INTO web_settings (key, value, updated_at, updated_by) "
                            "VALUES (?, ?, ?, ?)", (key, json.dumps(value), now, by))
    return current(db)
