"""Comparing runs: statistics over each run's repetitions, deltas against a baseline run and
regression flags from percent thresholds (docs/reports.md).

This is KITT's one comparison implementation: `kitt results compare` (= `kitt storage
compare`) and `kitt report` all compute here, so a number printed in a terminal and the
same number in a report can never disagree. What it needs of a run is a `RunValues`: the
run's identity and each metric's values over its repetitions. One comes from a whole
`Run` (a results folder, or a report that draws the run anyway) or from the store's
`comparison_values` (a few indexed rows per run instead of documents that hold every
request sample); both go through `metric_values`, so they key results identically.
"""

from __future__ import annotations

import fnmatch
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import attrs

from kitt.errors import BadInput
from kitt.model import Metric, Run

if TYPE_CHECKING:
    from kitt.storage.api import RunMetrics, RunSummary, Store

Better = Literal["higher", "lower", "none"]
Flag = Literal["ok", "warning", "critical", "missing"]

DEFAULT_WARN_PCT = 5.0
DEFAULT_CRITICAL_PCT = 10.0
BETTER_VALUES: tuple[Better, ...] = ("higher", "lower", "none")
_FLAG_RANK = {None: 0, "ok": 1, "missing": 2, "warning": 3, "critical": 4}


# -- which direction is bad ----------------------------------------------------------------

_NEUTRAL_NAME = re.compile(r"_stderr$|^n_|^n$|^window$|^requests$|^successful$|_count$")
_ERROR_NAME = re.compile(r"error|fail|incomplete|timeout|abort|reject")
_SPREAD_NAME = re.compile(r"_std$|_stddev$|_cv$")
_TIME_UNITS = {"ns", "us", "µs", "ms", "s", "sec", "min", "h"}
_MEMORY_UNITS = {"b", "bytes", "kib", "mib", "gib", "tib", "kb", "mb", "gb", "tb"}
_HIGHER_NAME = re.compile(
    r"(^|_)(acc|accuracy|exact_match|em|f1|mc1|mc2|bleu|rouge\w*|score|goodput|throughput)"
    r"($|_)|pass@\d+|_per_s($|_)|per_second")
_LOWER_NAME = re.compile(r"(^|_)(latency|ttft|itl|tpot|e2e|duration|memory|mem|vram|rss)($|_)"
                         r"|_ms($|_)|_mib($|_)")


def infer_better(metric: str, unit: str) -> Better:
    """Which way a metric should move, from its name and unit (documented in
    docs/reports.md; a thresholds file can override it per metric).

    Order matters: a standard error or a count is never a regression; error counts and
    spreads are bad when they grow whatever their unit; then the unit decides (rates are
    good when higher, times and memory when lower); then well-known names; else nothing is
    flagged for the metric.
    """
    name, unit_key = metric.lower(), unit.strip().lower()
    if _NEUTRAL_NAME.search(name):
        return "none"
    if _ERROR_NAME.search(name) or _SPREAD_NAME.search(name):
        return "lower"
    if unit_key.endswith(("/s", "/sec")):
        return "higher"
    if unit_key in _TIME_UNITS or unit_key in _MEMORY_UNITS:
        return "lower"
    if _HIGHER_NAME.search(name):
        return "higher"
    if _LOWER_NAME.search(name):
        return "lower"
    return "none"


# -- thresholds -------------------------------------------------------------------------------

@attrs.frozen
class Threshold:
    """The effective rule for one metric: percent change in the bad direction that warns,
    and that is critical."""

    warn_pct: float = DEFAULT_WARN_PCT
    critical_pct: float = DEFAULT_CRITICAL_PCT
    better: Better = "none"


@attrs.frozen
class Rule:
    """One `metrics:` entry of a thresholds file; None fields fall back to the defaults."""

    pattern: str
    warn_pct: float | None = None
    critical_pct: float | None = None
    better: Better | None = None

    def matches(self, benchmark: str, metric: str) -> bool:
        return any(fnmatch.fnmatchcase(name, self.pattern)
                   for name in (metric, f"{benchmark}/{metric}"))

    @property
    def exact(self) -> bool:
        return not any(char in self.pattern for char in "*?[")


