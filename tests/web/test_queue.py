"""The job queue and the agents' credentials, on SQLite and PostgreSQL: claims that two
agents race for go to one, repeated calls change nothing, a finished job never moves,
log chunks are stored once whatever is resent, silent agents' jobs end `lost`, and a
rotated token overlaps its successor only briefly."""

from __future__ import annotations

import threading
import time

import pytest

import kitt
from kitt_web.state import agents, jobs, open_state

SPEC = {"model": "m.gguf", "engine": "llamacpp"}


@pytest.fixture
def db(store_url):
    store = kitt.open_store(store_url, create=True)
    yield open_state(store)
    store.close()


def enroll(db, name="gpu-01", uses=1):
    _, secret = agents.create_enrollment(db, "rack", uses=uses)
    return agents.register(db, enrollment_secret=secret, open_enrollment=False, name=name,
                           hostname=name, address="127.0.0.1", version="0.1.0",
                           hardware={"fingerprint": "fp"})


def test_an_enrollment_token_admits_as_many_agents_as_it_allows(db):
    _, secret = agents.create_enrollment(db, "rack", uses=2)
    for name in ("a", "b"):
        agent, token = agents.register(db, enrollment_secret=secret, open_enrollment=False,
                                       name=name, hostname=name, address=None, version=None,
                                       hardware=None)
        assert agent.state == "active" and token.startswith("kagt_") and len(token) == 48
    with pytest.raises(agents.Refused, match="used"):
        agents.register(db, enrollment_secret=secret, open_enrollment=False, name="c",
                        hostname="c", address=None, version=None, hardware=None)
    assert [e.state() for e in agents.list_enrollments(db)] == ["used"]


def test_expired_revoked_and_unknown_enrollment_tokens_are_refused(db):
    _, old = agents.create_enrollment(db, "old", expires_in=0.001)
    revoked, gone = agents.create_enrollment(db, "gone")
    agents.revoke_enrollment(db, revoked.id)
    time.sleep(0.01)
    for secret, state in ((old, "expired"), (gone, "revoked"), ("kenr_" + "x" * 43, "unknown")):
        with pytest.raises(agents.Refused, match=state):
            agents.register(db, enrollment_secret=secret, open_enrollment=False, name="n",
                            hostname="n", address=None, version=None, hardware=None)


def test_without_a_token_only_open_enrollment_admits_and_then_as_pending(db):
    with pytest.raises(agents.Refused) as refused:
        agents.register(db, enrollment_secret=None, open_enrollment=False, name="n",
                        hostname="n", address=None, version=None, hardware=None)
    assert refused.value.code == "enrollment_required"
    agent, _ = agents.register(db, enrollment_secret=None, open_enrollment=True,
                                   name="n", hostname="n", address=None, version=None,
                                   hardware=None)
    assert agent.state == "pending"
    approved = agents.set_state(db, agent.id, "active", "admin")
    assert approved.state == "active" and approved.approved_by == "admin"


@pytest.mark.parametrize("name", ["", "-x", "a b", "a;rm -rf /", "$(id)", "x" * 64, "é"])
def test_hostile_agent_names_are_refused(db, name):
    with pytest.raises(kitt.BadInput, match="bad agent name"):
        enroll(db, name=name)


def test_an_agent_token_is_checked_for_its_own_agent_only(db):
    one, one_token = enroll(db, "one")
    two, _ = enroll(db, "two")
    assert agents.authenticate(db, one.id, one_token)[0].id == one.id
    with pytest.raises(agents.Refused) as wrong:
        agents.authenticate(db, two.id, one_token)
    assert wrong.value.code == "bad_token"
    with pytest.raises(agents.Refused) as unknown:
        agents.authenticate(db, "agt_000000000000", one_token)
    assert unknown.value.code == "unknown_agent"
    agents.set_state(db, one.id, "revoked", "admin")
    with pytest.raises(agents.Refused) as revoked:
        agents.authenticate(db, one.id, one_token)
    assert revoked.value.code == "revoked"


def test_a_rotated_token_overlaps_the_old_one_until_the_new_one_is_used(db):
    agent, old = enroll(db)
    new = agents.issue_rotation(db, agent.id)
    _, stale = agents.authenticate(db, agent.id, old)
    assert stale  # the reply with the new token may have been lost: reissue
    newer = agents.reissue_rotation(db, agent.id)
    with pytest.raises(agents.Refused):
        agents.authenticate(db, agent.id, new)  # superseded by the reissue
    assert agents.authenticate(db, agent.id, newer) == (agents.get(db, agent.id), False)
    with pytest.raises(agents.Refused):  # the new one was used: the old one is over
        agents.authenticate(db, agent.id, old)


def test_the_old_token_ends_with_the_overlap(db):
    agent, old = enroll(db)
    agents.issue_rotation(db, agent.id, now=time.time() - agents.ROTATION_OVERLAP_S - 1)
    with pytest.raises(agents.Refused):
        agents.authenticate(db, agent.id, old)


