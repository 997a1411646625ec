"""A stop signal ends `kitt run` cleanly whenever it arrives (docs/run.md, "Stopping a
run"): SIGINT and SIGTERM, to KITT alone and to its whole process group (a terminal's
Ctrl-C, `timeout`), in every phase. Each case waits for its phase (a line KITT or the
engine writes), sends the signal, and checks the exit code, what was stored, and that no
engine process is left.

The phases come from the `stall` test engine (tests/fixtures/plugins/kitt-engine-stall),
which stalls where a test tells it; tests/run/test_run_signals_engines.py does the same
against real engines, natively and in Docker, and for `engines serve` and campaigns.
"""

from __future__ import annotations

import os
import signal
import sqlite3

import attrs
import pytest
from support import (
    finished,
    free_port,
    interrupt,
    start_kitt,
    wait_delivered,
    wait_for_line,
    wait_until,
)
from support.stall import (
    SIGNALS,
    TARGETS,
    assert_interrupted_cleanly,
    engine_log,
    signal_name,
    stored_runs,
)


@attrs.frozen
class Phase:
    stall: str
    suite: str
    reached: str
    """What shows KITT is in the phase: a line on its stderr, or `log:TEXT` in the
    engine's log (after `after`, a stderr line)."""
    after: str | None = None
    warmup: bool = False
    stored: str | None = None
    """The stored run's status; None: nothing is stored."""


PHASES = {
    "preflight": Phase("preflight", "hello", "stall: waiting in preflight"),
    "launch": Phase("requests", "hello", "starting stall (native)"),
    "health wait": Phase("health", "hello", "log:HEALTH polled"),
    "warmup": Phase("requests", "hello", "log:REQUEST", after="warming up", warmup=True),
    "performance benchmark": Phase("requests", "perf", "log:REQUEST",
                                   after="running throughput", stored="interrupted"),
    # Two client processes: stopped with the benchmark, their requests with them.
    "performance benchmark, 2 workers": Phase("requests", "perf-workers", "log:REQUEST",
                                              after="running throughput",
                                              stored="interrupted"),
    "quality benchmark": Phase("requests", "quality", "log:REQUEST /v1/completions",
                               after="running stalled", stored="interrupted"),
    "storing": Phase("none", "hello", "storing results", stored="passed"),
    "teardown": Phase("none", "hello", "log:TERM received", after="stopping stall",
                      stored="passed"),
}

def start_run(work, phase: Phase, *options: str, command: tuple[str, ...] = ()):
    args = ["run", "-m", str(work["model"].gguf_path), "-e", "stall",
            "-O", f"stall={phase.stall}", *options,
            "-s", str(work["dir"] / f"{phase.suite}.yaml"), "-o", str(work["out"]),
            "--port", str(free_port())]
    if not phase.warmup:
        args.append("--skip-warmup")
    return start_kitt(*args, env=work["env"], site=work["site"], command=command)


def wait_for_phase(proc, work, phase: Phase) -> None:
    if phase.after:
        wait_for_line(proc, phase.after, stream="stderr")
    if phase.reached.startswith("log:"):
        text = phase.reached[4:]
        wait_until(lambda: text in engine_log(work["out"]),
                   what=f"{text!r} in the engine log")
    else:
        wait_for_line(proc, phase.reached, stream="stderr")


def assert_stopped(work, phase: Phase, code: int, err: str, sig: int) -> None:
    assert_interrupted_cleanly(code, err, sig)
    runs = stored_runs(work["db"])
    if phase.stored is None:
        assert runs == [], "nothing was measured, yet a run was stored"
        assert "nothing was stored" in err, err
    else:
        (run,) = runs
        assert run.status == phase.stored, run.error
        assert f"stored as run {run.id} ({run.status})" in err, err
        assert (work["out"] / "metrics.json").is_file()  # the results folder too


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("sig", SIGNALS, ids=signal_name)
@pytest.mark.parametrize("phase_name", [name for name in PHASES if name not in
                                        ("storing", "teardown")])
