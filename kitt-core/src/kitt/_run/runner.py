"""`kitt run`: preflight -> fingerprint -> launch -> health -> warmup -> each benchmark of
the suite (repeated) -> teardown (always) -> store (with the report).

Exit codes: 0 every benchmark passed; 1 some benchmark failed or errored; 2 bad input or
preflight (raised as BadInput before anything starts); 3 the engine failed to start or
died (a run that was under way is stored as failed with what it measured); 128 + N a
signal N stopped it (stored as interrupted once a benchmark had started).
"""

from __future__ import annotations

import contextlib
import functools
import re
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import attrs

from kitt import plugins
from kitt._run.suites import PlannedBenchmark, Suite, load_suite
from kitt._util import signals
from kitt._util.extras import require_extra
from kitt._util.version import __version__
from kitt.benchmark import Benchmark, BenchmarkContext, Progress, Target
from kitt.errors import EXIT_ENGINE, EXIT_FAILED, EXIT_OK, EngineFailed, KittError
from kitt.records import BenchmarkResult, EngineConfig, Fingerprint, Metric, Run, RunStatus


@attrs.frozen
class RunRequest:
    model: str
    engine_config: EngineConfig
    suite: str = "quick"
    runs: int | None = None
    skip_warmup: bool = False
    url: str | None = None
    """Benchmark an engine that is already running here instead of launching one."""
    output_dir: Path | None = None
    store_url: str | None = None
    auto_pull: bool = False
    seed: int = 0


@attrs.frozen
class RunOutcome:
    run: Run
    output_dir: Path
    exit_code: int
    store_url: str


class Events(Protocol):
    """How a run reports what it is doing (the CLI draws progress from these)."""

    def stage(self, text: str) -> None: ...

    def benchmark_started(self, name: str, run_number: int, runs: int) -> Progress: ...

    def benchmark_finished(self, result: BenchmarkResult) -> None: ...


class EngineDied(Exception):
    pass


def execute(request: RunRequest, events: Events) -> RunOutcome:
    """Run a suite end to end, in docs/run.md's order: validate, preflight, fingerprint,
    launch, warm up, measure, tear down, store. Raises BadInput (exit 2) and EngineFailed
    (exit 3, the engine never served) before any result exists; otherwise returns the
    stored outcome.

    A first SIGINT or SIGTERM raises `signals.Interrupted` wherever the run is: the
    benchmark under way stops, the engine is torn down, what was measured is stored as an
    `interrupted` run, and the Interrupted goes on up (exit 128 + the signal) with notes
    saying what was kept."""
    kept = _Kept()
    with signals.handle_signals():
        try:
            return _execute(request, events, kept)
        except signals.Interrupted as stop:
            stop.note(kept.note())
            raise


@attrs.define
class _Kept:
    """What a run has stored so far: the note on a signal's Interrupted, wherever it
    arrives."""

    stored: Run | None = None
    out: Path | None = None
    total_runs: int = 0

    def note(self) -> str:
        run = self.stored
        if run is None:
            return "nothing was stored"
        done = sum(1 for r in run.results if "interrupted_by" not in r.details)
        return (f"{done} of {self.total_runs} benchmark runs finished; stored as run "
                f"{run.id} ({run.status}) in {self.out}")


def _execute(request: RunRequest, events: Events, kept: _Kept) -> RunOutcome:
    from kitt._engines import preflight
    from kitt._engines.launcher import new_run_id
    from kitt._fingerprint import take_fingerprint
    from kitt._storage.open import open_store

    require_extra("report", "kitt run (its report.html)")
    engine = preflight.find_engine(request.engine_config.engine)
    suite = load_suite(request.suite, plugins.benchmarks(), runs=request.runs)
    kept.total_runs = suite.total_runs
    store = open_store(request.store_url)  # a wrong URL must fail before the engine starts
    try:
        run_id, started = new_run_id(), _now()
        out = request.output_dir or default_output_dir(request.model, engine.name, started,
                                                       run_id)
        kept.out = out
        hardware = functools.cache(take_fingerprint)
        if request.url:
            target_url = request.url.rstrip("/")
            events.stage(f"checking {target_url}")
            served = preflight.check_external(target_url, engine, request.model)
            plan = None
        else:
            plan = preflight.check_config(request.engine_config, request.model, log_dir=out,
                                          auto_pull=request.auto_pull, hardware=hardware)
        events.stage("fingerprinting this machine")
        draft = _Draft(request, suite, hardware(), run_id, started)
        stop: signals.Interrupted | None = None
        try:
            if plan is None:
                target = _target(engine, request, target_url, served)
                _measure(suite, target, out, None, events, draft)
            else:
                with _launched(plan, run_id, out, events) as (target, running):
                    draft.engine_version = running.version
                    draft.engine_version_source = running.version_source
                    draft.image = running.image
                    draft.log_path = running.log_path
                    _measure(suite, target, out, running, events, draft)
        except EngineDied as died:
            draft.error = str(died)
            draft.exit_code = EXIT_ENGINE
        except signals.Interrupted as interrupted:
            stop = interrupted
            if not draft.measured():  # nothing measured yet: nothing to keep
                _remove_if_empty(out)
                raise
            draft.interrupt(stop)
        except BaseException as exc:
            if not draft.results:  # launch or warmup failed: nothing to keep
                _remove_if_empty(out)
                raise
            if not isinstance(exc, EngineFailed):  # a bug: keep what was measured
                draft.error = f"{type(exc).__name__}: {exc}".rstrip(": ")
                draft.status = "error"
                _finish(draft, store, out, events, kept)
                raise
            draft.error, draft.exit_code = str(exc), EXIT_ENGINE
        with signals.critical():  # a signal while storing is raised once it is stored
            run = _finish(draft, store, out, events, kept)
        if stop is not None:
            raise stop
        return RunOutcome(run, out, draft.exit_code, store.url)
    finally:
        store.close()


