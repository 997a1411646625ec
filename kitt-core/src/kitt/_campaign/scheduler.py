"""Running a campaign: each pending entry in turn through `kitt._run.runner.execute`,
in-process, one engine at a time (the launcher always tears the engine down).

The state is saved before a run starts (`running`) and right after it ends, so a
Ctrl-C, a crash or a power cut loses at most the run under way, never a finished one. A
signal stops the campaign after the entry under way is torn down and stored (as an
`interrupted` run, which --resume runs again).
"""

from __future__ import annotations

import re
import shutil
import socket
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import attrs

from kitt._campaign.model import CampaignSpec, Entry
from kitt._campaign.notify import Notifier
from kitt._campaign.state import (
    TO_RUN,
    CampaignState,
    finish_attempt,
    now,
    start_attempt,
    stored_run,
    stored_run_id,
)
from kitt._util import signals
from kitt.errors import EXIT_FAILED, EXIT_OK, BadInput, EngineFailed, KittError

GB = 1_000_000_000
EventsFactory = Callable[[Entry], AbstractContextManager[Any]]


@attrs.frozen
class Outcome:
    status: str
    run_id: str | None
    exit_code: int | None
    reason: str | None = None


def disk_free_bytes(path: Path) -> int:
    while not path.exists() and path != path.parent:  # the output root may not exist yet
        path = path.parent
    return shutil.disk_usage(path).free


def run_campaign(spec: CampaignSpec, plan: list[Entry], state: CampaignState, *,
                 events: EventsFactory, say: Callable[[str], None],
                 warn: Callable[[str], None],
                 free_bytes: Callable[[Path], int] = disk_free_bytes) -> int:
    """Run every entry still to run; returns the campaign's exit code (0 all passed,
    1 some did not, 128+N interrupted by signal N)."""
    notifier = Notifier(spec.notify, spec.name, warn)
    todo = [e for e in plan if e.runnable and state.entry(e.id)["status"] in TO_RUN]
    state.doc.update(status="running", finished_at=None)
    state.save()
    current: dict[str, Any] | None = None
    try:
        with signals.handle_signals():  # Ctrl-C anywhere raises Interrupted, handled below
            for index, entry in enumerate(todo, 1):
                current = state.entry(entry.id)
                say(f"[{index}/{len(todo)}] {entry.id}: {entry.model.reference} on "
                    f"{entry.engine.label}, suite {entry.suite}")
                short = _disk_shortage(spec, free_bytes)
                if short:
                    current.update(status="postponed", reason=short, finished_at=now())
                    state.save()
                    say(f"[{index}/{len(todo)}] {entry.id}: postponed ({short})")
                    continue
                out = _output_dir(spec, entry, current)
                start_attempt(current, out)
                state.save()
                result = run_entry(spec, entry, out, events)
                with signals.critical():  # record the finished run before any Ctrl-C
                    finish_attempt(current, result.status, run_id=result.run_id,
                                   exit_code=result.exit_code, reason=result.reason)
                    state.save()
                say(f"[{index}/{len(todo)}] {entry.id}: {result.status}"
                    + (f" (run {result.run_id})" if result.run_id else "")
                    + (f": {result.reason.splitlines()[0]}" if result.reason else ""))
                if spec.cleanup_work_dirs and result.run_id:
                    shutil.rmtree(out / "work", ignore_errors=True)  # scratch, never results
                _notify_run(notifier, current)
    except signals.Interrupted as stop:  # the entry under way was stored and torn down
        if current is not None and current["status"] == "running":
            _record_interrupted(current, Path(current["output_dir"]), stop)
        state.doc.update(status="interrupted", finished_at=now())
        state.save()
        _notify_end(notifier, state, stop.exit_code, interrupted=True)
        return stop.exit_code
    code = EXIT_OK if all(state.entry(e.id)["status"] == "passed"
                          for e in plan if e.runnable) else EXIT_FAILED
    state.doc.update(status="finished", all_passed=code == EXIT_OK, finished_at=now())
    state.save()
    _notify_end(notifier, state, code, interrupted=False)
    return code


