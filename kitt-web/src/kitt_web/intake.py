"""Runs that arrive over HTTP (an agent's result, `kitt results submit`): checked against
their SHA-256, read as run documents, and stored in KARR once."""

from __future__ import annotations

import hashlib

import kitt
from kitt_web.errors import ApiError, bad_request


def read_document(data: bytes, expected_sha256: str) -> kitt.Run:
    """The run in `data`; a 400 when the digest differs (damaged on the way) or it is not
    a run document."""
    if len(expected_sha256) != 64:
        raise bad_request("X-Content-SHA256", "is required: the body's SHA-256 in hex")
    if hashlib.sha256(data).hexdigest() != expected_sha256.lower():
        raise bad_request("body", "does not match X-Content-SHA256",
                          "the upload was damaged; send it again")
    try:
        return kitt.from_json(data, kitt.Run)
    except Exception as exc:  # json's and cattrs' errors alike: not a run document
        raise bad_request("body", f"is not a KITT run document: {str(exc)[:300]}",
                          "upload the metrics.json that kitt run wrote") from None


def store_once(store: kitt.Store, run: kitt.Run) -> bool:
    """Store `run` unless it is there already (True when this call stored it); another
    document under a stored run's id is a 409."""
    try:
        existing = store.get_run(run.id)
    except kitt.BadInput:
        existing = None
    if existing is not None and existing.id != run.id:
        existing = None  # a longer id that starts with this one: another run
    if existing is None:
        store.save_run(run)
        return True
    if kitt.to_json(existing) != kitt.to_json(run):
        raise ApiError(409, "conflict", f"another run is stored as {run.id}",
                       "a run id names one run; this document differs")
    return False
