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

    def test_the_reaper_gives_the_attempt_back_to_a_holder_of_several(
        self, backend: Backend
    ) -> None:
        ids = [enqueue_one(backend, "q", max_attempts=1) for _ in range(3)]
        several, single = worker_id(pid=111), worker_id(pid=222)
        backend.claim(["q"], several, 2)
        claim_one(backend, "q", single)
        requeued: set[int] = set()
        failed: list[JobRow] = []

        def reaped() -> bool:
            result = backend.reap(SHORT_LEASE)
            requeued.update(result.requeued)
            failed.extend(result.failed)
            return len(requeued) + len(failed) == 3

        wait_until(reaped, what="the three claims to be reaped")
        assert requeued == set(ids[:2])
        assert [r.id for r in failed] == [ids[2]]
        for job_id in ids[:2]:
            stored = _stored(backend, job_id)
            assert (stored.status, stored.attempts) == ("pending", 0)
            assert is_orphaned(stored.error)
        assert is_orphaned(failed[0].error)

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

    def test_the_reaper_counts_a_holders_claims_that_have_not_expired(
        self, backend: Backend
    ) -> None:
        # A claim made just before its worker stopped expires later than the others: the
        # first to expire is still one of several.
        first = enqueue_one(backend, "q", max_attempts=1)
        holder = worker_id(pid=111)
        claim_one(backend, "q", holder)
        wait_until(lambda: _age(backend, first) > 1.0, what="the lease to age")
        late = enqueue_one(backend, "q", max_attempts=1)
        claim_one(backend, "q", holder)
        result = backend.reap(0.5)
        assert (result.requeued, result.failed) == ((first,), ())
        stored = _stored(backend, first)
        assert (stored.status, stored.attempts) == ("pending", 0)
        assert _stored(backend, late).status == "claimed"


def _age(backend: Backend, job_id: int) -> float:
    heartbeat = _stored(backend, job_id).heartbeat_at
    assert heartbeat is not None
    return (backend.now() - heartbeat).total_seconds()
