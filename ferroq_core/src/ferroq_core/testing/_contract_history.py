"""Contract checks for history (:class:`~ferroq_core.storage.history.HistoryStore`): records
written with the acknowledgement and fenced like it, one error per failed attempt from every
path that fails one (and none from a given-back attempt), progress, pruning (part of
:class:`~ferroq_core.testing.contract.BackendContract`)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ferroq_core.history_records import Completion, Progress
from ferroq_core.records import Lease
from ferroq_core.testing._contract_leases import SHORT_LEASE
from ferroq_core.testing._contract_support import claim_one, enqueue_one, worker_id

if TYPE_CHECKING:
    from ferroq_core.storage.protocol import Backend

__all__ = ["HistoryContract"]


class HistoryContract:
    """complete_with_history, attempt errors, progress, prune_history."""

    def test_history_is_written_with_the_acknowledgement_and_fenced_like_it(
        self, backend: Backend
    ) -> None:
        kept = enqueue_one(backend, "h", tenant_id="t1", priority=3)
        other = enqueue_one(backend, "h")
        worker = worker_id()
        rows = backend.claim(["h"], worker, 2)
        by_id = {r.id: r for r in rows}
        stale = Lease(other, worker, by_id[other].attempts + 1)
        done = backend.complete_with_history(
            [Completion(by_id[kept].lease, 0.25), Completion(stale, 1.0)]
        )
        assert done == {kept}
        assert backend.get_job(kept) is None
        assert backend.get_job(other) is not None  # its lease did not match: kept, no record
        assert backend.get_history(other) is None
        record = backend.get_history(kept)
        assert record is not None
        assert (record.queue, record.tenant_id, record.priority, record.attempts) == (
            "h",
            "t1",
            3,
            1,
        )
        assert (record.worker, record.duration) == (worker, 0.25)
        assert record.created_at <= record.finished_at
        assert [r.job_id for r in backend.list_history(queue="h")] == [kept]
        assert backend.list_history(tenant_id="nobody") == []

    def test_each_failed_attempt_leaves_its_error_and_a_given_back_one_none(
        self, backend: Backend
    ) -> None:
        job_id = enqueue_one(backend, "e", max_attempts=4)
        row = claim_one(backend, "e")
        assert backend.release(row.lease, delay=0, error="RuntimeError: one")
        row = claim_one(backend, "e")
        # Given back (ctx.release, shutdown): no failure, no error row, error kept.
        assert backend.release(row.lease, delay=0, error=row.error, count_attempt=False)
        assert backend.requeue([claim_one(backend, "e").lease], count_attempt=False)
        row = claim_one(backend, "e")
        assert row.attempts == 2
        assert backend.release(row.lease, delay=0, error="RuntimeError: two")
        claim_one(backend, "e", worker_id(pid=99))
        time.sleep(SHORT_LEASE * 3)
        assert backend.reap(SHORT_LEASE).requeued == (job_id,)  # the third attempt failed
        row = claim_one(backend, "e")
        assert backend.fail(row.lease, error="JobGivenUp: four")
        errors = backend.attempt_errors(job_id)
        assert [(e.attempt, e.error.splitlines()[0][:20]) for e in errors] == [
            (1, "RuntimeError: one"),
            (2, "RuntimeError: two"),
            (3, errors[2].error.splitlines()[0][:20]),
            (4, "JobGivenUp: four"),
        ]
        assert all(e.worker for e in errors)
        assert backend.attempt_errors(job_id + 1000) == []

    def test_progress_is_replaced_and_read_by_id(self, backend: Backend) -> None:
        a, b = enqueue_one(backend, "p"), enqueue_one(backend, "p")
        backend.write_progress({a: Progress(0.1, "one"), b: Progress(None, "b")})
        backend.write_progress({a: Progress(0.5, "half")})
        found = backend.get_progress([a, b, a + 1000])
        assert set(found) == {a, b}
        assert (found[a].fraction, found[a].message) == (0.5, "half")
        assert (found[b].fraction, found[b].message) == (None, "b")
        assert found[a].updated_at is not None
        assert backend.get_progress([]) == {}

    def test_pruning_keeps_the_window_and_the_errors_of_jobs_that_exist(
        self, backend: Backend
    ) -> None:
        gone = enqueue_one(backend, "r", max_attempts=2)
        failed = enqueue_one(backend, "r", max_attempts=1)
        row = claim_one(backend, "r")
        assert row.id == gone
        assert backend.release(row.lease, delay=0, error="boom")
        row = claim_one(backend, "r")
        assert row.id == failed
        assert backend.fail(row.lease, error="bad")
        row = claim_one(backend, "r")
        backend.write_progress({gone: Progress(1.0, None)})
        assert backend.complete_with_history([Completion(row.lease, 0.0)]) == {gone}
        assert backend.prune_history(3600.0) == 0
        time.sleep(0.01)
        deleted = 0
        for _ in range(10):
            batch = backend.prune_history(0.0, limit=1)
            deleted += batch
            if not batch:
                break
        assert deleted == 3  # the record, the deleted job's error, its progress
        assert backend.get_history(gone) is None
        assert backend.attempt_errors(gone) == []
        assert backend.get_progress([gone]) == {}
        assert [e.error for e in backend.attempt_errors(failed)] == ["bad"]
