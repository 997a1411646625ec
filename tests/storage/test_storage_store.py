"""The Store contract, run against every backend (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import statistics
from datetime import timedelta

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.stores import T0, any_runs, make_run

import kitt
from kitt import BadInput, Metric
from kitt._compare.compare import compare_runs, compare_stored, metric_values
from kitt._storage import transfer
from kitt._storage.contract import EVERY_RUN, RunFilter
from kitt._storage.open import open_store
from kitt._util.converter import to_json

fixture_settings = settings(max_examples=30, deadline=None,
                            suppress_health_check=[HealthCheck.function_scoped_fixture])


@fixture_settings
@given(run=any_runs)
def test_get_run_returns_exactly_the_run_saved(store, run):
    store.save_run(run)
    assert store.get_run(run.id) == run
    assert to_json(store.get_run(run.id)) == to_json(run)


def test_saving_the_same_id_again_replaces_it_whole(store):
    running = attrs.evolve(make_run(1), status="running", results=())
    store.save_run(running)
    assert store.get_run("run-00001") == running
    done = make_run(1)
    store.save_run(done)
    store.save_run(done)
    assert store.get_run("run-00001") == done
    counts = store.stats()["counts"]
    assert counts == {"runs": 1, "results": 3, "metrics": 7, "request_samples": 4,
                      "item_records": 1}
    assert [s.status for s in store.list_runs()] == ["passed"]
    assert store.check() == []


def test_unique_prefixes_find_a_run_and_ambiguous_or_unknown_ones_are_bad_input(store):
    store.save_runs([make_run(1, run_id="abc-1"), make_run(2, run_id="abd-2")])
    assert store.get_run("abc").id == "abc-1"
    with pytest.raises(BadInput, match="ambiguous"):
        store.get_run("ab")
    with pytest.raises(BadInput, match="no run 'zzz'"):
        store.get_run("zzz")
    with pytest.raises(BadInput):
        store.get_run("")
    # LIKE wildcards in an id are plain characters
    store.save_run(make_run(3, run_id="x%_y"))
    assert store.get_run("x%").id == "x%_y"
    with pytest.raises(BadInput):
        store.get_run("x_")


def test_list_filters_order_limit_and_offset(store):
    store.save_runs([
        make_run(1, model="a", engine="llamacpp"),
        make_run(2, model="b", engine="vllm", status="failed"),
        make_run(3, model="a", engine="vllm", suite="full", fingerprint="fp-b"),
        make_run(4, model="a", engine="llamacpp"),
    ])
    def ids(where=EVERY_RUN, **kw):
        return [s.id for s in store.list_runs(where, **kw)]

    assert ids() == ["run-00004", "run-00003", "run-00002", "run-00001"]
    assert ids(RunFilter(model="a")) == ["run-00004", "run-00003", "run-00001"]
    assert ids(RunFilter(model="a", engine="llamacpp")) == ["run-00004", "run-00001"]
    assert ids(RunFilter(suite="full")) == ["run-00003"]
    assert ids(RunFilter(fingerprint="fp-b")) == ["run-00003"]
    assert ids(RunFilter(status="failed")) == ["run-00002"]
    assert ids(RunFilter(since=T0 + timedelta(minutes=2), until=T0 + timedelta(minutes=4))) \
        == ["run-00003", "run-00002"]
    # naive datetimes are UTC
    assert ids(RunFilter(since=(T0 + timedelta(minutes=3)).replace(tzinfo=None))) \
        == ["run-00004", "run-00003"]
    assert ids(limit=2) == ["run-00004", "run-00003"]
    assert ids(limit=2, offset=3) == ["run-00001"]
    assert ids(offset=3) == ["run-00001"]
    summary = store.list_runs(RunFilter(ids=("run-00002",)))[0]
    assert (summary.model, summary.engine, summary.engine_version, summary.mode,
            summary.image, summary.benchmarks, summary.passed) == \
        ("b", "vllm", "b4000", "docker", "ghcr.io/x/llama:1", 3, 2)
    assert summary.started_at == T0 + timedelta(minutes=2)


def test_list_sorts_pages_by_keyset_and_filters_by_metric_bounds(store):
    store.save_runs([make_run(i, model=f"m{i % 3}", value=100.0 + 10 * i) for i in range(1, 8)])
    every = store.list_runs()
    # Keyset pages of 3 cover every run exactly once, in order, for any sort.
    for sort, descending in (("started_at", True), ("model", False), ("id", True)):
        pages, after = [], None
        while True:
            page = store.list_runs(limit=3, sort=sort, descending=descending, after=after)
            if not page:
                break
            pages += [s.id for s in page]
            last = page[-1]
            after = (getattr(last, sort), last.id)
        expected = sorted(every, key=lambda s: (getattr(s, sort), s.id), reverse=descending)
        assert pages == [s.id for s in expected]
    # The started_at cursor also travels as ISO text (how a URL carries it).
    first = store.list_runs(limit=2)
    later = store.list_runs(limit=2, after=(first[-1].started_at.isoformat(), first[-1].id))
    assert [s.id for s in later] == ["run-00005", "run-00004"]
    # m0 of run i is 100 + 10 i (+ 0.5 on its second repetition): bounds on any repetition.
    bound = kitt.MetricBound("throughput", "m0", min=130.0, max=150.4)
    where = RunFilter(metrics=(bound,))
    assert [s.id for s in store.list_runs(where)] == ["run-00005", "run-00004", "run-00003"]
    assert store.count_runs(where) == 3
    assert store.count_runs(RunFilter(model="m1", metrics=(bound,))) == 1
    assert store.count_runs() == 7
    only_max = RunFilter(metrics=(kitt.MetricBound("throughput", "m0", max=120.0),))
    assert [s.id for s in store.list_runs(only_max)] == ["run-00002", "run-00001"]
    # Aggregates over a metric bound scan the runs it selects, not the group totals.
    rows = store.aggregate(where, group_by=())
    assert next(r for r in rows if r.metric == "m0").runs == 3
    with pytest.raises(BadInput, match="sort"):
        store.list_runs(sort="passed; DROP TABLE runs")


def test_delete_removes_the_run_and_everything_recorded_with_it(store):
    store.save_runs([make_run(1), make_run(2)])
    store.delete_run("run-00001")
    assert [s.id for s in store.list_runs()] == ["run-00002"]
    assert store.stats()["counts"]["metrics"] == 7
    with pytest.raises(BadInput):
        store.delete_run("run-00001")
    assert store.delete_runs(["run-00002"]) == ["run-00002"]
    assert set(store.stats()["counts"].values()) == {0}


def test_aggregate_gives_mean_stddev_and_cv_across_repeated_runs(store):
    values = {"a": [100.0, 104.0, 98.0], "b": [50.0]}
    runs = [make_run(i, model=model, value=v, repeats=1, metrics=1)
            for i, (model, v) in enumerate((m, v) for m, vs in values.items() for v in vs)]
    store.save_runs(runs)
    rows = {(r.group["model"], r.metric): r for r in store.aggregate(group_by=["model"])}
    a = rows[("a", "m0")]
    assert (a.runs, a.n, a.min, a.max) == (3, 3, 98.0, 104.0)
    assert a.mean == pytest.approx(statistics.mean(values["a"]))
    assert a.stddev == pytest.approx(statistics.stdev(values["a"]))
    assert a.cv == pytest.approx(statistics.stdev(values["a"]) / statistics.mean(values["a"]))
    b = rows[("b", "m0")]
    assert (b.n, b.stddev, b.cv) == (1, None, None)
    assert a.unit == "tokens/s" and a.benchmark == "throughput"
    only_b = store.aggregate(RunFilter(model="b"), ["model", "engine", "suite"])
    assert {(r.group["model"], r.group["engine"], r.group["suite"]) for r in only_b} == \
        {("b", "llamacpp", "quick")}
    with pytest.raises(BadInput, match="cannot group by"):
        store.aggregate(group_by=["nonsense"])


def test_comparison_values_are_what_compare_reads_of_whole_runs(store):
    # One run holds a benchmark with two parameter sets (two repetitions each) and a failed
    # third set without metrics: its parameters still tell the others apart.
    sweep = make_run(3, params={"load": {"c": 1}}).results[:2] + \
        make_run(3, params={"load": {"c": 8}}, value=50.0).results[:2] + \
        (attrs.evolve(make_run(3).results[0], params={"load": {"c": 64}}, metrics=(),
                      passed=False),)
    runs = [make_run(1, value=10.0), make_run(2, value=20.0, metrics=1),
            attrs.evolve(make_run(3), id="sweep-3", results=sweep)]
    store.save_runs(runs)
    found = store.comparison_values(["sweep", "run-00001", "run-00002", "run-00001"])
    assert [f.run.id for f in found] == ["sweep-3", "run-00001", "run-00002", "run-00001"]
    for f in found:
        run = store.get_run(f.run.id)
        assert [(r.name, r.params, r.metrics) for r in f.results] == \
            [(r.name, r.params, r.metrics) for r in run.results]
    assert list(metric_values(found[0].results))[:2] == [
        ("throughput [load.c=1]", "m0", "tokens/s"), ("throughput [load.c=1]", "m1", "tokens/s")]
    # The store's comparison is the comparison of the documents, number for number.
    ids = ["run-00001", "run-00002", "sweep-3"]
    assert compare_stored(store, ids).to_dict() == \
        compare_runs([store.get_run(i) for i in ids]).to_dict()
    by_metric = {(r.benchmark, r.metric): r for r in compare_stored(store, ids).rows}
    assert by_metric[("throughput", "m0")].cells[0].stats.mean == 10.25  # mean of both reps
    assert by_metric[("throughput", "m2")].cells[1].flag == "missing"
    with pytest.raises(BadInput, match="no run 'nope'"):
        store.comparison_values(["run-00001", "nope"])


@fixture_settings
@given(runs=st.lists(any_runs, min_size=1, max_size=3, unique_by=lambda r: r.id))
def test_comparison_values_match_any_run(store, runs):
    for run in list(store.list_runs()):
        store.delete_run(run.id)
    store.save_runs(runs)
    found = store.comparison_values([run.id for run in runs])
    for run, stored in zip(runs, found, strict=True):
        results = run.results
        if store.dialect == "postgresql":
            # Its text columns hold no NUL: benchmark and metric names (and units) show
            # it as U+FFFD; parameters are JSON text, escaped, and read back exactly
            # (docs/storage.md).
            results = [attrs.evolve(
                result, name=_no_nul(result.name),
                metrics=tuple(attrs.evolve(m, name=_no_nul(m.name), unit=_no_nul(m.unit))
                              for m in result.metrics)) for result in results]
        assert metric_values(stored.results) == metric_values(results)


def _no_nul(text: str) -> str:
    return text.replace("\x00", "\ufffd")


def test_stats_describe_the_store(store):
    store.save_runs([make_run(1), make_run(2, status="failed", model="b")])
    info = store.stats()
    assert info["schema_version"] == store.schema_versions
    assert info["status"] == {"failed": 1, "passed": 1}
    assert info["distinct"]["model"] == 2
    assert info["first_started_at"] == (T0 + timedelta(minutes=1)).isoformat()
    assert json.dumps(info)  # JSON-ready


def test_a_run_that_is_not_json_is_refused_and_nothing_is_written(store):
    bad = attrs.evolve(make_run(1), results=(attrs.evolve(
        make_run(1).results[0], metrics=(Metric("x", float("nan")),)),))
    with pytest.raises(BadInput, match="cannot be stored"):
        store.save_runs([make_run(2), bad])
    assert store.list_runs() == []
    with pytest.raises(BadInput, match="invalid run id"):
        store.save_run(attrs.evolve(make_run(1), id=""))


@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(runs=st.lists(any_runs, min_size=1, max_size=5, unique_by=lambda r: r.id),
       fmt=st.sampled_from(["jsonl", "json"]))
def test_export_import_export_is_lossless(store_url, tmp_path_factory, runs, fmt):
    work = tmp_path_factory.mktemp("x")
    source_url = store_url
    target_url = (f"sqlite://{work / 'copy.db'}" if store_url.startswith("sqlite")
                  else store_url.replace("schema=", "schema=c"))
    try:
        with open_store(source_url) as source:
            for run in list(source.list_runs()):
                source.delete_run(run.id)
            source.save_runs(runs)
            first = work / ("first.jsonl" if fmt == "jsonl" else "first")
            transfer.export(source, first, fmt)
        with open_store(target_url) as target:
            report = transfer.import_paths(target, [first])
            assert (report.added, report.replaced, report.unchanged) == (len(runs), 0, 0)
            second = work / ("second.jsonl" if fmt == "jsonl" else "second")
            transfer.export(target, second, fmt)
            assert {r.id: r for r in runs} == {i: target.get_run(i) for i in
                                               (r.id for r in runs)}
    finally:
        if "schema=c" in target_url:
            from support.stores import drop_schema
            drop_schema(target_url.split("schema=")[1])
    assert _read_tree(first) == _read_tree(second)


def _read_tree(path):
    if path.is_file():
        return path.read_bytes()
    return {p.name: p.read_bytes() for p in path.iterdir()}


def test_import_is_idempotent_and_reports_what_changed(store, tmp_path):
    store.save_runs([make_run(1), make_run(2)])
    transfer.export(store, tmp_path / "all.jsonl", "jsonl")
    report = transfer.import_paths(store, [tmp_path / "all.jsonl"])
    assert (report.added, report.replaced, report.unchanged) == (0, 0, 2)
    store.delete_run("run-00001")
    changed = attrs.evolve(make_run(2), status="failed")
    (tmp_path / "changed.json").write_text(to_json(changed))
    report = transfer.import_paths(store, [tmp_path / "all.jsonl", tmp_path / "changed.json"])
    assert (report.added, report.replaced, report.unchanged) == (1, 1, 0)
    assert store.stats()["counts"]["runs"] == 2
    assert store.get_run("run-00002").status == "failed"


def test_import_reads_results_directories_written_by_kitt_run(store, tmp_path):
    for i in range(3):
        results = tmp_path / "results" / f"2026-01-0{i + 1}" / f"run-{i}"
        results.mkdir(parents=True)
        (results / "metrics.json").write_text(to_json(make_run(i)))
        (results / "hardware.json").write_text('{"fingerprint": "fp-a"}')
        (results / "config.json").write_text('{"suite": "quick"}')
    report = transfer.import_paths(store, [tmp_path / "results"])
    assert report.added == 3
    assert store.get_run("run-00002") == make_run(2)


@pytest.mark.parametrize("content", [
    '{"id": "x"',                    # truncated JSON
    '{"id": "x", "model": "m"}',     # missing fields
    '[1, 2]',                        # not run documents
])
def test_a_corrupt_import_file_is_bad_input_and_nothing_is_written(store, tmp_path, content):
    (tmp_path / "good.json").write_text(to_json(make_run(1)))
    (tmp_path / "z-bad.json").write_text(content)
    with pytest.raises(BadInput, match=r"z-bad\.json"):
        transfer.import_paths(store, [tmp_path])
    assert store.list_runs() == []


def test_a_corrupt_jsonl_line_names_the_line(store, tmp_path):
    (tmp_path / "runs.jsonl").write_text(to_json(make_run(1)) + "\n{oops\n")
    with pytest.raises(BadInput, match=r"runs.jsonl:2"):
        transfer.import_paths(store, [tmp_path / "runs.jsonl"])
    assert store.list_runs() == []


def test_csv_export_has_one_row_per_metric_value(store, tmp_path):
    import csv

    store.save_runs([make_run(1), make_run(2, model="b")])
    assert transfer.export(store, tmp_path / "m.csv", "csv", RunFilter(model="b")) == 1
    with (tmp_path / "m.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 7
    assert rows[0]["run_id"] == "run-00002" and rows[0]["model"] == "b"
    assert (rows[0]["benchmark"], rows[0]["metric"], float(rows[0]["value"])) == \
        ("throughput", "m0", 102.0)


@pytest.mark.postgres
def test_a_sql_ascii_postgres_database_still_gives_text_back():
    """A database made without a UTF-8 locale (SQL_ASCII) hands psycopg bytes unless the
    client asks for UTF-8, which the store always does."""
    import uuid

    import psycopg
    from support import require
    from support.stores import POSTGRES_URL, postgres_reachable

    ok, reason = postgres_reachable()
    require("postgres", ok, reason)
    name = f"kitt_ascii_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} ENCODING 'SQL_ASCII' TEMPLATE template0 "
                     "LC_COLLATE 'C' LC_CTYPE 'C'")
    try:
        url = POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
        run = make_run(1, model="modèle-ü.gguf")
        with open_store(url) as store:
            store.save_run(run)
            assert store.get_run(run.id) == run
            assert store.list_runs()[0].model == "modèle-ü.gguf"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
