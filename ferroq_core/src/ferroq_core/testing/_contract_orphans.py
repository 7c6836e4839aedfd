"""Contract checks for jobs orphaned by their worker: a dead worker's claims taken back
(``reap_worker``), the reaper's attempt counting per holder, and the bound every path keeps:
``attempts`` never exceeds ``max_attempts`` (part of
:class:`~ferroq_core.testing.contract.BackendContract`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ferroq_core.records import JobState
from ferroq_core.storage.rules import is_orphaned, reap_dead_on_host
from ferroq_core.testing._contract_leases import SHORT_LEASE
from ferroq_core.testing._contract_support import (
    HOST,
    claim_one,
    enqueue_one,
    wait_until,
    worker_id,
)

if TYPE_CHECKING:
    from ferroq_core.records import JobRow
    from ferroq_core.storage.protocol import Backend

__all__ = ["OrphanContract"]


def _stored(backend: Backend, job_id: int) -> JobRow:
    row = backend.get_job(job_id)
    assert row is not None
    return row


class OrphanContract:
    """reap_worker, the reaper's attempts per holder, requeue_claimed_by at the last attempt."""

    def test_a_dead_worker_alone_with_its_job_is_charged_the_attempt(
        self, backend: Backend
    ) -> None:
        job_id = enqueue_one(backend, "q", max_attempts=3, tenant_id="t")
        dead = worker_id(pid=111)
        row = claim_one(backend, "q", dead)
        result = backend.reap_worker(dead)
        assert (result.requeued, result.failed) == ((job_id,), ())
        stored = _stored(backend, job_id)
        assert (stored.status, stored.attempts, stored.claimed_by) == ("pending", 1, None)
        assert (stored.tenant_id, stored.payload, stored.available_at) == (
            "t",
            row.payload,
            row.available_at,
        )
        assert is_orphaned(stored.error)
        assert dead in (stored.error or "")
        assert backend.reap_worker(dead).requeued == ()

    def test_a_dead_worker_with_several_jobs_gives_each_its_attempt_back(
        self, backend: Backend
    ) -> None:
        ids = [enqueue_one(backend, "q", max_attempts=1) for _ in range(3)]
        dead, other = worker_id(pid=111), worker_id(pid=222)
        backend.claim(["q"], dead, 2)
        theirs = claim_one(backend, "q", other)
        result = backend.reap_worker(dead)
        assert (result.requeued, result.failed) == (tuple(ids[:2]), ())
        for job_id in ids[:2]:
            stored = _stored(backend, job_id)
            assert (stored.status, stored.attempts) == ("pending", 0)
            assert is_orphaned(stored.error)
        held = _stored(backend, theirs.id)
        assert (held.status, held.attempts, held.error) == ("claimed", 1, None)

    def test_a_dead_worker_alone_on_the_last_attempt_fails_its_job(self, backend: Backend) -> None:
        job_id = enqueue_one(backend, "q", max_attempts=2)
        first = worker_id(HOST, 111)
        claim_one(backend, "q", first)
        assert reap_dead_on_host(backend, HOST, lambda pid: False).requeued == (job_id,)
        last = worker_id(HOST, 222)
        claim_one(backend, "q", last)
        result = reap_dead_on_host(backend, HOST, lambda pid: False)
        assert result.requeued == ()
        (failed,) = result.failed
        assert (failed.id, failed.status, failed.attempts, failed.max_attempts) == (
            job_id,
            "failed",
            2,
            2,
        )
        assert failed.failed_at is not None
        assert is_orphaned(failed.error)
        assert _stored(backend, job_id).status == "failed"
        assert backend.claim(["q"], worker_id(), 5) == []
        assert reap_dead_on_host(backend, HOST, lambda pid: False).failed == ()

    def test_the_reaper_counts_the_attempt_and_does_not_make_the_jobs_run_alone(
        self, backend: Backend
    ) -> None:
        # The holder of an expired lease may be alive: the attempt counts, so a late write of
        # the holder can never match the claim that follows, even its own.
        ids = [enqueue_one(backend, "q", max_attempts=2) for _ in range(2)]
        frozen = worker_id(pid=111)
        stale = backend.claim(["q"], frozen, 2)
        wait_until(lambda: len(backend.reap(SHORT_LEASE).requeued) == 2, what="both claims reaped")
        for job_id in ids:
            stored = _stored(backend, job_id)
            assert (stored.status, stored.attempts) == ("pending", 1)
            assert not is_orphaned(stored.error)
            assert "lease expired" in (stored.error or "")
        again = backend.claim(["q"], frozen, 2)
        assert [r.attempts for r in again] == [2, 2]
        assert backend.complete([r.lease for r in stale]) == set()
        assert backend.complete([r.lease for r in again]) == set(ids)

    def test_attempts_never_exceed_max_attempts(self, backend: Backend) -> None:
        # Every way a claim can end without the job's own outcome, on the last attempt.
        job_id = enqueue_one(backend, "q", max_attempts=1)
        gone = worker_id(pid=333)
        claim_one(backend, "q", gone)
        assert backend.requeue_claimed_by(gone) == 0, "the last attempt stays claimed"
        assert _stored(backend, job_id).status == "claimed"
        result = backend.reap_worker(gone)
        assert [r.id for r in result.failed] == [job_id]
        again = enqueue_one(backend, "q", max_attempts=1)
        claim_one(backend, "q")
        wait_until(lambda: backend.reap(SHORT_LEASE).failed, what="the job to be failed")
        assert backend.claim(["q"], worker_id(), 5) == []
        for stored in backend.list_jobs():
            assert stored.attempts <= stored.max_attempts
            assert stored.state_at(backend.now()) is JobState.FAILED
        assert {r.id for r in backend.list_jobs()} == {job_id, again}
