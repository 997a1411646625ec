"""The SQLite store: one file, WAL journal, foreign keys on, writers wait for each other.

Writers take the write lock up front (BEGIN IMMEDIATE) and wait up to the busy timeout for
it, so concurrent processes queue rather than fail; WAL lets readers go on meanwhile.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from kitt._storage import rows as rowmod
from kitt._storage.contract import Cursor
from kitt._storage.sqlstore import SQLStore
from kitt._storage.url import sqlite_path
from kitt.errors import BadInput

BUSY_TIMEOUT_S = 60.0


def _import_sqlite_utils():
    """sqlite-utils imports pandas and numpy when installed, only to convert their values,
    which KARR never inserts: ~1 s per `kitt storage` command. Hide them while it loads."""
    hidden = [name for name in ("pandas", "numpy") if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # `import name` then fails
    try:
        import sqlite_utils
    finally:
        for name in hidden:
            del sys.modules[name]
    return sqlite_utils


class SQLiteStore(SQLStore):
    dialect = "sqlite"
    _offset_sql = " LIMIT -1 OFFSET ?"  # SQLite wants a LIMIT before OFFSET

    def __init__(self, url: str, *, create: bool = True):
        sqlite_utils = _import_sqlite_utils()
        self.url = url
        self.path = sqlite_path(url)
        if not self.path.exists():
            if not create:
                raise BadInput(f"no KARR database at {self.path} ({url})",
                               hint="create it with `kitt storage init`, or check --store / "
                                    "KITT_STORE")
            self.path.parent.mkdir(parents=True, exist_ok=True)
        elif self.path.is_dir():
            raise BadInput(f"{self.path} is a directory, not a database ({url})",
                           hint="point the sqlite:/// URL at a file")
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                   check_same_thread=False)
            self.db = sqlite_utils.Database(conn)
            # Every connection: cascades need foreign keys on; FULL sync so a committed run
            # survives power loss, not only a crash of KITT.
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            conn.execute("PRAGMA synchronous = FULL")
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                self.db.enable_wal()
        except sqlite3.DatabaseError as exc:
            raise BadInput(f"cannot open {self.path} as a SQLite database: {exc}",
                           hint="check the --store URL points at a KARR database") from exc
        self.conn = conn

    @contextmanager
    def _transaction(self) -> Iterator[Cursor]:
        cur = self.conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            yield cur
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self.conn.execute(sql, params).fetchall()

    def _stream(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple]:
        # A separate cursor: the caller may write through the store while iterating.
        yield from self.conn.cursor().execute(sql, params)

    def _lock_schema(self, cur: Cursor) -> None:
        pass  # BEGIN IMMEDIATE already excludes every other writer

    def _version_in(self, cur: Cursor) -> int:
        tables = {row[0] for row in cur.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()}
        if "schema_version" not in tables:
            if tables:
                raise BadInput(f"{self.path} is a SQLite database but not a KARR store "
                               f"(it has tables {', '.join(sorted(tables)[:5])})",
                               hint="point --store at a KARR database or a new file")
            return 0
        row = cur.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    def _ts(self, value: datetime) -> str:
        return rowmod.iso_utc(value)

    def _from_ts(self, value: str) -> datetime:
        return datetime.fromisoformat(value)

    def check(self) -> list[str]:
        problems = [row[0] for row in self._query("PRAGMA integrity_check") if row[0] != "ok"]
        problems += [f"foreign key violation in {row[0]} (rowid {row[1]})"
                     for row in self._query("PRAGMA foreign_key_check")]
        return problems + super().check()

    def schema_objects(self) -> dict[str, str]:
        return {
            f"{kind} {name}": " ".join((sql or "").split())
            for kind, name, sql in self._query(
                "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' "
                "ORDER BY type, name")
        }

    def close(self) -> None:
        self.conn.close()

    @property
    def file(self) -> Path:
        return self.path
