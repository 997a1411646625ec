"""A campaign's state: `KITT_HOME/campaigns/NAME/state.json`, rewritten atomically
(tmp + os.replace) before and after every run, so a crash at any moment leaves either
the old or the new file, never half of one.

Entry statuses: pending (not run yet), running (a run is under way; found at start, it
means the process died), passed, failed, error (could not run, or the process died
during it), interrupted (a signal stopped it), skipped (planning left the pair out),
postponed (too little disk; retried later).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kitt._campaign.model import CampaignSpec, Entry
from kitt.errors import BadInput

STATE_VERSION = 1
TO_RUN = ("pending", "running", "failed", "error", "interrupted", "postponed")
"""Statuses a campaign (re)runs; passed entries are never redone."""


def campaigns_dir() -> Path:
    from kitt._util.files import kitt_home

    return kitt_home() / "campaigns"


def state_path(name: str) -> Path:
    return campaigns_dir() / name / "state.json"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class CampaignState:
    """The JSON document, with the few operations the scheduler needs."""

    def __init__(self, path: Path, doc: dict[str, Any]):
        self.path = path
        self.doc = doc

    @property
    def entries(self) -> list[dict[str, Any]]:
        return self.doc["entries"]

    def entry(self, entry_id: str) -> dict[str, Any]:
        for entry in self.entries:
            if entry["id"] == entry_id:
                return entry
        raise KeyError(entry_id)

    def save(self) -> None:
        self.doc["updated_at"] = now()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        from kitt._util.files import write_atomic

        write_atomic(self.path, json.dumps(self.doc, indent=2) + "\n")

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for entry in self.entries:
            if entry.get("in_plan", True):
                counts[entry["status"]] = counts.get(entry["status"], 0) + 1
        return counts


def load_state(path: Path) -> CampaignState | None:
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("version") != STATE_VERSION or not isinstance(doc.get("entries"), list):
            raise ValueError(f"unknown state version {doc.get('version')!r}")
    except (OSError, ValueError, AttributeError) as exc:
        raise BadInput(f"cannot read campaign state {path}: {exc}",
                       hint="move the file away (kitt campaign run --restart starts over)"
                       ) from None
    return CampaignState(path, doc)


def new_state(spec: CampaignSpec, plan: list[Entry]) -> CampaignState:
    doc = {"version": STATE_VERSION, "name": spec.name, "file": str(spec.path),
           "description": spec.description, "created_at": now(), "updated_at": now(),
           "status": "new", "entries": []}
    state = CampaignState(state_path(spec.name), doc)
    merge_plan(state, spec, plan)
    return state


def merge_plan(state: CampaignState, spec: CampaignSpec, plan: list[Entry]) -> None:
    """Bring the state in line with the (re-read) campaign file. Entries keep their
    history by id; a pair newly skipped keeps its finished runs on record; entries gone
    from the file stay, marked `in_plan: false` (their results are never forgotten)."""
    old = {entry["id"]: entry for entry in state.entries}
    merged = []
    for planned in plan:
        entry = old.pop(planned.id, None) or {"status": "pending", "attempts": 0,
                                              "history": []}
        entry.update(planned.describe())
        entry["in_plan"] = True
        if not planned.runnable:
            entry["status"], entry["reason"] = "skipped", planned.skip_reason
        elif entry["status"] == "skipped":
            entry["status"], entry["reason"] = "pending", None
        merged.append(entry)
    for entry in old.values():
        entry["in_plan"] = False
        merged.append(entry)
    state.doc["entries"] = merged
    state.doc["file"] = str(spec.path)
    state.doc["description"] = spec.description


def recover_interrupted(state: CampaignState) -> list[str]:
    """Entries left `running` by a process that died. A run whose results folder holds
    a finished (passed or failed) run is adopted, so a crash between storing a run and
    recording it loses nothing; any other is marked `error` and runs again."""
    recovered = []
    for entry in state.entries:
        if entry["status"] != "running":
            continue
        recovered.append(entry["id"])
        run = stored_run(entry.get("output_dir"))
        if run is not None and run.get("status") in ("passed", "failed"):
            entry.update(status=run["status"], run_id=run.get("id"),
                         exit_code=0 if run["status"] == "passed" else 1,
                         finished_at=run.get("finished_at"),
                         reason="recovered from its results folder after an interruption")
        else:
            entry.update(status="error", run_id=run.get("id") if run else entry.get("run_id"),
                         reason="interrupted: the campaign process stopped during this run")
        _close_attempt(entry)
    return recovered


def stored_run(output_dir: str | Path | None) -> dict[str, Any] | None:
    """The run a results folder holds (its metrics.json), if one was stored."""
    if not output_dir:
        return None
    try:
        return json.loads((Path(output_dir) / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def stored_run_id(output_dir: Path) -> str | None:
    run = stored_run(output_dir)
    return run.get("id") if run else None


def start_attempt(entry: dict[str, Any], output_dir: Path) -> None:
    entry.update(status="running", attempts=entry.get("attempts", 0) + 1,
                 output_dir=str(output_dir), started_at=now(), finished_at=None,
                 run_id=None, exit_code=None, reason=None)


def finish_attempt(entry: dict[str, Any], status: str, *, run_id: str | None,
                   exit_code: int | None, reason: str | None = None) -> None:
    entry.update(status=status, run_id=run_id, exit_code=exit_code, reason=reason,
                 finished_at=now())
    _close_attempt(entry)


def _close_attempt(entry: dict[str, Any]) -> None:
    entry.setdefault("history", []).append(
        {key: entry.get(key) for key in ("attempts", "status", "run_id", "exit_code",
                                         "output_dir", "started_at", "finished_at",
                                         "reason")})


@contextmanager
def campaign_lock(name: str) -> Iterator[None]:
    """One process per campaign: a second `kitt campaign run` of it is refused."""
    try:
        import fcntl
    except ImportError:  # not POSIX: run unlocked
        yield
        return
    path = campaigns_dir() / name / "lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise BadInput(f"campaign {name!r} is already running in another process",
                           hint="wait for it, or stop it (Ctrl-C) and use --resume") from None
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def all_states() -> list[CampaignState]:
    found = []
    root = campaigns_dir()
    if root.is_dir():
        for path in sorted(root.glob("*/state.json")):
            try:
                state = load_state(path)
            except BadInput:
                continue  # `list` shows what it can read; `status NAME` shows the error
            if state is not None:
                found.append(state)
    return found
