"""The metric totals behind `aggregate`: after any sequence of saves, replacements and
deletes, aggregating from the totals equals scanning the metric values, and both equal
statistics computed here from the stored documents. Every backend."""

from __future__ import annotations

import random
from datetime import timedelta

import attrs
import pytest
from support.stores import T0, assert_same_aggregates, make_run

from kitt._compare.statistics import Stats
from kitt._storage import aggregate as aggmod
from kitt._storage import totals, transfer
from kitt._storage.contract import EVERY_RUN, GROUP_KEYS, AggregateRow, RunFilter
from kitt._util.converter import from_json
from kitt.records import BenchmarkResult, EngineConfig, Fingerprint, Metric, Run

# Few values per field, so runs share cells and groups; '' and None engine versions differ.
CELL_VALUES = {
    "model": ["a", "b", "ünïcode"],
    "engine": ["llamacpp", "vllm"],
    "engine_version": [None, "", "b4000"],
    "suite": ["quick", "full"],
    "fingerprint": ["fp-a", "fp-b"],
    "status": ["passed", "failed", "running"],
    "mode": ["docker", "native"],
}
METRICS = [("m0", "ms"), ("m1", "tokens/s"), ("m1", "ms"), ("acc", "")]


def random_run(rng: random.Random, run_id: str, minute: int) -> Run:
    """A run in a random cell with 0-4 results of random metrics: values of very different
    sizes, constant ones, and means far larger than their spread (where a sum of squares
    would lose the variance)."""
    # Mostly one of a few cells, so new runs often merge into existing totals.
    cell_rng = random.Random(rng.randrange(3)) if rng.random() < 0.7 else rng
    cell = {key: cell_rng.choice(values) for key, values in CELL_VALUES.items()}
    results = []
    for position in range(rng.choice([0, 1, 1, 2, 3, 4])):
        center = rng.choice([0.0, 1.0, 1e-3, 250.0, 1e6, -1e4, 1e9])
        spread = rng.choice([0.0, 1e-6, 1.0, 30.0])
        metrics = tuple(Metric(name, center + spread * rng.gauss(0, 1), unit)
                        for name, unit in rng.sample(METRICS, rng.randint(0, len(METRICS))))
        if metrics and rng.random() < 0.2:  # the same metric twice in one result
            metrics += (attrs.evolve(metrics[0], value=metrics[0].value * 2),)
        results.append(BenchmarkResult(
            rng.choice(["throughput", "latency", "mmlu"]), "1", position + 1,
            rng.random() > 0.1, metrics=metrics,
            params=rng.choice([{}, {"c": 1}, {"c": 8}])))
    return Run(
        id=run_id, model=cell["model"],
        engine=EngineConfig(cell["engine"], mode=cell["mode"]), suite=cell["suite"],
        status=cell["status"], started_at=T0 + timedelta(minutes=minute),
        kitt_version="0.1.0", hardware=Fingerprint(cell["fingerprint"]),
        engine_version=cell["engine_version"], results=tuple(results),
    )


def reference(store, where: RunFilter, keys: list[str]) -> list[AggregateRow]:
    """`aggregate` computed from the stored documents with `kitt._compare.compare.Stats`: an
    implementation independent of both SQL paths."""
    values: dict[tuple, list[float]] = {}
    runs: dict[tuple, set[str]] = {}
    for run_id, document in store.documents(where):
        run = from_json(document, Run)
        fields = {"model": run.model, "engine": run.engine.engine, "mode": run.engine.mode,
                  "engine_version": run.engine_version, "suite": run.suite,
                  "status": run.status, "fingerprint": run.hardware.fingerprint}
        for result in run.results:
            for metric in result.metrics:
                group = (*(fields[key] for key in keys), result.name, metric.name, metric.unit)
                values.setdefault(group, []).append(metric.value)
                runs.setdefault(group, set()).add(run_id)
    out = []
    for group in sorted(values, key=lambda g: [(0, "") if v is None else (1, v) for v in g]):
        stats = Stats.of(values[group])
        out.append(AggregateRow(dict(zip(keys, group[:len(keys)], strict=True)), *group[-3:],
                                runs=len(runs[group]), n=stats.n, mean=stats.mean,
                                stddev=stats.stddev, cv=stats.cv, min=stats.min,
                                max=stats.max))
    return out


def assert_consistent(store, rng: random.Random) -> None:
    """Totals, scan and reference agree, for random groupings and filters."""
    for _ in range(3):
        keys = rng.sample(GROUP_KEYS, rng.randint(0, 3))
        field = rng.choice(GROUP_KEYS)
        value = rng.choice([v for v in CELL_VALUES[field] if v is not None])
        for where in (EVERY_RUN, RunFilter(**{field: value})):
            totals = aggmod.from_totals(store._query, where, keys)
            assert_same_aggregates(totals, aggmod.by_scan(store._query, store._where, where,
                                                          keys))
            assert_same_aggregates(totals, reference(store, where, keys))
            assert_same_aggregates(store.aggregate(where, keys), totals)
    # A time range is finer than the totals: aggregate scans, and is still right.
    since = RunFilter(since=T0 + timedelta(minutes=rng.randint(0, 50)))
    assert_same_aggregates(store.aggregate(since, ["model"]), reference(store, since, ["model"]))