@attrs.frozen
class Thresholds:
    """Default thresholds plus per-metric rules. Precedence for each field: the metric's
    rule, then `--warn/--critical` (applied with `with_defaults`), then the file's top-level
    `warn`/`critical`, then 5% / 10%."""

    warn_pct: float = DEFAULT_WARN_PCT
    critical_pct: float = DEFAULT_CRITICAL_PCT
    rules: tuple[Rule, ...] = ()

    def with_defaults(self, warn_pct: float | None, critical_pct: float | None) -> Thresholds:
        for value, option in ((warn_pct, "--warn"), (critical_pct, "--critical")):
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise BadInput(f"{option} must be a percentage >= 0, got {value}")
        if warn_pct is not None and critical_pct is not None and warn_pct > critical_pct:
            raise BadInput(f"--warn {warn_pct:g} is above --critical {critical_pct:g}",
                           hint="the warning threshold must not exceed the critical one")
        return attrs.evolve(
            self,
            warn_pct=self.warn_pct if warn_pct is None else warn_pct,
            critical_pct=self.critical_pct if critical_pct is None else critical_pct,
        )

    def rule_for(self, benchmark: str, metric: str) -> Rule | None:
        # An exact name beats any glob; globs apply in file order.
        matching = [rule for rule in self.rules if rule.matches(benchmark, metric)]
        exact = [rule for rule in matching if rule.exact]
        return (exact or matching or [None])[0]

    def for_metric(self, benchmark: str, metric: str, unit: str) -> Threshold:
        rule = self.rule_for(benchmark, metric) or Rule("")
        critical = self.critical_pct if rule.critical_pct is None else rule.critical_pct
        warn = self.warn_pct if rule.warn_pct is None else rule.warn_pct
        # A lone `critical: 3` under a default warn of 5 means "3 is critical": a warning
        # level above the critical one would never show, so it follows the critical one.
        return Threshold(warn_pct=min(warn, critical), critical_pct=critical,
                         better=rule.better or infer_better(metric, unit))


def load_thresholds(path: Path | str) -> Thresholds:
    """Read a thresholds file (docs/reports.md); errors name the file and line."""
    from kitt.yamlfile import load_yaml

    doc = load_yaml(path, what="thresholds file")
    top = doc.mapping(doc.data, field="(top level)")
    doc.only_keys(top, ("warn", "critical", "metrics"))

    def percent(node: Mapping, key: str, field: str) -> float | None:
        value = node.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not (
                math.isfinite(value) and value >= 0):
            raise doc.error(f"expected a percentage >= 0, got {value!r}", node, key,
                            field=field, hint="write a number such as 5 (meaning 5%)")
        return float(value)

    def ordered(node: Mapping, warn: float | None, critical: float | None, field: str) -> None:
        if warn is not None and critical is not None and warn > critical:
            raise doc.error(f"warn {warn:g} is above critical {critical:g}", node, "warn",
                            field=field, hint="the warning threshold must not exceed critical")

    warn, critical = percent(top, "warn", "warn"), percent(top, "critical", "critical")
    ordered(top, warn, critical, "warn")
    rules = []
    metrics = doc.mapping(top.get("metrics"), field="metrics", parent=top, key="metrics")
    for pattern, entry in metrics.items():
        field = f"metrics.{pattern}"
        entry = doc.mapping(entry, field=field, parent=metrics, key=pattern)
        doc.only_keys(entry, ("warn", "critical", "better"), field=field)
        better = entry.get("better")
        if better is not None and better not in BETTER_VALUES:
            raise doc.error(f"expected one of {', '.join(BETTER_VALUES)}, got {better!r}",
                            entry, "better", field=f"{field}.better",
                            hint="higher: bigger is better; lower: smaller is better; "
                                 "none: never flag")
        rule = Rule(str(pattern), percent(entry, "warn", f"{field}.warn"),
                    percent(entry, "critical", f"{field}.critical"), better)
        ordered(entry, rule.warn_pct, rule.critical_pct, field)
        rules.append(rule)
    return Thresholds(DEFAULT_WARN_PCT if warn is None else warn,
                      DEFAULT_CRITICAL_PCT if critical is None else critical, tuple(rules))


