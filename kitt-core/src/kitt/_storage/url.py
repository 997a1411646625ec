"""Which store to open: URL resolution in one place, and passwords kept out of messages.

Precedence: explicit URL (`--store`) > `KITT_STORE` > `store:` in `$KITT_HOME/config.yaml`
> `sqlite:///$KITT_HOME/kitt.db`. `KITT_HOME` defaults to `~/.kitt`.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from kitt._util.files import kitt_home
from kitt.errors import BadInput


def default_url() -> str:
    path = (kitt_home() / "kitt.db").absolute()
    return f"sqlite://{path.as_posix()}"


def _configured_url() -> str | None:
    config = kitt_home() / "config.yaml"
    if not config.is_file():
        return None
    from ruamel.yaml import YAML, YAMLError

    try:
        data = YAML(typ="safe").load(config.read_text())
    except (OSError, YAMLError) as exc:
        raise BadInput(f"cannot read {config}: {exc}",
                       hint="fix the YAML or remove the file") from exc
    if data is None:
        return None
    if not isinstance(data, dict):
        raise BadInput(f"{config} must be a mapping", hint="e.g. `store: sqlite:///path/kitt.db`")
    value = data.get("store")
    if value is not None and not isinstance(value, str):
        raise BadInput(f"{config}: `store` must be a URL string", hint="e.g. `store: sqlite:///x`")
    return value


def resolve_url(url: str | None = None) -> str:
    """The store URL to use, by the documented precedence."""
    return url or os.environ.get("KITT_STORE") or _configured_url() or default_url()


def mask(url: str) -> str:
    """The URL with any password replaced by `***`, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username or ''}:***@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


def scheme_of(url: str) -> str:
    scheme = urlsplit(url).scheme
    # postgresql+psycopg and the like name a driver; the backend is chosen by the base.
    return scheme.split("+", 1)[0].lower()


def sqlite_path(url: str) -> Path:
    """`sqlite:///abs/path.db` (also `sqlite:////abs/path.db`), `sqlite:///~/x.db` (home)
    and `sqlite:relative.db` (relative to the working directory) -> Path."""
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise BadInput(f"bad SQLite URL {url!r}: it has a host",
                       hint="use sqlite:///absolute/path.db (three slashes)")
    path = parts.path
    # "/~/x.db" is under home; "//abs/x.db" is SQLAlchemy's four-slash absolute spelling.
    if path.startswith(("/~", "//")):
        path = path[1:]
    if not path or path == "/":
        raise BadInput(f"bad SQLite URL {url!r}: no file path",
                       hint="use sqlite:///absolute/path.db")
    return Path(path).expanduser()