@pytest.mark.parametrize("seed", range(3))
def test_totals_equal_a_scan_after_random_saves_replaces_and_deletes(store, seed):
    random_sequence(store, seed)


def test_bulk_totals_writes_equal_a_scan_too(store, monkeypatch):
    """PostgreSQL writes many totals rows at once through COPY: force it for every write."""
    monkeypatch.setattr(totals, "BULK_ROWS", 1)
    random_sequence(store, 3)


def random_sequence(store, seed: int) -> None:
    rng = random.Random(seed)
    stored: list[str] = []
    minute = 0

    def new_run(run_id: str | None = None) -> Run:
        nonlocal minute
        minute += 1
        return random_run(rng, run_id or f"r{seed}-{minute:04d}", minute)

    for step in range(60):
        op = rng.random()
        if op < 0.35 or len(stored) < 3:
            run = new_run()
            store.save_run(run)
            stored.append(run.id)
        elif op < 0.5:  # one transaction: new runs, replacements, an id given twice
            batch = [new_run(), new_run(rng.choice(stored)), new_run()]
            batch.append(new_run(batch[0].id))
            store.save_runs(batch)
            stored += [i for i in dict.fromkeys(run.id for run in batch) if i not in stored]
        elif op < 0.65:  # the same id with new values, maybe in another cell
            store.save_run(new_run(rng.choice(stored)))
        elif op < 0.75:  # as `kitt run`: saved running without results, then done
            run = new_run()
            store.save_run(attrs.evolve(run, status="running", results=()))
            store.save_run(run)
            stored.append(run.id)
        elif op < 0.9:
            store.delete_run(stored.pop(rng.randrange(len(stored))))
        else:
            gone = [stored.pop(rng.randrange(len(stored))) for _ in range(2)]
            assert store.delete_runs(gone) == gone
        if step % 6 == 5:
            assert_consistent(store, rng)
    assert_consistent(store, rng)
    assert store.check() == []  # the stored totals equal a recompute, group by group


def test_import_keeps_totals_in_step(store, tmp_path):
    rng = random.Random(7)
    runs = [random_run(rng, f"i{i}", i) for i in range(30)]
    store.save_runs(runs[:10])
    from kitt._util.converter import to_json

    changed = [attrs.evolve(random_run(rng, run.id, 99), model="a") for run in runs[:5]]
    (tmp_path / "runs.jsonl").write_text("".join(to_json(r) + "\n" for r in runs[10:] + changed))
    report = transfer.import_paths(store, [tmp_path / "runs.jsonl"])
    assert (report.added, report.replaced) == (20, 5)
    assert store.check() == []
    assert_consistent(store, rng)


def test_huge_and_constant_values_never_break_a_save(store):
    """PostgreSQL float arithmetic raises on overflow: totals are computed in Python, so
    metrics near 1e308 save, replace and delete; their spread is reported unknown."""
    def run(i, values):
        return attrs.evolve(make_run(i, repeats=1, metrics=1), results=(BenchmarkResult(
            "x", "1", 1, True, metrics=tuple(Metric("v", v) for v in values)),))

    store.save_runs([run(1, [1e308, -1e308]), run(2, [1e308, 1e308]), run(3, [-1e308])])
    store.save_run(run(4, [0.1, 0.1, 0.1]))
    store.save_run(attrs.evolve(run(6, [1.3e154, -1.3e154]), model="squares"))
    store.save_run(run(5, [0.1]))
    rows = {r.group["engine"]: r for r in store.aggregate(group_by=["engine"])}
    huge = rows["llamacpp"]
    assert huge.n == 11 and huge.min == -1e308
    squares = store.aggregate(RunFilter(model="squares"), [])[0]
    assert (squares.n, squares.stddev) == (2, None)  # its sum of squares exceeds floats
    store.delete_run("run-00001")
    store.save_run(run(2, [5.0, 7.0]))
    assert store.check() == []
    only = store.aggregate(RunFilter(model="tiny.gguf"), [])
    assert_same_aggregates(only, aggmod.by_scan(store._query, store._where,
                                                RunFilter(model="tiny.gguf"), []))
    constant = store.aggregate(group_by=[])
    assert constant[0].stddev is None  # 1e308 spreads cannot be represented


def test_equal_values_have_no_spread(store):
    store.save_runs([make_run(i, repeats=3, metrics=1, value=0.1) for i in range(3)])
    row = next(r for r in store.aggregate(group_by=[]) if r.metric == "m0")
    # 0.1, 0.6, 1.1 per run (base + rep * 0.5) three times: the spread is exact
    assert row.n == 9 and row.stddev == pytest.approx(Stats.of([0.1, 0.6, 1.1] * 3).stddev)
    acc = next(r for r in store.aggregate(group_by=[]) if r.metric == "accuracy")
    assert (acc.n, acc.stddev, acc.cv) == (3, 0.0, 0.0)