# -- statistics ---------------------------------------------------------------------------------

@attrs.frozen
class Stats:
    """A metric over a run's repetitions. `stddev` is the sample standard deviation (None
    for one value); `cv` is stddev / |mean| (None when undefined)."""

    n: int
    mean: float
    stddev: float | None
    cv: float | None
    min: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats:
        if not values:
            raise ValueError("no values")
        n = len(values)
        # Dividing first keeps the sum of values near 1e308 finite; d * d (unlike d ** 2)
        # gives inf instead of raising, and a non-finite spread is reported as unknown.
        mean = math.fsum(v / n for v in values)
        try:
            spread = math.fsum((v - mean) * (v - mean) for v in values)
        except OverflowError:  # the exact sum of squares is beyond floats (fsum raises)
            spread = math.inf
        stddev = _finite(math.sqrt(spread / (n - 1))) if n > 1 else None
        if n > 1 and min(values) == max(values):
            stddev = 0.0  # not 2e-18 from the mean's rounding: equal values do not vary
        cv = _finite(stddev / abs(mean)) if stddev is not None and mean != 0 else None
        return cls(n, mean, stddev, cv, min(values), max(values))


def _finite(value: float) -> float | None:
    """None for inf/nan: JSON has no such numbers and a person can do nothing with them."""
    return value if math.isfinite(value) else None


class ResultLike(Protocol):
    """What comparing reads of a benchmark result: a `kitt.BenchmarkResult`, or the store's
    compact `kitt.storage.ResultMetrics`."""

    @property
    def name(self) -> str: ...

    @property
    def params(self) -> Mapping[str, Any]: ...

    @property
    def metrics(self) -> Sequence[Metric]: ...


def result_keys(results: Sequence[ResultLike]) -> list[str]:
    """A label per result naming its benchmark: the name, plus the parameters that differ
    when one run holds the same benchmark with several parameter sets (a sweep written as
    separate suite entries), so those never pool as if they were repetitions."""
    by_name: dict[str, list[dict[str, str]]] = {}
    flat = [_flat_params(result.params) for result in results]
    for result, params in zip(results, flat, strict=True):
        by_name.setdefault(result.name, []).append(params)
    labels = []
    for result, params in zip(results, flat, strict=True):
        siblings = by_name[result.name]
        varying = sorted({key for other in siblings for key in {*other, *params}
                          if other.get(key) != params.get(key)})
        shown = ", ".join(f"{key}={params[key]}" for key in varying if key in params)
        labels.append(f"{result.name} [{shown}]" if shown else result.name)
    return labels


def _flat_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flat_params(value, f"{name}."))
        else:
            out[name] = json.dumps(value, sort_keys=True, allow_nan=True)
    return out


MetricKey = tuple[str, str, str]
"""(benchmark label, metric name, unit)."""


def metric_values(results: Sequence[ResultLike]) -> dict[MetricKey, list[float]]:
    """Every metric of a run's `results` with its values over the repetitions, in the
    run's order. Failed repetitions count when they report a metric, as in the store's
    statistics. Results without metrics matter too: their parameters can tell siblings
    apart (`result_keys`)."""
    out: dict[MetricKey, list[float]] = {}
    for result, key in zip(results, result_keys(results), strict=True):
        for metric in result.metrics:
            if math.isfinite(metric.value):
                out.setdefault((key, metric.name, metric.unit), []).append(metric.value)
    return out


# -- comparison -----------------------------------------------------------------------------------

@attrs.frozen
class Cell:
    """One run's value of one metric. The baseline's cell has no delta and no flag."""

    stats: Stats | None
    delta: float | None = None
    delta_pct: float | None = None
    flag: Flag | None = None


