"""Contract checks for stored results (:mod:`ferroq_core.storage.results`): a result is stored
by the fenced acknowledgement and only by it, read with its job's state, awaited, pruned (part
of :class:`~ferroq_core.testing.contract.BackendContract`)."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from ferroq_core.records import Lease
from ferroq_core.storage.results import ResultStore, ResultWrite
from ferroq_core.testing._contract_leases import SHORT_LEASE
from ferroq_core.testing._contract_support import claim_one, enqueue_one, wait_until, worker_id

if TYPE_CHECKING:
    from ferroq_core.storage.protocol import Backend

__all__ = ["ResultContract"]

DAY = 86_400.0


class ResultContract:
    """complete_with_results, read_result, wait_result, prune_results."""

    def test_is_a_result_store(self, backend: Backend) -> None:
        assert isinstance(backend, ResultStore)

    def test_acknowledgement_stores_the_result_and_deletes_the_job(self, backend: Backend) -> None:
        job_id = enqueue_one(backend, "r", job_type="contract:Result")
        row = claim_one(backend, "r")
        assert backend.read_result(job_id).status == "claimed"
        assert backend.read_result(job_id).result is None
        assert backend.complete_with_results([ResultWrite(row.lease, '{"v":1}', DAY)]) == {job_id}
        assert backend.get_job(job_id) is None
        state = backend.read_result(job_id)
        assert state.finished
        assert state.status is None
        assert state.result is not None
        assert (state.result.job_id, state.result.job_type) == (job_id, "contract:Result")
        assert state.result.value == '{"v":1}'
        assert state.result.created_at <= backend.now()
        kept = (state.result.expires_at - state.result.created_at).total_seconds()
        assert abs(kept - DAY) < 1.0

    def test_a_lost_lease_stores_nothing_and_keeps_the_new_claim(self, backend: Backend) -> None:
        job_id = enqueue_one(backend, "r", max_attempts=3)
        zombie = claim_one(backend, "r")
        wait_until(
            lambda: job_id in backend.reap(SHORT_LEASE).requeued, what="the lease to be reaped"
        )
        again = claim_one(backend, "r")
        assert backend.complete_with_results([ResultWrite(zombie.lease, '"zombie"', DAY)]) == set()
        state = backend.read_result(job_id)
        assert (state.result, state.status) == (None, "claimed")
        assert backend.complete_with_results([ResultWrite(again.lease, '"second"', DAY)]) == {
            job_id
        }
        state = backend.read_result(job_id)
        assert state.result is not None
        assert state.result.value == '"second"'

    def test_a_batch_stores_exactly_the_matching_leases(self, backend: Backend) -> None:
        ids = [enqueue_one(backend, "r") for _ in range(4)]
        rows = backend.claim(["r"], worker_id(), 4)
        assert sorted(r.id for r in rows) == sorted(ids)
        stale = Lease(rows[0].id, rows[0].lease.claimed_by, rows[0].attempts + 1)
        writes = [ResultWrite(stale, '"stale"', DAY)]
        writes += [ResultWrite(r.lease, f'"{r.id}"', DAY) for r in rows[1:]]
        assert backend.complete_with_results(writes) == {r.id for r in rows[1:]}
        assert backend.read_result(rows[0].id).status == "claimed"
        for r in rows[1:]:
            stored = backend.read_result(r.id).result
            assert stored is not None
            assert stored.value == f'"{r.id}"'
        # The plain complete of the same batch still works beside it.
        assert backend.complete([rows[0].lease]) == {rows[0].id}
        assert backend.read_result(rows[0].id).result is None

    def test_states_of_pending_failed_and_unknown_ids(self, backend: Backend) -> None:
        pending = enqueue_one(backend, "r")
        failed = enqueue_one(backend, "f")
        row = claim_one(backend, "f")
        assert backend.fail(row.lease, error="ValueError: boom")
        state = backend.read_result(pending)
        assert (state.status, state.finished) == ("pending", False)
        state = backend.read_result(failed)
        assert (state.status, state.finished, state.result) == ("failed", True, None)
        assert (state.error or "").startswith("ValueError: boom")
        unknown = backend.read_result(10**9)
        assert (unknown.status, unknown.result, unknown.finished) == (None, None, True)

    def test_wait_result_wakes_when_another_thread_acknowledges(self, backend: Backend) -> None:
        job_id = enqueue_one(backend, "r")
        row = claim_one(backend, "r")
        started = time.monotonic()
        timer = threading.Timer(
            0.3, lambda: backend.complete_with_results([ResultWrite(row.lease, "7", DAY)])
        )
        timer.start()
        try:
            state = backend.wait_result(job_id, 30.0)
        finally:
            timer.join()
        waited = time.monotonic() - started
        assert state.result is not None
        assert state.result.value == "7"
        assert 0.25 <= waited < 10.0

    def test_wait_result_times_out_on_an_unfinished_job(self, backend: Backend) -> None:
        job_id = enqueue_one(backend, "r")
        started = time.monotonic()
        state = backend.wait_result(job_id, 0.3)
        assert (state.status, state.finished) == ("pending", False)
        assert 0.25 <= time.monotonic() - started < 10.0

    def test_expired_results_are_not_read_and_are_pruned_in_bounded_batches(
        self, backend: Backend
    ) -> None:
        ids = [enqueue_one(backend, "r") for _ in range(5)]
        rows = backend.claim(["r"], worker_id(), 5)
        kept = rows[0]
        writes = [ResultWrite(kept.lease, "1", DAY)]
        writes += [ResultWrite(r.lease, "0", 0.0) for r in rows[1:]]
        assert backend.complete_with_results(writes) == set(ids)
        wait_until(lambda: backend.read_result(rows[1].id).result is None, what="expiry")
        assert backend.prune_results(limit=3) == 3
        assert backend.prune_results(limit=3) == 1
        assert backend.prune_results() == 0
        assert backend.read_result(kept.id).result is not None
