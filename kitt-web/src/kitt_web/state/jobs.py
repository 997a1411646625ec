"""The job queue: one row per job, moving

    queued -> claimed -> running -> succeeded | failed | cancelled | lost

Each step is one transaction under the store's writer lock, so two agents asking at once
cannot both claim a job, and a repeated call (a reply lost on the way) changes nothing:
an agent asking again gets the job it already holds; reporting a state twice is a no-op.
A job in a final state never moves again.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import attrs

import kitt

KINDS = ("run", "cleanup_storage", "engine_setup")
STATES = ("queued", "claimed", "running", "succeeded", "failed", "cancelled", "lost")
FINAL = frozenset({"succeeded", "failed", "cancelled", "lost"})
HELD = ("claimed", "running")
_COLUMNS = ("id", "kind", "spec", "agent_id", "claimed_by", "attempt", "state", "reason",
            "created_at", "created_by", "claimed_at", "started_at", "finished_at",
            "cancel_requested_at", "cancel_requested_by", "exit_code", "run_id", "progress",
            "log_bytes")
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM web_jobs"


class Conflict(Exception):
    """A change the job's state does not allow (a 409)."""

    def __init__(self, message: str, hint: str, job: Job | None = None) -> None:
        super().__init__(message)
        self.message, self.hint, self.job = message, hint, job


class OffsetMismatch(Exception):
    """A log chunk that does not start where the server's copy ends."""

    def __init__(self, offset: int) -> None:
        super().__init__(offset)
        self.offset = offset


@attrs.frozen
class Job:
    id: str
    kind: str
    spec: dict
    agent_id: str | None
    claimed_by: str | None
    attempt: int
    state: str
    reason: str | None
    created_at: float
    created_by: str | None
    claimed_at: float | None
    started_at: float | None
    finished_at: float | None
    cancel_requested_at: float | None
    cancel_requested_by: str | None
    exit_code: int | None
    run_id: str | None
    progress: dict | None
    log_bytes: int

    @property
    def final(self) -> bool:
        return self.state in FINAL


def _job(row) -> Job:
    values = dict(zip(_COLUMNS, row, strict=True))
    values["spec"] = json.loads(values["spec"])
    values["progress"] = json.loads(values["progress"]) if values["progress"] else None
    return Job(**values)


def new_id() -> str:
    """Sortable by creation (milliseconds), unique by 32 random bits."""
    return f"job_{int(time.time() * 1000):011x}{secrets.token_hex(4)}"


def submit(db: kitt.Database, kind: str, spec: dict[str, Any], *, agent_id: str | None,
           created_by: str | None) -> Job:
    """Queue a job whose spec has been validated (kitt_web.jobspec)."""
    with db.transaction() as cur:
        job_id = insert(cur, kind, spec, agent_id=agent_id, created_by=created_by)
    found = get(db, job_id)
    assert found is not None
    return found


def insert(cur: kitt.Cursor, kind: str, spec: dict[str, Any], *, agent_id: str | None,
           created_by: str | None, now: float | None = None) -> str:
    """The queue's one INSERT, inside the caller's transaction (a campaign records the
    job on its entry in the same one)."""
    if kind not in KINDS:
        raise kitt.BadInput(f"kind: unknown job kind {kind!r}", hint=f"kinds: {', '.join(KINDS)}")
    job_id = new_id()
    cur.execute("INSERT INTO web_jobs (id, kind, spec, agent_id, attempt, state, created_at, "
                "created_by, log_bytes) VALUES (?, ?, ?, ?, 0, 'queued', ?, ?, 0)",
                (job_id, kind, json.dumps(spec), agent_id, now or time.time(), created_by))
    return job_id


def get(db: kitt.Database, job_id: str) -> Job | None:
    rows = db.query(f"{_SELECT} WHERE id = ?", (job_id,))
    return _job(rows[0]) if rows else None


def list_jobs(db: kitt.Database, *, state: str | None = None, agent_id: str | None = None,
              limit: int = 100) -> list[Job]:
    where, params = [], []
    if state:
        where.append("state = ?")
        params.append(state)
    if agent_id:
        where.append("(claimed_by = ? OR (claimed_by IS NULL AND agent_id = ?))")
        params += [agent_id, agent_id]
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return [_job(row) for row in db.query(
        f"{_SELECT}{clause} ORDER BY created_at DESC, id DESC LIMIT ?", (*params, limit))]


def held_by(db: kitt.Database, agent_id: str) -> list[Job]:
    return [_job(row) for row in db.query(
        f"{_SELECT} WHERE claimed_by = ? AND state IN ('claimed', 'running')", (agent_id,))]