def test_a_signal_stops_the_run_in_every_phase(stall_work, phase_name, sig, target):
    phase = PHASES[phase_name]
    proc = start_run(stall_work, phase)
    wait_for_phase(proc, stall_work, phase)
    code, err = interrupt(proc, sig, group=target == "group")
    assert_stopped(stall_work, phase, code, err, sig)
    if phase.stored == "interrupted":
        (run,) = stored_runs(stall_work["db"])
        benchmark = phase.after.removeprefix("running ")  # the benchmark under way
        name = signal.Signals(sig).name
        assert run.error == f"interrupted by {name} during {benchmark} (run 1)"
        (result,) = run.results
        assert (result.name, result.passed, result.details) == (
            benchmark, False, {"interrupted_by": name})
        assert result.error.startswith(f"interrupted by {name} after ")
        assert f"{benchmark} (run 1) was under way; 0 of 1 benchmark runs finished" in err
        # The request in flight was cancelled before the engine was told to stop.
        assert "TERM received; requests still open: 0" in engine_log(stall_work["out"])
    if phase_name not in ("preflight", "launch"):
        assert "the engine was stopped" in err


@pytest.mark.parametrize("sig", SIGNALS, ids=signal_name)
def test_a_signal_while_storing_waits_until_the_run_is_stored(stall_work, sig):
    # The test holds SQLite's write lock, so KITT's save waits there; the signal comes
    # then, and the run must still be stored whole once the lock is released.
    phase = PHASES["storing"]
    proc = start_run(stall_work, phase)
    wait_for_line(proc, "starting stall", stream="stderr")  # KITT has opened the store
    lock = sqlite3.connect(stall_work["db"], isolation_level=None)
    try:
        lock.execute("BEGIN EXCLUSIVE")
        wait_for_phase(proc, stall_work, phase)
        wait_until(lambda: (stall_work["out"] / "metrics.json").is_file(),
                   what="the results folder (written just before the store)")
        proc.send_signal(sig)
        wait_delivered(proc.pid)
        assert proc.poll() is None, "KITT exited while its run was half stored"
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    code, err = finished(proc)
    assert_stopped(stall_work, phase, code, err, sig)
    assert "1 of 1 benchmark runs finished" in err


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("sig", SIGNALS, ids=signal_name)
def test_a_signal_during_teardown_lets_it_finish_and_keeps_the_run(stall_work, sig, target):
    # The engine takes its time to stop (until `release` exists); a first signal then
    # must neither cut its graceful stop short nor lose the finished run.
    release = stall_work["dir"] / "release"
    phase = PHASES["teardown"]
    proc = start_run(stall_work, phase, "-O", f"hold_term={release}")
    wait_for_phase(proc, stall_work, phase)
    if target == "group":
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    wait_delivered(proc.pid)
    release.touch()
    code, err = finished(proc)
    assert "second signal" not in err
    assert "TERM released" in engine_log(stall_work["out"]), "the graceful stop was cut short"
    assert_stopped(stall_work, phase, code, err, sig)


def test_a_second_signal_skips_the_grace_period(stall_work):
    # The engine would wait for ever for `release`; only a second signal ends the run.
    phase = PHASES["performance benchmark"]
    proc = start_run(stall_work, phase, "-O", f"hold_term={stall_work['dir'] / 'release'}")
    wait_for_phase(proc, stall_work, phase)
    proc.send_signal(signal.SIGTERM)
    wait_until(lambda: "TERM received" in engine_log(stall_work["out"]),
               what="the graceful stop")
    code, err = interrupt(proc, signal.SIGINT)
    assert "second signal: stopping the engine now (no grace period)" in err
    assert "TERM released" not in engine_log(stall_work["out"])
    assert_stopped(stall_work, phase, code, err, signal.SIGTERM)  # the first signal's code


@pytest.mark.parametrize("phase_name", ["health wait", "performance benchmark"])
def test_under_timeout(stall_work, phase_name):
    # `timeout` runs KITT in its own process group and passes a SIGTERM it gets (a CI
    # cancel, a supervisor) to KITT and then to the whole group, KITT's workers included.
    phase = PHASES[phase_name]
    proc = start_run(stall_work, phase, command=("timeout", "3600"))
    wait_for_phase(proc, stall_work, phase)
    code, err = interrupt(proc, signal.SIGTERM)
    assert_stopped(stall_work, phase, code, err, signal.SIGTERM)
