"""The PostgreSQL store: psycopg 3 with a connection pool, for teams sharing one KARR.

URL: postgresql://user:password@host:port/database[?schema=NAME&connect_timeout=S&...]
`schema` (ours, not libpq's) keeps KARR in its own PostgreSQL schema, created on first
use; other query parameters go to libpq unchanged. Connecting gives up after
`connect_timeout` seconds (default 5) so a wrong host never hangs the command.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from kitt._storage import rows as rowmod
from kitt._storage import totals
from kitt._storage.contract import Cursor
from kitt._storage.sqlstore import SQLStore
from kitt._storage.url import mask
from kitt.errors import BadInput

CONNECT_TIMEOUT_S = 5
POOL_MAX = 4
COPY_THRESHOLD = 200
# Any constants shared by every KITT: serialize schema creation and migrations, and writers.
_SCHEMA_LOCK = 0x4B415252  # "KARR"
_WRITE_LOCK = 0x4B415257  # "KARW"
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def _import_psycopg():
    try:
        import psycopg
        import psycopg_pool
    except ImportError as exc:
        raise BadInput("the PostgreSQL backend needs psycopg 3",
                       hint="pip install 'kitt-core[postgres]'") from exc
    return psycopg, psycopg_pool


def split_url(url: str) -> tuple[str, str | None]:
    """(libpq URL, KARR schema name or None)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((value for key, value in query if key == "schema"), None)
    rest = [(key, value) for key, value in query if key != "schema"]
    if not any(key == "connect_timeout" for key, _ in rest):
        rest.append(("connect_timeout", str(CONNECT_TIMEOUT_S)))
    # KARR's text is UTF-8 whatever the database's encoding: in a SQL_ASCII database (one
    # made without a UTF-8 locale) psycopg would otherwise return every text as bytes.
    if not any(key == "client_encoding" for key, _ in rest):
        rest.append(("client_encoding", "UTF8"))
    scheme = "postgresql"  # postgres:// and postgresql+driver:// mean the same to libpq
    return urlunsplit(parts._replace(scheme=scheme, query=urlencode(rest))), schema