def test_two_agents_racing_for_one_job_get_it_once(db, store_url):
    racers = [enroll(db, f"gpu-{i}")[0] for i in range(2)]
    job = jobs.submit(db, "run", SPEC, agent_id=None, created_by="t")
    got, start = {}, threading.Barrier(2)

    def race(agent) -> None:
        store = kitt.open_store(store_url)  # each its own connection, as each server thread
        try:
            mine = open_state(store)
            start.wait()
            got[agent.id] = jobs.claim(mine, agent.id)
        finally:
            store.close()

    threads = [threading.Thread(target=race, args=(a,)) for a in racers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [agent_id for agent_id, claimed in got.items() if claimed is not None]
    assert len(winners) == 1
    assert jobs.get(db, job.id).claimed_by == winners[0]
    assert jobs.get(db, job.id).attempt == 1


def test_claiming_again_returns_the_job_held_and_a_job_for_another_agent_is_left(db):
    one, _ = enroll(db, "one")
    two, _ = enroll(db, "two")
    for_two = jobs.submit(db, "run", SPEC, agent_id=two.id, created_by="t")
    assert jobs.claim(db, one.id) is None
    first = jobs.claim(db, two.id)
    assert first.id == for_two.id and first.state == "claimed"
    again = jobs.claim(db, two.id)
    assert again.id == first.id and again.attempt == 1  # idempotent, not a second attempt


def test_reports_move_a_job_forward_only_and_repeat_harmlessly(db):
    agent, _ = enroll(db)
    job = jobs.submit(db, "run", SPEC, agent_id=agent.id, created_by="t")
    jobs.claim(db, agent.id)
    assert jobs.report(db, agent.id, job.id, "running").state == "running"
    done = jobs.report(db, agent.id, job.id, "succeeded", exit_code=0)
    assert done.state == "succeeded" and done.finished_at is not None
    assert jobs.report(db, agent.id, job.id, "succeeded").finished_at == done.finished_at
    assert jobs.report(db, agent.id, job.id, "failed").state == "succeeded"  # final stays
    with pytest.raises(jobs.Conflict):
        other, _ = enroll(db, "other")
        jobs.report(db, other.id, job.id, "failed")


def test_cancel_ends_a_queued_job_asks_a_held_one_and_refuses_a_finished_one(db):
    agent, _ = enroll(db)
    queued = jobs.submit(db, "run", SPEC, agent_id=agent.id, created_by="t")
    assert jobs.cancel(db, queued.id, "op").state == "cancelled"
    held = jobs.submit(db, "run", SPEC, agent_id=agent.id, created_by="t")
    jobs.claim(db, agent.id)
    asked = jobs.cancel(db, held.id, "op")
    assert asked.state == "claimed" and asked.cancel_requested_by == "op"
    assert jobs.cancels_for(db, agent.id, [held.id]) == [held.id]
    assert jobs.cancel(db, held.id, "op2").cancel_requested_by == "op"  # asked once
    jobs.report(db, agent.id, held.id, "cancelled", reason="stopped")
    assert jobs.cancel(db, held.id, "op").state == "cancelled"  # no-op on a cancelled job
    done = jobs.submit(db, "run", SPEC, agent_id=agent.id, created_by="t")
    jobs.claim(db, agent.id)
    jobs.report(db, agent.id, done.id, "succeeded")
    with pytest.raises(jobs.Conflict, match="already succeeded"):
        jobs.cancel(db, done.id, "op")


def test_log_chunks_are_stored_once_whatever_is_resent(db):
    agent, _ = enroll(db)
    job = jobs.submit(db, "run", SPEC, agent_id=agent.id, created_by="t")
    assert jobs.append_log(db, job.id, 0, b"one\ntwo\n") == 8
    assert jobs.append_log(db, job.id, 0, b"one\ntwo\n") == 8  # a resend: acknowledged
    assert jobs.append_log(db, job.id, 4, b"two\nthree\n") == 14  # overlapping: the rest
    with pytest.raises(jobs.OffsetMismatch) as gap:
        jobs.append_log(db, job.id, 20, b"later\n")
    assert gap.value.offset == 14
    text = "".join(data for _, _, data in jobs.log_chunks(db, job.id))
    assert text == "one\ntwo\nthree\n"
    assert [pos for pos, _, _ in jobs.log_chunks(db, job.id, after=8)] == [8]
    assert jobs.get(db, job.id).log_bytes == 14


def test_a_silent_agents_job_is_lost_and_a_server_restart_grants_a_grace(db):
    agent, _ = enroll(db)
    job = jobs.submit(db, "run", SPEC, agent_id=agent.id, created_by="t")
    jobs.claim(db, agent.id)
    now = time.time()
    agents.seen(db, agent.id, inventory=None, address=None, version=None, now=now - 600)
    # The server started a minute ago: silence counts from then, not from 10 minutes ago.
    assert jobs.reap(db, lost_after_s=180, cancel_grace_s=60, grace_from=now - 60,
                     now=now) == []
    assert jobs.reap(db, lost_after_s=180, cancel_grace_s=60, grace_from=now - 600,
                     now=now) == [job.id]
    lost = jobs.get(db, job.id)
    assert lost.state == "lost" and "gpu-01 silent for 600 s" in lost.reason
    assert jobs.cancels_for(db, agent.id, [job.id]) == [job.id]  # it comes back: stop it


def test_an_unconfirmed_cancel_is_finalised_by_the_server(db):
    agent, _ = enroll(db)
    job = jobs.submit(db, "run", SPEC, agent_id=agent.id, created_by="t")
    jobs.claim(db, agent.id)
    now = time.time()
    agents.seen(db, agent.id, inventory=None, address=None, version=None, now=now - 100)
    jobs.cancel(db, job.id, "op", now=now - 90)
    assert jobs.reap(db, lost_after_s=180, cancel_grace_s=60, grace_from=0, now=now) == [job.id]
    ended = jobs.get(db, job.id)
    assert ended.state == "cancelled" and "did not confirm" in ended.reason
