"""The KARR schema, as an ordered list of forward migrations per SQL dialect.

A fresh store applies every migration in order, so "fresh init" and "migrated from any
earlier version" are the same code path; tests check both end in the same schema.
Never edit a released migration: append a new one and bump nothing else.

Tables (see docs/storage.md):
  schema_version   one row: the version of the schema in this database
  runs             one row per run: identity, outcome, and the columns filters use
  run_documents    the lossless raw JSON document of each run (the truth)
  hardware         the run's fingerprint, flattened
  results          one row per benchmark result (repetition) of a run
  metrics          one row per metric value of a result
  request_samples  per-request performance samples (compact)
  item_records     per-item quality records (compact: no prompt/output/target text,
                   those stay in the raw document)
  metrics.direction (v4) the direction the producing benchmark stated
  metrics_bound    (v5) an index answering metric bounds (RunFilter.metrics)
  metric_totals    (v3) running statistics of every metric per group of runs, kept in
                   step with `metrics` by every write, so `aggregate` reads a few rows
                   per group instead of every value

A step is SQL text, or a `DataStep`: Python the store runs inside the migration's
transaction, for what SQL cannot do the same way on every dialect (parsing the stored
documents, numerically stable statistics).
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class DataStep:
    """A migration step in Python: the store calls its method `_migrate_<name>(cursor)`.
    That method runs on the schema of its own version, so it must keep working there when
    later versions change tables (read and write only the columns its version has)."""

    name: str


Step = str | DataStep

# Column types differ per dialect; the statements are otherwise the same.
_TYPES = {
    "sqlite": {"id": "TEXT", "text": "TEXT", "int": "INTEGER", "real": "REAL",
               "bool": "INTEGER", "ts": "TEXT", "json": "TEXT"},
    # COLLATE "C": byte order, like SQLite, so id prefix lookups can use the primary key.
    "postgresql": {"id": 'TEXT COLLATE "C"', "text": "TEXT", "int": "BIGINT",
                   "real": "DOUBLE PRECISION", "bool": "BOOLEAN", "ts": "TIMESTAMPTZ",
                   "json": "JSONB"},
}

_V1: list[Step] = [
    "CREATE TABLE schema_version (version {int} NOT NULL)",
    """CREATE TABLE runs (
        id {id} PRIMARY KEY,
        model {text} NOT NULL,
        engine {text} NOT NULL,
        engine_version {text},
        mode {text} NOT NULL,
        image {text},
        suite {text} NOT NULL,
        status {text} NOT NULL,
        started_at {ts} NOT NULL,
        finished_at {ts},
        kitt_version {text} NOT NULL,
        fingerprint {text} NOT NULL,
        config {json} NOT NULL,
        error {text},
        benchmarks {int} NOT NULL,
        passed {int} NOT NULL,
        saved_at {ts} NOT NULL
    )""",
    # `document` is the exact JSON text; `body` (PostgreSQL only, see below) is queryable.
    """CREATE TABLE run_documents (
        run_id {id} PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
        document {text} NOT NULL
    )""",
    """CREATE TABLE hardware (
        run_id {id} PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
        fingerprint {text} NOT NULL,
        gpu_count {int} NOT NULL,
        gpu_names {text},
        gpu_memory_mib {int},
        driver_version {text},
        cuda_version {text},
        unified_memory {bool} NOT NULL,
        gpu_source {text},
        cpu_brand {text},
        cpu_architecture {text},
        cpu_cores {int},
        cpu_threads {int},
        memory_total_mib {int},
        memory_type {text},
        storage_kind {text},
        storage_model {text},
        os_system {text},
        os_distribution {text},
        os_version {text},
        kernel {text},
        environment {text}
    )""",
    """CREATE TABLE results (
        run_id {id} NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        position {int} NOT NULL,
        name {text} NOT NULL,
        version {text} NOT NULL,
        run_number {int} NOT NULL,
        passed {bool} NOT NULL,
        error {text},
        started_at {ts},
        finished_at {ts},
        PRIMARY KEY (run_id, position)
    )""",
    """CREATE TABLE metrics (
        run_id {id} NOT NULL,
        position {int} NOT NULL,
        seq {int} NOT NULL,
        benchmark {text} NOT NULL,
        name {text} NOT NULL,
        value {real} NOT NULL,
        unit {text} NOT NULL,
        PRIMARY KEY (run_id, position, seq),
        FOREIGN KEY (run_id, position) REFERENCES results(run_id, position) ON DELETE CASCADE
    )""",
    """CREATE TABLE request_samples (
        run_id {id} NOT NULL,
        position {int} NOT NULL,
        seq {int} NOT NULL,
        start_ms {real} NOT NULL,
        ok {bool} NOT NULL,
        ttft_ms {real},
        e2e_ms {real},
        itl_mean_ms {real},
        input_tokens {int},
        output_tokens {int},
        error {text},
        PRIMARY KEY (run_id, position, seq),
        FOREIGN KEY (run_id, position) REFERENCES results(run_id, position) ON DELETE CASCADE
    )""",
    """CREATE TABLE item_records (
        run_id {id} NOT NULL,
        position {int} NOT NULL,
        seq {int} NOT NULL,
        item_id {text} NOT NULL,
        correct {bool} NOT NULL,
        subject {text},
        scores {json} NOT NULL,
        PRIMARY KEY (run_id, position, seq),
        FOREIGN KEY (run_id, position) REFERENCES results(run_id, position) ON DELETE CASCADE
    )""",
    # `list` filters on one column and orders by start time, newest first.
    "CREATE INDEX runs_started ON runs (started_at)",
    "CREATE INDEX runs_model ON runs (model, started_at)",
    "CREATE INDEX runs_engine ON runs (engine, started_at)",
    "CREATE INDEX runs_suite ON runs (suite, started_at)",
    "CREATE INDEX runs_status ON runs (status, started_at)",
    "CREATE INDEX runs_fingerprint ON runs (fingerprint, started_at)",
    "CREATE INDEX metrics_name ON metrics (benchmark, name)",
]

_V1_POSTGRESQL: list[Step] = [
    # JSONB copy of the document for ad-hoc SQL (`body->'config'`). The text column stays
    # the truth: JSONB cannot hold \u0000 (replaced by U+FFFD here), drops -0.0's sign and
    # reads 1e300 back as an integer, so it is not lossless.
    "ALTER TABLE run_documents ADD COLUMN body JSONB NOT NULL",
]

_V2: list[Step] = [
    # Aggregation reads every metric of the selected runs: a covering index answers it
    # from the index alone, without visiting the table rows.
    "CREATE INDEX metrics_aggregate ON metrics (run_id, benchmark, name, unit, value)",
]

_V3: list[Step] = [
    # The canonical JSON of each result's parameters: comparisons tell a benchmark's
    # parameter sets apart (`kitt._compare.compare.result_keys`) without reading whole documents.
    # Text, not JSONB, on PostgreSQL too: JSONB would turn 1e300 into an integer and -0.0
    # into 0, and parameters must compare exactly as in the document.
    "ALTER TABLE results ADD COLUMN params {text} NOT NULL DEFAULT '{{}}'",
    DataStep("result_params"),
    # One row per group of runs (every `aggregate` group key) and metric: the moments
    # `aggregate` needs. `m2` is the sum of squared deviations from the mean (Welford /
    # Chan), not a sum of squares, so the variance stays exact when the mean is large
    # beside the spread. engine_version is NULL-able in `runs` but a key here, and keys
    # cannot be NULL: NULL is stored as '' with has_engine_version false.
    """CREATE TABLE metric_totals (
        model {text} NOT NULL,
        engine {text} NOT NULL,
        engine_version {text} NOT NULL,
        has_engine_version {bool} NOT NULL,
        suite {text} NOT NULL,
        fingerprint {text} NOT NULL,
        status {text} NOT NULL,
        mode {text} NOT NULL,
        benchmark {text} NOT NULL,
        name {text} NOT NULL,
        unit {text} NOT NULL,
        runs {int} NOT NULL,
        n {int} NOT NULL,
        mean {real} NOT NULL,
        m2 {real} NOT NULL,
        low {real} NOT NULL,
        high {real} NOT NULL,
        PRIMARY KEY (model, engine, engine_version, has_engine_version, suite, fingerprint,
                     status, mode, benchmark, name, unit)
    )""",
    # Recomputing a group's totals (after a delete or a replace) reads the runs of exactly
    # that group; engine_version last, as PostgreSQL's null-safe `=` cannot use an index.
    "CREATE INDEX runs_group ON runs (model, engine, suite, fingerprint, status, mode, "
    "engine_version)",
    DataStep("totals"),
]

_V4: list[Step] = [
    # Which way each metric should move (higher, lower, neutral), as the benchmark that
    # produced it said: comparisons judge regressions by it. NULL for runs stored before
    # benchmarks stated directions; their documents have none either.
    "ALTER TABLE metrics ADD COLUMN direction {text}",
]

_V5: list[Step] = [
    # Runs with a metric within bounds (`RunFilter.metrics`: the dashboard's and the API's
    # metric filter) are one range scan of this index, not a probe per run: 3 ms instead
    # of 90 for a count over 100,000 SQLite runs (bench/web.py).
    "CREATE INDEX metrics_bound ON metrics (benchmark, name, value, run_id)",
]

MIGRATIONS: dict[str, list[list[Step]]] = {
    "sqlite": [_V1, _V2, _V3, _V4, _V5],
    "postgresql": [_V1 + _V1_POSTGRESQL, _V2, _V3, _V4, _V5],
}
"""MIGRATIONS[dialect][v - 1] takes a database from version v - 1 to version v."""

LATEST = len(MIGRATIONS["sqlite"])
assert all(len(steps) == LATEST for steps in MIGRATIONS.values())


def statements(dialect: str, version: int) -> list[Step]:
    """The steps that migrate a `dialect` database from `version - 1` to `version`."""
    return [step if isinstance(step, DataStep) else step.format(**_TYPES[dialect])
            for step in MIGRATIONS[dialect][version - 1]]