def claim(db: kitt.Database, agent_id: str, now: float | None = None) -> Job | None:
    """The job this agent should run: the one it holds already (a repeated claim), else
    the oldest queued job meant for it or for any agent; None when there is none."""
    now = now or time.time()
    with db.transaction() as cur:
        cur.execute(f"{_SELECT} WHERE claimed_by = ? AND state IN ('claimed', 'running') "
                    "ORDER BY claimed_at LIMIT 1", (agent_id,))
        row = cur.fetchone()
        if row is not None:
            return _job(row)
        cur.execute("SELECT id FROM web_jobs WHERE state = 'queued' AND (agent_id IS NULL "
                    "OR agent_id = ?) ORDER BY created_at, id LIMIT 1", (agent_id,))
        row = cur.fetchone()
        if row is None:
            return None
        cur.execute("UPDATE web_jobs SET state = 'claimed', claimed_by = ?, claimed_at = ?, "
                    "attempt = attempt + 1 WHERE id = ? AND state = 'queued'",
                    (agent_id, now, row[0]))
        job_id = row[0]
    return get(db, job_id)


_NEXT = {"claimed": {"running", *FINAL}, "running": FINAL}


def report(db: kitt.Database, agent_id: str, job_id: str, state: str, *,
           reason: str | None = None, exit_code: int | None = None,
           progress: dict | None = None, now: float | None = None) -> Job:
    """The agent's word on its job. The same final state again is a no-op; a job the
    server already finished (lost, or cancelled while the agent was silent) stays as it
    is, and the agent learns so from the reply."""
    now = now or time.time()
    job = get(db, job_id)
    if job is None or job.claimed_by != agent_id:
        raise Conflict(f"job {job_id} is not held by this agent",
                       "claim a job before reporting on it")
    if job.final or state == job.state:
        if progress is not None and not job.final:
            _set_progress(db, job_id, progress)
        return get(db, job_id) or job
    if state not in _NEXT.get(job.state, ()):
        raise Conflict(f"job {job_id} is {job.state}; it cannot become {state}",
                       f"a {job.state} job can become {', '.join(sorted(_NEXT[job.state]))}",
                       job)
    with db.transaction() as cur:
        if state == "running":
            cur.execute("UPDATE web_jobs SET state = 'running', started_at = ?, progress = "
                        "COALESCE(?, progress) WHERE id = ? AND state = 'claimed'",
                        (now, json.dumps(progress) if progress else None, job_id))
        else:
            cur.execute("UPDATE web_jobs SET state = ?, reason = ?, exit_code = ?, "
                        "finished_at = ? WHERE id = ? AND state IN ('claimed', 'running')",
                        (state, reason, exit_code, now, job_id))
    return get(db, job_id) or job


def _set_progress(db: kitt.Database, job_id: str, progress: dict) -> None:
    with db.transaction() as cur:
        cur.execute("UPDATE web_jobs SET progress = ? WHERE id = ?",
                    (json.dumps(progress), job_id))


def cancel(db: kitt.Database, job_id: str, by: str | None, now: float | None = None) -> Job:
    """A queued job ends at once; a held one is asked to stop (its agent hears it on its
    next heartbeat). Asking twice is a no-op; cancelling a finished job is a Conflict."""
    now = now or time.time()
    with db.transaction() as cur:
        cur.execute(f"{_SELECT} WHERE id = ?", (job_id,))
        row = cur.fetchone()
        if row is None:
            raise kitt.BadInput(f"no job {job_id!r}")
        job = _job(row)
        if job.state == "queued":
            cur.execute("UPDATE web_jobs SET state = 'cancelled', reason = ?, "
                        "finished_at = ?, cancel_requested_at = ?, cancel_requested_by = ? "
                        "WHERE id = ?", (f"cancelled by {by} before it started", now, now,
                                         by, job_id))
        elif job.state in HELD and job.cancel_requested_at is None:
            cur.execute("UPDATE web_jobs SET cancel_requested_at = ?, cancel_requested_by = ? "
                        "WHERE id = ?", (now, by, job_id))
        elif job.final and job.state != "cancelled":
            raise Conflict(f"job {job_id} already {job.state}",
                           "only a queued or running job can be cancelled", job)
    return get(db, job_id) or job