class _PgCursor(Cursor):
    def __init__(self, cur):
        self.cur = cur

    def execute(self, sql: str, params: Sequence[Any] = ()):
        return self.cur.execute(sql.replace("?", "%s"), params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.cur.executemany(sql.replace("?", "%s"), rows)

    def fetchall(self) -> list[tuple]:
        return self.cur.fetchall()

    def fetchone(self):
        return self.cur.fetchone()

    @property
    def rowcount(self) -> int:
        return self.cur.rowcount


class PostgresStore(SQLStore):
    dialect = "postgresql"
    _null_eq = "IS NOT DISTINCT FROM"

    def __init__(self, url: str, *, create: bool = True):
        psycopg, psycopg_pool = _import_psycopg()
        self.url = mask(url)
        libpq_url, self.schema = split_url(url)
        if self.schema is not None and not _IDENTIFIER.fullmatch(self.schema):
            raise BadInput(f"bad schema name {self.schema!r} in {self.url}",
                           hint="use lowercase letters, digits and _")
        options = {"options": f"-c search_path={self.schema}"} if self.schema else {}
        try:
            self.conninfo = psycopg.conninfo.make_conninfo(libpq_url, **options)
        except psycopg.ProgrammingError as exc:
            raise BadInput(f"bad PostgreSQL URL {self.url}: {exc}",
                           hint="postgresql://user:password@host:5432/database") from exc
        # One plain connection first: the pool only reports a timeout, this names the cause.
        try:
            with psycopg.connect(self.conninfo) as conn:
                if self.schema:
                    self._ensure_schema(conn, create)
        except psycopg.OperationalError as exc:
            raise BadInput(f"cannot connect to {self.url}: {_first_line(exc)}",
                           hint=_hint(str(exc))) from exc
        self.pool = psycopg_pool.ConnectionPool(self.conninfo, min_size=1, max_size=POOL_MAX,
                                                open=False, name="kitt-karr")
        self.pool.open(wait=True, timeout=CONNECT_TIMEOUT_S * 2)

    def _ensure_schema(self, conn, create: bool) -> None:
        exists = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s",
                              (self.schema,)).fetchone()
        if exists:
            return
        if not create:
            raise BadInput(f"no KARR store at {self.url} (schema {self.schema} missing)",
                           hint="create it with `kitt storage init`")
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')

    # -- connection plumbing ----------------------------------------------------------------
    @contextmanager
    def _transaction(self) -> Iterator[Cursor]:
        with self.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            yield _PgCursor(cur)

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self.pool.connection() as conn:
            return conn.execute(sql.replace("?", "%s"), params).fetchall()

    def _stream(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple]:
        # A server-side cursor: exports of the whole store never sit in memory at once.
        with self.pool.connection() as conn, conn.cursor(name="kitt_stream") as cur:
            cur.itersize = 500
            cur.execute(sql.replace("?", "%s"), params)
            yield from cur

    def _lock_schema(self, cur: Cursor) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(?)", (_SCHEMA_LOCK,))

    def _lock_writers(self, cur: Cursor) -> None:
        # One writer at a time, as SQLite's BEGIN IMMEDIATE: a write reads the stored runs
        # and metric totals, then writes totals computed from them. Row locks alone would
        # let two writers of one group both read the old totals. Readers never wait.
        cur.execute("SELECT pg_advisory_xact_lock(?)", (_WRITE_LOCK,))

    def _version_in(self, cur: Cursor) -> int:
        cur.execute("SELECT to_regclass('schema_version'), to_regclass('runs')")
        version_table, runs_table = cur.fetchone()
        if version_table is None:
            if runs_table is not None:
                raise BadInput(f"{self.url} has a `runs` table but is not a KARR store",
                               hint="add ?schema=karr to the URL to keep KARR apart")
            return 0
        cur.execute("SELECT max(version) FROM schema_version")
        return int(cur.fetchone()[0] or 0)

    # -- dialect ----------------------------------------------------------------------------
    def _ts(self, value: datetime) -> datetime:
        return rowmod.utc(value)

    def _clean_text(self, value: Any) -> Any:
        # PostgreSQL text cannot hold NUL; the raw document keeps the exact value.
        return value.replace("\x00", "\ufffd") if isinstance(value, str) else value

    def _clean_json(self, value: str) -> str:
        return value.replace("\\u0000", "\\ufffd")

    def _columns(self, table: str) -> tuple[str, ...]:
        if table == "run_documents":
            return ("run_id", "document", "body")
        return super()._columns(table)

    def _run_rows(self, run, document: str, saved_at: datetime) -> dict[str, list]:
        found = super()._run_rows(run, document, saved_at)
        found["run_documents"] = [(run.id, document, self._clean_json(document))]
        return found

    def _insert(self, cur: Cursor, table: str, table_rows: list[tuple]) -> None:
        if len(table_rows) < COPY_THRESHOLD:
            super()._insert(cur, table, table_rows)
            return
        # COPY is several times faster than INSERT for imports of many runs.
        columns = ", ".join(self._columns(table))
        with cur.cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in table_rows:
                copy.write_row(row)

    def _bulk_upsert_totals(self, cur: Cursor, rows: list[tuple]) -> None:
        # COPY into a session-private staging table, then one upsert: an import of
        # thousands of runs changes thousands of totals rows, too many for executemany.
        columns = ", ".join(totals.COLUMNS)
        cur.execute("CREATE TEMP TABLE IF NOT EXISTS metric_totals_in "
                    "(LIKE metric_totals) ON COMMIT DELETE ROWS")
        cur.execute("TRUNCATE metric_totals_in")  # rows of an earlier call in this transaction
        with cur.cur.copy(f"COPY metric_totals_in ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cur.execute(f"INSERT INTO metric_totals ({columns}) SELECT {columns} "
                    f"FROM metric_totals_in {totals.UPSERT_CONFLICT}")

    def schema_objects(self) -> dict[str, str]:
        objects = {}
        for table, column, dtype, nullable, collation in self._query(
                "SELECT table_name, column_name, data_type, is_nullable, collation_name "
                "FROM information_schema.columns WHERE table_schema = current_schema() "
                "ORDER BY table_name, ordinal_position"):
            objects[f"column {table}.{column}"] = f"{dtype} {nullable} {collation}"
        for name, definition in self._query(
                "SELECT indexname, indexdef FROM pg_indexes "
                "WHERE schemaname = current_schema() ORDER BY indexname"):
            objects[f"index {name}"] = re.sub(r"ON \S+\.", "ON ", definition)
        for name, definition in self._query(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE connamespace = current_schema()::regnamespace ORDER BY conname"):
            objects[f"constraint {name}"] = definition
        return objects

    def close(self) -> None:
        self.pool.close()


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _hint(message: str) -> str:
    if "password authentication failed" in message or "no password supplied" in message:
        return "check the user and password in the URL (or ~/.pgpass)"
    if "does not exist" in message and "database" in message:
        return "create the database (createdb) or fix its name in the URL"
    if "timeout" in message or "Connection refused" in message or "could not" in message:
        return "check the host and port, and that PostgreSQL is running and reachable"
    return "check the postgresql:// URL (user, password, host, port, database)"