@attrs.frozen
class Row:
    benchmark: str
    metric: str
    unit: str
    threshold: Threshold
    cells: tuple[Cell, ...]

    @property
    def flag(self) -> Flag | None:
        return max((cell.flag for cell in self.cells), key=_FLAG_RANK.__getitem__)


@attrs.frozen
class RunInfo:
    """Who a compared run is, as the comparison prints it."""

    id: str
    model: str
    engine: str
    engine_version: str | None
    mode: str
    suite: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    fingerprint: str

    @classmethod
    def of_run(cls, run: Run) -> RunInfo:
        return cls(run.id, run.model, run.engine.engine, run.engine_version, run.engine.mode,
                   run.suite, run.status, run.started_at, run.finished_at,
                   run.hardware.fingerprint)

    @classmethod
    def of_summary(cls, summary: RunSummary) -> RunInfo:
        return cls(summary.id, summary.model, summary.engine, summary.engine_version,
                   summary.mode, summary.suite, summary.status, summary.started_at,
                   summary.finished_at, summary.fingerprint)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "model": self.model, "engine": self.engine,
            "engine_version": self.engine_version, "mode": self.mode, "suite": self.suite,
            "status": self.status, "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "fingerprint": self.fingerprint,
        }


@attrs.frozen
class RunValues:
    """What comparing needs of one run: who it is, and every metric's values over the
    run's repetitions (`metric_values`)."""

    info: RunInfo
    values: dict[MetricKey, list[float]] = attrs.field(repr=False)

    @classmethod
    def of_run(cls, run: Run) -> RunValues:
        return cls(RunInfo.of_run(run), metric_values(run.results))

    @classmethod
    def of_stored(cls, stored: RunMetrics) -> RunValues:
        return cls(RunInfo.of_summary(stored.run), metric_values(stored.results))


@attrs.frozen
class Comparison:
    """Runs side by side; `runs[0]` is the baseline."""

    runs: tuple[RunInfo, ...] = attrs.field(repr=False)
    rows: tuple[Row, ...]

    def flagged(self, *flags: Flag) -> list[tuple[Row, int]]:
        """(row, run index) of every cell carrying one of `flags`."""
        return [(row, i) for row in self.rows for i, cell in enumerate(row.cells)
                if cell.flag in flags]

    @property
    def critical(self) -> bool:
        return bool(self.flagged("critical"))

    def counts(self) -> dict[str, int]:
        return {flag: len(self.flagged(flag)) for flag in ("critical", "warning", "missing")}

    def to_dict(self) -> dict[str, Any]:
        """The JSON form `kitt results compare --json` prints."""
        return {
            "baseline": self.runs[0].id,
            "runs": [run.to_dict() for run in self.runs],
            "regressions": self.counts(),
            "rows": [{
                "benchmark": row.benchmark, "metric": row.metric, "unit": row.unit,
                "better": row.threshold.better, "warn_pct": row.threshold.warn_pct,
                "critical_pct": row.threshold.critical_pct, "flag": row.flag,
                "values": [{"run": run.id, **_cell_dict(cell)}
                           for run, cell in zip(self.runs, row.cells, strict=True)],
            } for row in self.rows],
        }


def _cell_dict(cell: Cell) -> dict[str, Any]:
    stats = attrs.asdict(cell.stats) if cell.stats else None
    return {"stats": stats, "delta": cell.delta, "delta_pct": cell.delta_pct, "flag": cell.flag}


def compare(runs: Sequence[RunValues], thresholds: Thresholds | None = None) -> Comparison:
    """Every metric of `runs` side by side, each later run against `runs[0]`."""
    if not runs:
        raise BadInput("nothing to compare", hint="name at least one run")
    thresholds = thresholds or Thresholds()
    per_run = [run.values for run in runs]
    keys = list(dict.fromkeys(key for values in per_run for key in values))
    rows = []
    for key in keys:
        benchmark, metric, unit = key
        threshold = thresholds.for_metric(benchmark, metric, unit)
        stats = [Stats.of(values[key]) if key in values else None for values in per_run]
        base = stats[0]
        cells = [Cell(base)]
        cells += [judge(base, other, threshold) for other in stats[1:]]
        rows.append(Row(benchmark, metric, unit, threshold, tuple(cells)))
    return Comparison(tuple(run.info for run in runs), tuple(rows))