def cancels_for(db: kitt.Database, agent_id: str, running: list[str]) -> list[str]:
    """Jobs the agent must stop: those it holds with a cancel asked, and those it says it
    runs that are over here (lost while it was away, or cancelled without it)."""
    ids = [row[0] for row in db.query(
        "SELECT id FROM web_jobs WHERE claimed_by = ? AND state IN ('claimed', 'running') "
        "AND cancel_requested_at IS NOT NULL", (agent_id,))]
    for job_id in running:
        job = get(db, job_id)
        if job is not None and job.final and job_id not in ids:
            ids.append(job_id)
    return ids


def end_held(db: kitt.Database, agent_id: str, state: str, reason: str,
             now: float | None = None) -> list[str]:
    """Finish every job the agent holds (it was revoked, removed or lost)."""
    now = now or time.time()
    ids = [job.id for job in held_by(db, agent_id)]
    with db.transaction() as cur:
        cur.execute("UPDATE web_jobs SET state = ?, reason = ?, finished_at = ? WHERE "
                    "claimed_by = ? AND state IN ('claimed', 'running')",
                    (state, reason, now, agent_id))
    return ids


def reap(db: kitt.Database, *, lost_after_s: float, cancel_grace_s: float, grace_from: float,
         now: float | None = None) -> list[str]:
    """Jobs whose agent went silent: `lost` after `lost_after_s`; a job whose cancel its
    agent has not confirmed within `cancel_grace_s` is finalised `cancelled` here. Silence
    counts from the server's start at the earliest (`grace_from`). Returns the jobs ended."""
    now = now or time.time()
    ended = []
    rows = db.query(
        "SELECT j.id, j.cancel_requested_at, a.last_seen_at, a.name FROM web_jobs j "
        "JOIN web_agents a ON a.id = j.claimed_by WHERE j.state IN ('claimed', 'running')")
    for job_id, cancel_at, last_seen, name in rows:
        silent_since = max(last_seen or 0.0, grace_from)
        if cancel_at is not None and now - max(cancel_at, grace_from) > cancel_grace_s \
                and silent_since < cancel_at:
            state, reason = "cancelled", (f"cancelled; agent {name} did not confirm within "
                                          f"{cancel_grace_s:.0f} s")
        elif now - silent_since > lost_after_s:
            state, reason = "lost", f"agent {name} silent for {now - silent_since:.0f} s"
        else:
            continue
        with db.transaction() as cur:
            cur.execute("UPDATE web_jobs SET state = ?, reason = ?, finished_at = ? WHERE "
                        "id = ? AND state IN ('claimed', 'running')", (state, reason, now,
                                                                      job_id))
        ended.append(job_id)
    return ended


# -- logs -------------------------------------------------------------------------------
def append_log(db: kitt.Database, job_id: str, offset: int, data: bytes) -> int:
    """Append a chunk that starts at byte `offset` of the agent's spool; the size the
    server holds afterwards. A chunk the server has already (a resend) is acknowledged
    without being stored twice; one past the end raises OffsetMismatch with the size to
    resend from."""
    with db.transaction() as cur:
        cur.execute("SELECT log_bytes FROM web_jobs WHERE id = ?", (job_id,))
        row = cur.fetchone()
        held = int(row[0])
        if offset > held:
            raise OffsetMismatch(held)
        if offset + len(data) <= held:
            return held  # all of it is here already
        data = data[held - offset:]  # a resend overlapping what is here: only the rest
        if data:
            cur.execute("INSERT INTO web_job_logs (job_id, pos, size, data) VALUES "
                        "(?, ?, ?, ?)", (job_id, held, len(data),
                                         data.decode("utf-8", errors="replace")))
            cur.execute("UPDATE web_jobs SET log_bytes = ? WHERE id = ?",
                        (held + len(data), job_id))
        return held + len(data)


def log_chunks(db: kitt.Database, job_id: str, after: int = 0, limit: int = 500
               ) -> list[tuple[int, int, str]]:
    """(position, size, text) of the chunks ending after byte `after`, in order."""
    return [tuple(row) for row in db.query(
        "SELECT pos, size, data FROM web_job_logs WHERE job_id = ? AND pos + size > ? "
        "ORDER BY pos LIMIT ?", (job_id, after, limit))]


def for_run(db: kitt.Database, run_id: str) -> Job | None:
    rows = db.query(f"{_SELECT} WHERE run_id = ? ORDER BY created_at DESC LIMIT 1", (run_id,))
    return _job(rows[0]) if rows else None


def attach_run(db: kitt.Database, job_id: str, run_id: str) -> None:
    with db.transaction() as cur:
        cur.execute("UPDATE web_jobs SET run_id = ? WHERE id = ?", (run_id, job_id))
