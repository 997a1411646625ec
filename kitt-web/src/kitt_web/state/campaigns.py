"""Campaigns from the web: a plan of entries (a model on an engine, on an agent that has
both), dispatched as jobs by the server's scheduler.

The scheduler keeps at most one job of a campaign queued or running per agent, in
entry order, so a campaign shares agents with other work and its progress reads entry by
entry. Everything is in the database: dispatching an entry inserts its job and records
it on the entry in one transaction, so a server restart resumes where it was, and no
entry ever gets two jobs.

    campaign: running -> finished | cancelled
    entry:    pending -> dispatched (its job's state from then on) | skipped
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import attrs

import kitt
from kitt_web.state import jobs

_CAMPAIGN = ("id", "name", "document", "state", "created_at", "created_by", "finished_at")
_ENTRY = ("campaign_id", "position", "model", "engine", "agent_id", "skip_reason", "job_id")


@attrs.frozen
class Entry:
    campaign_id: str
    position: int
    model: str
    engine: str
    agent_id: str | None
    skip_reason: str | None
    job_id: str | None


@attrs.frozen
class Campaign:
    id: str
    name: str
    document: dict
    """The campaign file (`kitt campaign run` reads it) plus `agents`."""
    state: str
    created_at: float
    created_by: str | None
    finished_at: float | None


def _campaign(row) -> Campaign:
    values = dict(zip(_CAMPAIGN, row, strict=True))
    values["document"] = json.loads(values["document"])
    return Campaign(**values)


def create(db: kitt.Database, name: str, document: dict, entries: list[dict[str, Any]],
           created_by: str | None) -> Campaign:
    """A running campaign with its planned entries (dispatched by `dispatch`)."""
    campaign_id = "cmp_" + secrets.token_hex(6)
    now = time.time()
    with db.transaction() as cur:
        cur.execute("INSERT INTO web_campaigns (id, name, document, state, created_at, "
                    "created_by) VALUES (?, ?, ?, 'running', ?, ?)",
                    (campaign_id, name, json.dumps(document), now, created_by))
        for position, entry in enumerate(entries):
            cur.execute("INSERT INTO web_campaign_entries (campaign_id, position, model, "
                        "engine, agent_id, skip_reason) VALUES (?, ?, ?, ?, ?, ?)",
                        (campaign_id, position, entry["model"], entry["engine"],
                         entry.get("agent_id"), entry.get("skip_reason")))
    found = get(db, campaign_id)
    assert found is not None
    return found


def get(db: kitt.Database, campaign_id: str) -> Campaign | None:
    rows = db.query(f"SELECT {', '.join(_CAMPAIGN)} FROM web_campaigns WHERE id = ?",
                    (campaign_id,))
    return _campaign(rows[0]) if rows else None


def list_all(db: kitt.Database, limit: int = 100) -> list[Campaign]:
    return [_campaign(row) for row in db.query(
        f"SELECT {', '.join(_CAMPAIGN)} FROM web_campaigns ORDER BY created_at DESC, id "
        "LIMIT ?", (limit,))]


def entries(db: kitt.Database, campaign_id: str) -> list[tuple[Entry, jobs.Job | None]]:
    found = []
    for row in db.query(f"SELECT {', '.join(_ENTRY)} FROM web_campaign_entries WHERE "
                        "campaign_id = ? ORDER BY position", (campaign_id,)):
        entry = Entry(*row)
        found.append((entry, jobs.get(db, entry.job_id) if entry.job_id else None))
    return found


def entry_state(entry: Entry, job: jobs.Job | None, campaign_state: str) -> str:
    if entry.skip_reason:
        return "skipped"
    if job is not None:
        return job.state
    return "not run" if campaign_state == "cancelled" else "pending"


def progress(db: kitt.Database, campaign: Campaign) -> dict[str, int]:
    counts: dict[str, int] = {}
    for entry, job in entries(db, campaign.id):
        state = entry_state(entry, job, campaign.state)
        counts[state] = counts.get(state, 0) + 1
    return counts


def dispatch(db: kitt.Database, now: float | None = None) -> list[str]:
    """One scheduler round: for each running campaign and each of its agents with no job
    of the campaign in flight, queue that agent's next pending entry; finish campaigns
    with nothing left. Returns the jobs queued."""
    now = now or time.time()
    queued = []
    for campaign in [c for c in list_all(db, limit=1000) if c.state == "running"]:
        spec = campaign.document
        with db.transaction() as cur:
            cur.execute("SELECT e.position, e.model, e.engine, e.agent_id, j.state FROM "
                        "web_campaign_entries e LEFT JOIN web_jobs j ON j.id = e.job_id "
                        "WHERE e.campaign_id = ? AND e.skip_reason IS NULL ORDER BY "
                        "e.position", (campaign.id,))
            rows = cur.fetchall()
            busy = {agent for _, _, _, agent, state in rows
                    if state in ("queued", "claimed", "running")}
            pending = [row for row in rows if row[4] is None]
            if not pending and not busy:
                cur.execute("UPDATE web_campaigns SET state = 'finished', finished_at = ? "
                            "WHERE id = ? AND state = 'running'", (now, campaign.id))
                continue
            for position, model, engine, agent_id, _ in pending:
                if agent_id in busy:
                    continue
                busy.add(agent_id)
                job_spec = {"model": model, "engine": engine, "suite": spec["suite_document"],
                            "mode": spec.get("mode") or "native", "profile": None,
                            "options": {}, "runs": spec.get("runs"),
                            "skip_warmup": bool(spec.get("skip_warmup")),
                            "seed": int(spec.get("seed", 0))}
                job_id = jobs.insert(cur, "run", job_spec, agent_id=agent_id,
                                     created_by=f"campaign {campaign.name}", now=now)
                cur.execute("UPDATE web_campaign_entries SET job_id = ? WHERE campaign_id = ? "
                            "AND position = ? AND job_id IS NULL",
                            (job_id, campaign.id, position))
                queued.append(job_id)
    return queued


def cancel(db: kitt.Database, campaign_id: str, by: str | None) -> list[str]:
    """Stop dispatching; cancel the entries' jobs still queued or running. The jobs
    cancelled (or asked to stop)."""
    campaign = get(db, campaign_id)
    if campaign is None:
        raise kitt.BadInput(f"no campaign {campaign_id!r}")
    if campaign.state != "running":
        raise jobs.Conflict(f"campaign {campaign.name} is {campaign.state}",
                            "only a running campaign can be cancelled")
    with db.transaction() as cur:
        cur.execute("UPDATE web_campaigns SET state = 'cancelled', finished_at = ? WHERE "
                    "id = ? AND state = 'running'", (time.time(), campaign_id))
    stopped = []
    for _, job in entries(db, campaign_id):
        if job is not None and not job.final:
            jobs.cancel(db, job.id, by)
            stopped.append(job.id)
    return stopped