def _record_interrupted(record: dict[str, Any], out: Path,
                        stop: signals.Interrupted) -> None:
    """The entry a signal stopped. A run that had finished before the signal came (it
    arrived during teardown or storing) keeps its outcome; any other runs again on
    --resume."""
    stored = stored_run(out)
    if stored is not None and stored.get("status") in ("passed", "failed"):
        finish_attempt(record, stored["status"], run_id=stored.get("id"),
                       exit_code=EXIT_OK if stored["status"] == "passed" else EXIT_FAILED)
        return
    finish_attempt(record, "interrupted", run_id=stored.get("id") if stored else None,
                   exit_code=stop.exit_code,
                   reason=f"interrupted by {stop.signal_name}; --resume runs it again")


def run_entry(spec: CampaignSpec, entry: Entry, out: Path, events: EventsFactory) -> Outcome:
    """One `kitt run`. Its errors become the entry's outcome; only a signal escapes."""
    from kitt._run.runner import RunRequest, execute

    request = RunRequest(
        model=entry.model.reference, engine_config=_with_port(entry), suite=entry.suite,
        runs=spec.runs, skip_warmup=spec.skip_warmup, output_dir=out,
        store_url=spec.store, seed=spec.seed)
    try:
        with events(entry) as run_events:
            outcome = execute(request, run_events)
    except BadInput as error:  # e.g. a port in use, a binary missing: this run only
        return Outcome("error", stored_run_id(out), error.exit_code, str(error))
    except EngineFailed as error:
        return Outcome("failed", stored_run_id(out), error.exit_code, str(error))
    except KittError as error:
        return Outcome("error", stored_run_id(out), error.exit_code, str(error))
    except Exception as exc:  # a bug in one run must not cost the rest of the campaign
        return Outcome("error", stored_run_id(out), EXIT_FAILED,
                       f"{type(exc).__name__}: {exc}")
    run = outcome.run
    return Outcome(run.status, run.id, outcome.exit_code, run.error)


def _with_port(entry: Entry):
    """The engine config with a free port when the campaign set none. Back-to-back runs
    on one fixed port would find it still held by the previous server's closed
    connections (TIME_WAIT). Engines that attach to a shared service (Ollama) keep
    their own default port so they still find it."""
    from kitt import plugins

    config = entry.engine.config
    if config.port is not None or plugins.engines()[config.engine].shared_service:
        return config
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return attrs.evolve(config, port=port)


def _disk_shortage(spec: CampaignSpec, free_bytes: Callable[[Path], int]) -> str | None:
    if spec.min_free_gb is None:
        return None
    free = free_bytes(spec.output)
    if free >= spec.min_free_gb * GB:
        return None
    return (f"only {free / GB:.1f} GB free under {spec.output}, disk.min_free_gb is "
            f"{spec.min_free_gb:g}")


def _output_dir(spec: CampaignSpec, entry: Entry, record: dict[str, Any]) -> Path:
    folder = spec.output / re.sub(r"[^A-Za-z0-9._@-]+", "_", entry.id)
    out = folder / f"attempt-{record.get('attempts', 0) + 1}"
    if out.exists():  # e.g. after --restart: never mix two runs in one folder
        out = folder / f"attempt-{record.get('attempts', 0) + 1}-{now().replace(':', '')}"
    return out


def _entry_payload(record: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "model", "engine", "engine_label", "suite", "format", "quantization",
            "status", "run_id", "exit_code", "output_dir", "attempts", "reason",
            "started_at", "finished_at")
    return {key: record.get(key) for key in keys}


def _notify_run(notifier: Notifier, record: dict[str, Any]) -> None:
    payload = {"entry": _entry_payload(record)}
    notifier.send("run_finished", payload)
    if record["status"] in ("failed", "error"):
        notifier.send("failure", payload)


def _notify_end(notifier: Notifier, state: CampaignState, code: int, *,
                interrupted: bool) -> None:
    payload = {"status": state.doc["status"], "exit_code": code, "interrupted": interrupted,
               "counts": state.counts(), "state_file": str(state.path)}
    if interrupted:
        notifier.send("failure", {**payload, "reason": "campaign interrupted"})
    notifier.send("campaign_finished", payload)