def compare_runs(runs: Sequence[Run], thresholds: Thresholds | None = None) -> Comparison:
    """`compare` of whole runs (results folders, or runs a report draws anyway)."""
    return compare([RunValues.of_run(run) for run in runs], thresholds)


def compare_stored(store: Store, refs: Sequence[str],
                   thresholds: Thresholds | None = None) -> Comparison:
    """`compare` of stored runs (ids or unique prefixes), read without their documents."""
    return compare([RunValues.of_stored(found) for found in store.comparison_values(refs)],
                   thresholds)


def judge(base: Stats | None, other: Stats | None, threshold: Threshold) -> Cell:
    """`other` against the baseline: its delta and flag.

    The percent change is relative to |baseline mean|. A bad move away from a zero
    baseline (errors appearing where there were none) is an unbounded change: critical.
    A metric the baseline has and this run lacks is `missing`; one only this run has is
    simply shown.
    """
    if other is None:
        return Cell(None, flag="missing" if base is not None else None)
    if base is None:
        return Cell(other)
    delta = other.mean - base.mean
    if not math.isfinite(delta):  # means near ±1e308: no honest difference to show
        return Cell(other)
    pct = _finite(100.0 * delta / abs(base.mean)) if base.mean != 0 else None
    if threshold.better == "none":
        return Cell(other, delta, pct, "ok")
    worse = delta if threshold.better == "lower" else -delta
    if worse <= 0:
        flag: Flag = "ok"
    elif pct is None:
        flag = "critical"
    else:  # a threshold of 0 flags any worsening at all
        worse_pct = abs(pct)
        flag = ("critical" if worse_pct >= threshold.critical_pct
                else "warning" if worse_pct >= threshold.warn_pct else "ok")
    return Cell(other, delta, pct, flag)


def load_values(refs: Iterable[str], store_url: str | None = None) -> list[RunValues]:
    """What `compare` needs of each reference: a results folder or its metrics.json is
    read whole; run ids and prefixes are looked up in the store, without their documents.
    The store is opened only when some reference is not a path."""
    refs = list(refs)
    loaded: dict[int, RunValues] = {
        i: RunValues.of_run(_read_run_file(path))
        for i, path in enumerate(map(_run_file, refs)) if path is not None}
    missing = [i for i in range(len(refs)) if i not in loaded]
    if missing:
        from kitt.storage import open_store

        with open_store(store_url, create=False) as store:
            stored = store.comparison_values([refs[i] for i in missing])
        loaded.update(zip(missing, map(RunValues.of_stored, stored), strict=True))
    return [loaded[i] for i in range(len(refs))]


def _run_file(ref: str) -> Path | None:
    """The run document `ref` names as a path (a results folder or a file), if it does."""
    path = Path(ref)
    if path.is_dir() and (path / "metrics.json").is_file():
        path = path / "metrics.json"
    return path if path.is_file() else None


def load_runs(refs: Iterable[str], store_url: str | None = None) -> list[Run]:
    """Runs by id or unique id prefix in the store, or by path to a results folder or its
    metrics.json. The store is opened only when some reference is not a path."""
    refs = list(refs)
    loaded = {i: _read_run_file(path) for i, path in enumerate(map(_run_file, refs))
              if path is not None}
    missing = [i for i in range(len(refs)) if i not in loaded]
    if missing:
        from kitt.storage import open_store

        with open_store(store_url, create=False) as store:
            for i in missing:
                loaded[i] = store.get_run(refs[i])
    return [loaded[i] for i in range(len(refs))]


def _read_run_file(path: Path) -> Run:
    from kitt.converter import from_json

    try:
        return from_json(path.read_bytes(), Run)
    except Exception as exc:  # OSError, bad JSON, or cattrs' validation error groups
        raise BadInput(f"{path} is not a KITT run document: {type(exc).__name__}: {exc}",
                       hint="pass a run id, a results folder or its metrics.json") from None