@attrs.define
class _Draft:
    """A run being measured: what `_finish` turns into a stored Run."""

    request: RunRequest
    suite: Suite
    hardware: Fingerprint
    run_id: str
    started: datetime
    results: list[BenchmarkResult] = attrs.field(factory=list)
    current: BenchmarkResult | None = None
    """The benchmark under way (its identity; it has no measurements until it returns)."""
    engine_version: str | None = None
    engine_version_source: str | None = None
    image: str | None = None
    log_path: Path | None = None
    error: str | None = None
    status: RunStatus | None = None
    """Set when the run ended early: `interrupted` by a signal, `error` by a bug."""
    exit_code: int | None = None

    def measured(self) -> bool:
        """Whether any benchmark started: from then on a stop stores the run."""
        return bool(self.results) or self.current is not None

    def interrupt(self, stop: signals.Interrupted) -> None:
        """The run was stopped by a signal: the benchmark under way becomes an
        interrupted result (its partial measurements are not trustworthy: dropped)."""
        where = ""
        if self.current is not None:
            running = self.current
            elapsed = (_now() - running.started_at).total_seconds()
            self.results.append(attrs.evolve(
                running, passed=False, finished_at=_now(),
                error=f"interrupted by {stop.signal_name} after {elapsed:.1f} s; "
                      "its partial measurements were discarded",
                details={"interrupted_by": stop.signal_name}))
            self.current = None
            where = f" during {running.name} (run {running.run_number})"
            stop.note(f"{running.name} (run {running.run_number}) was under way")
        self.error = f"interrupted by {stop.signal_name}{where}"
        self.status = "interrupted"
        self.exit_code = stop.exit_code

    def run(self) -> Run:
        config = self.request.engine_config
        mode = "external" if self.request.url else config.mode
        status = self.status or ("failed" if self.error or not all(
            result.passed for result in self.results) else "passed")
        return Run(
            id=self.run_id, model=self.request.model,
            engine=attrs.evolve(config, mode=mode, image=self.image or config.image),
            suite=self.suite.name, status=status, started_at=self.started,
            kitt_version=__version__, hardware=self.hardware, finished_at=_now(),
            engine_version=self.engine_version,
            engine_version_source=self.engine_version_source, results=tuple(self.results),
            error=self.error,
            config={"suite": self.suite.effective_config(),
                    "engine": _config_json(config, mode),
                    "url": self.request.url, "seed": self.request.seed,
                    "skip_warmup": self.request.skip_warmup},
        )


def _finish(draft: _Draft, store: Any, out: Path, events: Events, kept: _Kept) -> Run:
    from kitt._run.results_folder import write_results

    run = draft.run()
    if draft.exit_code is None:
        draft.exit_code = EXIT_OK if run.status == "passed" else EXIT_FAILED
    events.stage("storing results")
    write_results(run, out, engine_log=draft.log_path)
    store.save_run(run)
    kept.stored = run
    return run


@contextmanager
def _launched(plan: Any, run_id: str, out: Path, events: Events
              ) -> Iterator[tuple[Target, Any]]:
    """The engine KITT launches for the run (always torn down), as a target."""
    from kitt._engines.launcher import launch

    events.stage(f"starting {plan.engine.name} ({plan.mode}) on {plan.model}")
    with launch(plan, log_dir=out, run_id=run_id, progress=events.stage) as running:
        events.stage(f"{plan.engine.name} is healthy at {running.base_url}")
        model_path = Path(running.model_path) if running.model_path else None
        yield Target(running.base_url, running.served_name, running.api, plan.engine.name,
                     model_path, pid=running.pid, container_id=running.container_id,
                     metrics_path=plan.engine.metrics_path,
                     tokenize=plan.engine.tokenize_api), running


