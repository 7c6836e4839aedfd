"""Contract checks for fenced finishing writes, leases and the reaper (part of
:class:`~ferroq_core.testing.contract.BackendContract`)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

from ferroq_core.records import EnqueueRequest, JobState, Lease
from ferroq_core.storage.functions import reap_startup_claims
from ferroq_core.storage.rules import reap_dead_on_host
from ferroq_core.testing._contract_support import (
    HOST,
    claim_one,
    enqueue_one,
    request,
    wait_until,
    worker_id,
)
from ferroq_core.worker.identity import hostname

if TYPE_CHECKING:
    from collections.abc import Callable

    from ferroq_core.records import JobRow
    from ferroq_core.storage.protocol import Backend

__all__ = ["LeaseContract"]

#: A visibility timeout short enough that a lease expires after a brief wait.
SHORT_LEASE = 0.05


def _reap_until_requeued(backend: Backend, job_id: int) -> None:
    wait_until(
        lambda: job_id in backend.reap(SHORT_LEASE).requeued, what=f"job {job_id} to be reaped"
    )


def _stale_and_fresh(backend: Backend) -> tuple[JobRow, JobRow]:
    """A job claimed, reaped and claimed again: (the stale claim, the current one)."""
    job_id = enqueue_one(backend, "q", max_attempts=5)
    stale = claim_one(backend, "q", worker_id(pid=1))
    _reap_until_requeued(backend, job_id)
    fresh = claim_one(backend, "q", worker_id(pid=2))
    assert fresh.id == stale.id
    assert fresh.attempts == stale.attempts + 1
    return stale, fresh


class LeaseContract:
    """complete, release, fail, heartbeat, reap, requeue and the fence on each of them."""

    # -- finishing writes --------------------------------------------------------------------
    def test_complete_deletes_in_batches(self, backend: Backend) -> None:
        backend.enqueue([_req() for _ in range(3)])
        rows = backend.claim(["q"], worker_id(), 3)
        assert backend.complete([r.lease for r in rows]) == {r.id for r in rows}
        assert all(backend.get_job(r.id) is None for r in rows)
        assert backend.complete([]) == set()
        assert backend.complete([rows[0].lease]) == set(), "completing twice matches nothing"

    def test_release_returns_to_pending_with_delay_and_error(self, backend: Backend) -> None:
        job_id = enqueue_one(backend, "q", tenant_id="t")
        row = claim_one(backend, "q")
        assert backend.release(row.lease, delay=3600, error="try later")
        stored = backend.get_job(job_id)
        assert stored is not None
        assert (stored.status, stored.attempts, stored.error, stored.claimed_by) == (
            "pending",
            1,
            "try later",
            None,
        )
        assert stored.heartbeat_at is None
        assert stored.claimed_at is None
        assert stored.state_at(backend.now()) is JobState.DELAYED
        assert (stored.available_at - backend.now()).total_seconds() > 3000
        assert backend.claim(["q"], worker_id(), 1) == []
        assert not backend.release(row.lease, delay=0, error=None), "lease is gone"

    def test_release_without_delay_is_claimable_at_once(self, backend: Backend) -> None:
        enqueue_one(backend, "q")
        row = claim_one(backend, "q")
        assert backend.release(row.lease, delay=0, error=None)
        again = claim_one(backend, "q")
        assert again.id == row.id
        assert again.attempts == 2

    def test_release_without_counting_the_attempt(self, backend: Backend) -> None:
        job_id = enqueue_one(backend, "q")
        row = claim_one(backend, "q")
        assert backend.release(row.lease, delay=0, error=None, count_attempt=False)
        stored = backend.get_job(job_id)
        assert stored is not None
        assert stored.attempts == 0

    def test_fail_parks_the_job(self, backend: Backend) -> None:
        job_id = enqueue_one(backend, "q", tenant_id="t")
        row = claim_one(backend, "q")
        assert backend.fail(row.lease, error="Traceback: boom")
        stored = backend.get_job(job_id)
        assert stored is not None
        assert (stored.status, stored.error, stored.tenant_id) == ("failed", "Traceback: boom", "t")
        assert stored.failed_at is not None
        assert stored.heartbeat_at is None
        assert backend.claim(["q"], worker_id(), 1) == []
        assert not backend.fail(row.lease, error="again")

    def test_huge_error_text_is_capped(self, backend: Backend) -> None:
        job_id = enqueue_one(backend, "q")
        row = claim_one(backend, "q")
        assert backend.fail(row.lease, error="x" * 2_000_000)
        stored = backend.get_job(job_id)
        assert stored is not None
        assert stored.error is not None
        assert 0 < len(stored.error) < 100_000

    def test_heartbeat_extends_held_leases(self, backend: Backend) -> None:
        backend.enqueue([_req(), _req()])
        a, b = backend.claim(["q"], worker_id(), 2)
        assert b.heartbeat_at is not None
        wait_until(
            lambda: (backend.now() - b.heartbeat_at).total_seconds() > 1.5,  # type: ignore[operator]
            what="the leases to age",
        )
        assert backend.heartbeat([a.lease]) == {a.id}
        result = backend.reap(1.0)
        assert result.requeued == (b.id,), "only the lease without a heartbeat expired"
        stored = backend.get_job(a.id)
        assert stored is not None
        assert stored.status == "claimed"
        assert stored.heartbeat_at is not None
        assert stored.heartbeat_at > b.heartbeat_at
        assert backend.heartbeat([]) == set()
        assert backend.heartbeat([b.lease]) == set(), "a reaped lease is not held"

    # -- fencing -----------------------------------------------------------------------------
    def test_stale_lease_cannot_complete(self, backend: Backend) -> None:
        stale, fresh = _stale_and_fresh(backend)
        assert backend.complete([stale.lease]) == set()
        assert backend.get_job(stale.id) is not None, "a zombie completion is never applied"
        assert backend.complete([fresh.lease]) == {fresh.id}

    def test_stale_lease_cannot_release_fail_or_heartbeat(self, backend: Backend) -> None:
        stale, fresh = _stale_and_fresh(backend)
        assert not backend.release(stale.lease, delay=0, error="zombie")
        assert not backend.fail(stale.lease, error="zombie")
        assert backend.heartbeat([stale.lease]) == set()
        assert backend.requeue([stale.lease]) == set()
        stored = backend.get_job(fresh.id)
        assert stored is not None
        assert (stored.status, stored.claimed_by, stored.attempts) == (
            "claimed",
            fresh.claimed_by,
            fresh.attempts,
        )
        assert stored.error is None or "zombie" not in stored.error
        assert backend.heartbeat([fresh.lease]) == {fresh.id}

    def test_lease_must_match_every_field(self, backend: Backend) -> None:
        enqueue_one(backend, "q")
        row = claim_one(backend, "q")
        wrong_worker = Lease(row.id, worker_id(), row.attempts)
        wrong_attempt = Lease(row.id, row.lease.claimed_by, row.attempts + 1)
        wrong_id = Lease(row.id + 1000, row.lease.claimed_by, row.attempts)
        assert backend.complete([wrong_worker, wrong_attempt, wrong_id]) == set()
        assert backend.complete([row.lease, wrong_worker]) == {row.id}

    # -- reaper ------------------------------------------------------------------------------
    def test_reaper_leaves_live_leases_alone(self, backend: Backend) -> None:
        enqueue_one(backend, "q")
        claim_one(backend, "q")
        result = backend.reap(3600)
        assert result.requeued == ()
        assert result.failed == ()

    def test_reaper_requeues_with_attempts_left(self, backend: Backend) -> None:
        job_id = enqueue_one(backend, "q", max_attempts=2, tenant_id="t")
        row = claim_one(backend, "q")
        _reap_until_requeued(backend, job_id)
        stored = backend.get_job(job_id)
        assert stored is not None
        assert (stored.status, stored.attempts, stored.claimed_by) == ("pending", 1, None)
        assert stored.tenant_id == "t"
        assert stored.payload == row.payload
        assert stored.error is not None
        assert "lease expired" in stored.error
        assert claim_one(backend, "q").attempts == 2

    def test_reaper_fails_when_attempts_exhausted(self, backend: Backend) -> None:
        job_id = enqueue_one(backend, "q", max_attempts=1)
        row = claim_one(backend, "q")
        result = wait_until(lambda: backend.reap(SHORT_LEASE).failed, what="the job to be failed")
        assert [r.id for r in result] == [job_id]
        (failed,) = result
        assert failed.status == "failed"
        assert failed.failed_at is not None
        assert failed.payload == row.payload
        assert failed.attempts == 1
        assert failed.error is not None
        assert "lease expired" in failed.error
        stored = backend.get_job(job_id)
        assert stored is not None
        assert stored.status == "failed"
        assert backend.reap(SHORT_LEASE).failed == (), "a failed row is reported once"

    # -- requeue -----------------------------------------------------------------------------
    def test_requeue_claimed_by_keeps_tenant_and_payload(self, backend: Backend) -> None:
        worker, other = worker_id(), worker_id()
        backend.enqueue([_req(tenant_id="acme"), _req(tenant_id="acme"), _req()])
        mine = backend.claim(["q"], worker, 2)
        theirs = claim_one(backend, "q", other)
        assert backend.requeue_claimed_by(worker, count_attempt=False) == 2
        for row in mine:
            stored = backend.get_job(row.id)
            assert stored is not None
            assert (stored.status, stored.attempts, stored.claimed_by) == ("pending", 0, None)
            assert (stored.tenant_id, stored.payload) == ("acme", row.payload)
            assert stored.state_at(backend.now()) is JobState.PENDING
        held = backend.get_job(theirs.id)
        assert held is not None
        assert held.status == "claimed"
        assert backend.requeue_claimed_by(worker) == 0

    def test_requeue_claimed_by_counting_the_attempt(self, backend: Backend) -> None:
        job_id = enqueue_one(backend, "q", tenant_id="t")
        worker = worker_id()
        claim_one(backend, "q", worker)
        assert backend.requeue_claimed_by(worker, count_attempt=True) == 1
        stored = backend.get_job(job_id)
        assert stored is not None
        assert stored.attempts == 1
        assert stored.tenant_id == "t"

    def test_requeue_leases(self, backend: Backend) -> None:
        backend.enqueue([_req(tenant_id="t1"), _req(tenant_id="t2")])
        a, b = backend.claim(["q"], worker_id(), 2)
        assert backend.requeue([a.lease], count_attempt=False) == {a.id}
        assert backend.requeue([b.lease], count_attempt=True) == {b.id}
        sa_, sb = backend.get_job(a.id), backend.get_job(b.id)
        assert sa_ is not None
        assert sb is not None
        assert (sa_.status, sa_.attempts, sa_.tenant_id, sa_.payload) == (
            "pending",
            0,
            "t1",
            a.payload,
        )
        assert (sb.status, sb.attempts, sb.tenant_id, sb.payload) == ("pending", 1, "t2", b.payload)
        assert backend.requeue([]) == set()

    def test_returned_jobs_keep_their_place_in_line(self, backend: Backend) -> None:
        # A job taken back from a dead or stopping worker was already due: it must run
        # before jobs dispatched after it, not wait behind the whole backlog again.
        first, second, third = (enqueue_one(backend, "q") for _ in range(3))
        reaped, requeued, by_worker = (
            claim_one(backend, "q", w) for w in (worker_id(), worker_id(), worker_id())
        )
        assert (reaped.id, requeued.id, by_worker.id) == (first, second, third)
        later = enqueue_one(backend, "q")
        assert backend.requeue([requeued.lease], count_attempt=False) == {second}
        assert backend.requeue_claimed_by(by_worker.claimed_by or "") == 1
        _reap_until_requeued(backend, first)
        for row in (reaped, requeued, by_worker):
            stored = backend.get_job(row.id)
            assert stored is not None
            assert stored.available_at == row.available_at
        order = [r.id for r in backend.claim(["q"], worker_id(), 4)]
        assert order == [first, second, third, later]

    def test_reap_startup_claims_of_dead_processes(self, backend: Backend) -> None:
        dead, alive = worker_id(HOST, 111), worker_id(HOST, 222)
        elsewhere = worker_id("other-host", 111)
        backend.enqueue([_req() for _ in range(4)])
        dead_rows = backend.claim(["q"], dead, 2)
        claim_one(backend, "q", alive)
        claim_one(backend, "q", elsewhere)
        assert sorted(backend.claimed_by_host(HOST)) == sorted([dead, alive])
        assert len(reap_dead_on_host(backend, HOST, lambda pid: pid == 222).requeued) == 2
        for row in dead_rows:
            stored = backend.get_job(row.id)
            assert stored is not None
            assert stored.status == "pending"
        assert sorted(backend.claimed_by_host(HOST)) == [alive]
        assert backend.claimed_by_host("other-host") == [elsewhere]

    def test_reap_startup_claims_of_a_process_that_exited(self, backend: Backend) -> None:
        # A real pid that is gone, checked the way workers check at start-up.
        child = subprocess.Popen([sys.executable, "-c", "pass"])
        child.wait(60)
        host = hostname()
        gone, mine = worker_id(host, child.pid), worker_id(host, os.getpid())
        backend.enqueue([_req(tenant_id="t"), _req()])
        lost = claim_one(backend, "q", gone)
        claim_one(backend, "q", mine)
        assert reap_startup_claims(host, backend=backend).requeued == (lost.id,)
        stored = backend.get_job(lost.id)
        assert stored is not None
        assert (stored.status, stored.tenant_id, stored.payload) == ("pending", "t", lost.payload)
        assert backend.claimed_by_host(host) == [mine]

    def test_claimed_by_host_matches_host_as_data(self, backend: Backend) -> None:
        odd = "h%st_1"
        mine = worker_id(odd, 5)
        lookalike = worker_id("hXstZ1", 5)
        backend.enqueue([_req(), _req()])
        claim_one(backend, "q", mine)
        claim_one(backend, "q", lookalike)
        assert backend.claimed_by_host(odd) == [mine]
        assert backend.claimed_by_host("h") == []
        assert backend.claimed_by_host(odd.upper()) == [], "host names match case-sensitively"

    # -- wake-ups ----------------------------------------------------------------------------
    def test_wait_for_jobs_times_out_when_idle(self, backend: Backend) -> None:
        # A first wait may report a wake-up (a listener that just connected asks for one poll).
        backend.wait_for_jobs(["idle"], 0.05)
        start = time.monotonic()
        assert backend.wait_for_jobs(["idle"], 0.3) is False
        assert time.monotonic() - start >= 0.25

    @pytest.mark.parametrize("levels", [1, 3])
    def test_wait_ends_when_a_delayed_job_is_due(self, backend: Backend, levels: int) -> None:
        # An idle worker must not sleep through a delayed job's time, nor wait for the next
        # poll. The soonest job is on the last of several priority levels.
        later = [request("later", priority=p, delay=60) for p in range(levels - 1)]
        backend.enqueue([*later, request("later", priority=levels, delay=0.6)])
        start = time.monotonic()
        claimed: list[JobRow] = []
        while not claimed and time.monotonic() - start < 30:
            backend.wait_for_jobs(["later"], 30)  # the dispatch's own notification ends one
            claimed = backend.claim(["later"], worker_id(), 1)
        elapsed = time.monotonic() - start
        assert [r.priority for r in claimed] == [levels]
        assert 0.5 <= elapsed < 5, f"the job was claimed {elapsed:.2f}s after its dispatch"

    def test_wake_interrupts_wait(self, backend: Backend) -> None:
        self._assert_wakes(backend, backend.wake)

    def test_enqueue_wakes_a_waiter(self, backend: Backend) -> None:
        self._assert_wakes(backend, lambda: enqueue_one(backend, "w"))

    @staticmethod
    def _assert_wakes(backend: Backend, poke: Callable[[], object]) -> None:
        result: list[bool] = []
        waiter = threading.Thread(target=lambda: result.append(backend.wait_for_jobs(["w"], 60)))
        start = time.monotonic()
        waiter.start()
        # The waiter may not be waiting yet: poke until it returns instead of guessing when.
        while waiter.is_alive() and time.monotonic() - start < 30:
            poke()
            waiter.join(0.1)
        waiter.join(1)
        assert result == [True]
        assert time.monotonic() - start < 30


def _req(**fields: Any) -> EnqueueRequest:
    return request("q", **fields)