def _target(engine: Any, request: RunRequest, base_url: str, served: str) -> Target:
    """The engine already running at `--url`, as a target."""
    model_path = Path(request.model) if Path(request.model).exists() else None
    return Target(base_url, served, engine.api, engine.name, model_path,
                  metrics_path=engine.metrics_path, tokenize=engine.tokenize_api)


def _measure(suite: Suite, target: Target, out: Path, running: Any, events: Events,
             draft: _Draft) -> None:
    if not draft.request.skip_warmup and suite.warmup.requests:
        _warm_up(target, suite, events)
    _run_benchmarks(suite, target, draft.hardware, out, draft.request.seed, running, events,
                    draft)


def _warm_up(target: Target, suite: Suite, events: Events) -> None:
    from kitt._run.warmup import warm_up

    events.stage(f"warming up ({suite.warmup.requests} requests)")
    warm_up(target.base_url, target.api, target.model, requests=suite.warmup.requests,
            max_tokens=suite.warmup.max_tokens)


def _run_benchmarks(suite: Suite, target: Target, hardware: Fingerprint, out: Path,
                    seed: int, running: Any, events: Events, draft: _Draft) -> None:
    for planned in suite.benchmarks:
        for run_number in range(1, planned.runs + 1):
            progress = events.benchmark_started(planned.name, run_number, planned.runs)
            folder = out / "work" / f"{planned.name}-{run_number}"
            folder.mkdir(parents=True, exist_ok=True)
            context = BenchmarkContext(target, hardware, folder, run_number, seed, progress)
            draft.current = _identity(planned, run_number)
            result = run_one(planned, context, draft.current)
            draft.results.append(result)
            draft.current = None
            events.benchmark_finished(result)
            died = running.exit_status() if running is not None else None
            if died is not None:
                from kitt._engines.health import last_lines

                events.stage(f"engine log, last lines ({running.log_path}):\n"
                             f"{last_lines(running.log_path)}")
                raise EngineDied(f"the engine died during {planned.name} "
                                 f"(run {run_number}): {died}")


def _identity(planned: PlannedBenchmark, run_number: int) -> BenchmarkResult:
    """A benchmark run as started: who it is, nothing measured yet."""
    from kitt._util.converter import unstructure

    return BenchmarkResult(name=planned.name, version=planned.benchmark.version,
                           run_number=run_number, params=unstructure(planned.params),
                           passed=False, started_at=_now())


def run_one(planned: PlannedBenchmark, context: BenchmarkContext,
            started: BenchmarkResult) -> BenchmarkResult:
    """One benchmark run (`started` says which); its failure becomes the result's error,
    never the suite's end. A signal (`signals.Interrupted`) is no failure: it goes on up."""
    try:
        measured = planned.benchmark.run(context, planned.params)
    except KittError as error:
        return attrs.evolve(started, error=str(error), finished_at=_now())
    except Exception as exc:
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return attrs.evolve(started, error=detail, finished_at=_now(),
                            details={"traceback": traceback.format_exc(limit=8)})
    metrics = tuple(_with_direction(planned.benchmark, m) for m in measured.metrics)
    return attrs.evolve(started, passed=measured.passed, metrics=metrics,
                        requests=measured.requests, items=measured.items,
                        details=measured.details, warnings=tuple(measured.warnings),
                        finished_at=_now())


def _with_direction(benchmark: Benchmark, metric: Metric) -> Metric:
    """A metric returned without a direction takes the one its benchmark declares."""
    if metric.direction is not None:
        return metric
    spec = benchmark.metric_spec(metric.name)
    return attrs.evolve(metric, direction=spec.direction) if spec is not None else metric


def default_output_dir(model: str, engine: str, started: datetime, run_id: str) -> Path:
    """KITT_HOME/results/MODEL/ENGINE/TIMESTAMP-RUNID: sorted by time, never shared."""
    from kitt._util.files import kitt_home

    name = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(model).name or model).strip("_") or "model"
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    return kitt_home() / "results" / name / engine / f"{stamp}-{run_id}"


def _remove_if_empty(folder: Path) -> None:
    # OSError: absent, or it holds the engine's log, which the error message points at.
    with contextlib.suppress(OSError):
        folder.rmdir()


def _config_json(config: EngineConfig, mode: str) -> dict[str, Any]:
    from kitt._util.converter import unstructure

    return {**unstructure(config), "mode": mode}


def _now() -> datetime:
    return datetime.now(timezone.utc)
