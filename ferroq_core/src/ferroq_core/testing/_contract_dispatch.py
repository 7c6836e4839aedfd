"""Contract checks for enqueue and claim (part of
:class:`~ferroq_core.testing.contract.BackendContract`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ferroq_core.bounds import (
    MAX_ERROR_CHARS,
    MAX_IDEMPOTENCY_KEY_CHARS,
    MAX_JOB_TYPE_CHARS,
    MAX_QUEUE_NAME_CHARS,
    MAX_TENANT_ID_CHARS,
)
from ferroq_core.records import EnqueueResult, JobState
from ferroq_core.testing._contract_support import (
    claim_one,
    enqueue_one,
    request,
    wait_until,
    worker_id,
)

if TYPE_CHECKING:
    from ferroq_core.storage.protocol import Backend

__all__ = ["DispatchContract"]

#: Tolerance for comparing a time the test read with one the database wrote.
_SKEW = timedelta(seconds=1)


class DispatchContract:
    """Enqueue (single, bulk, idempotent) and the claim's ordering, limit and isolation."""

    # -- enqueue -----------------------------------------------------------------------------
    def test_enqueue_stores_every_field(self, backend: Backend) -> None:
        req = request(
            "mail", priority=7, max_attempts=5, idempotency_key="k-1", tenant_id="tenant-9"
        )
        (result,) = backend.enqueue([req])
        assert not result.duplicate
        row = backend.get_job(result.id)
        assert row is not None
        assert (row.queue, row.job_type, row.payload) == (req.queue, req.job_type, req.payload)
        assert (row.status, row.priority, row.attempts, row.max_attempts) == ("pending", 7, 0, 5)
        assert (row.idempotency_key, row.tenant_id) == ("k-1", "tenant-9")
        assert row.claimed_by is None
        assert row.claimed_at is None
        assert row.heartbeat_at is None
        assert row.error is None
        assert row.failed_at is None
        assert row.available_at.tzinfo is not None
        assert row.created_at.tzinfo is not None
        assert row.available_at == row.created_at
        assert row.state_at(backend.now()) is JobState.PENDING

    def test_texts_at_their_limits_are_stored_whole(self, backend: Backend) -> None:
        # Four-byte characters: the longest each limit allows in bytes, on every index.
        wide = "\U0001f600"
        req = request(
            "q" * MAX_QUEUE_NAME_CHARS,
            job_type=wide * MAX_JOB_TYPE_CHARS,
            idempotency_key=wide * MAX_IDEMPOTENCY_KEY_CHARS,
            tenant_id=wide * MAX_TENANT_ID_CHARS,
        )
        (result,) = backend.enqueue([req])
        (again,) = backend.enqueue([req])
        assert again == EnqueueResult(result.id, duplicate=True)
        row = claim_one(backend, req.queue)
        assert (row.id, row.queue, row.job_type) == (result.id, req.queue, req.job_type)
        assert (row.idempotency_key, row.tenant_id) == (req.idempotency_key, req.tenant_id)
        assert backend.fail(row.lease, error=wide * (MAX_ERROR_CHARS * 2))
        stored = backend.get_job(result.id)
        assert stored is not None
        assert stored.error is not None
        assert len(stored.error) < MAX_ERROR_CHARS + 100

    def test_enqueue_nothing_returns_nothing(self, backend: Backend) -> None:
        assert backend.enqueue([]) == []
        assert backend.get_stats().total == 0

    def test_get_job_unknown_id_is_none(self, backend: Backend) -> None:
        assert backend.get_job(987_654_321) is None

    def test_bulk_enqueue_results_follow_request_order(self, backend: Backend) -> None:
        reqs = [
            request("q"),
            request("q", idempotency_key="a"),
            request("q", priority=3),
            request("q", idempotency_key="a"),  # duplicate of the second, same batch
            request("other", idempotency_key="b", delay=3600),
            request("q"),
        ]
        results = backend.enqueue(reqs)
        assert len(results) == len(reqs)
        assert [r.duplicate for r in results] == [False, False, False, True, False, False]
        assert results[3].id == results[1].id
        assert len({r.id for r in results}) == 5
        for req, result in zip(reqs, results, strict=True):
            row = backend.get_job(result.id)
            assert row is not None
            if not result.duplicate:
                assert row.payload == req.payload
                assert row.queue == req.queue
        plain = [results[i].id for i in (0, 2, 5)]
        assert plain == sorted(plain), "plain rows of one batch are inserted in order"

    def test_bulk_enqueue_is_one_batch_of_many(self, backend: Backend) -> None:
        results = backend.enqueue([request("bulk") for _ in range(1200)])
        assert len({r.id for r in results}) == 1200
        assert backend.get_stats().for_queue("bulk").pending == 1200

    # -- idempotency -------------------------------------------------------------------------
    def test_idempotency_while_pending_and_claimed(self, backend: Backend) -> None:
        (first,) = backend.enqueue([request("q", idempotency_key="order-1")])
        (again,) = backend.enqueue([request("q", idempotency_key="order-1")])
        assert again.duplicate
        assert again.id == first.id
        row = claim_one(backend, "q")
        (while_claimed,) = backend.enqueue([request("q", idempotency_key="order-1")])
        assert while_claimed.duplicate
        assert while_claimed.id == first.id
        # Keys are per job type, and a job without a key never collides.
        (other_type,) = backend.enqueue(
            [request("q", job_type="contract:Other", idempotency_key="order-1")]
        )
        assert not other_type.duplicate
        assert other_type.id != first.id
        assert backend.complete([row.lease]) == {row.id}

    def test_idempotency_key_free_again_after_success(self, backend: Backend) -> None:
        first = enqueue_one(backend, "q", idempotency_key="k")
        row = claim_one(backend, "q")
        assert backend.complete([row.lease]) == {first}
        (after,) = backend.enqueue([request("q", idempotency_key="k")])
        assert not after.duplicate
        assert after.id != first

    def test_idempotency_key_free_again_after_failure(self, backend: Backend) -> None:
        first = enqueue_one(backend, "q", idempotency_key="k")
        row = claim_one(backend, "q")
        assert backend.fail(row.lease, error="boom")
        (after,) = backend.enqueue([request("q", idempotency_key="k")])
        assert not after.duplicate
        assert after.id != first
        failed = backend.get_job(first)
        assert failed is not None
        assert failed.status == "failed"

    def test_every_operation_survives_many_repetitions(self, backend: Backend) -> None:
        # Drivers prepare a statement after a few executions (psycopg: 5), and a prepared,
        # generic plan can behave differently from the first ones (e.g. an ON CONFLICT target
        # no longer matched to its partial index). Repeat every write well past that, back to
        # back and interleaved.
        for n in range(15):
            (result,) = backend.enqueue([request("keys", idempotency_key=f"k{n}")])
            assert not result.duplicate
        for n in range(15):
            (result,) = backend.enqueue([request("keys", idempotency_key=f"k{n}")])
            assert result.duplicate
        assert backend.clear_queue("keys") == 15
        for n in range(25):
            key = f"rep-{n}"
            (first,) = backend.enqueue([request("rep", idempotency_key=key, tenant_id="t")])
            (dup,) = backend.enqueue([request("rep", idempotency_key=key)])
            assert not first.duplicate
            assert dup.duplicate
            assert dup.id == first.id
            row = claim_one(backend, "rep")
            assert backend.heartbeat([row.lease]) == {row.id}
            assert backend.release(row.lease, delay=0, error="again")
            row = claim_one(backend, "rep")
            if n % 2:
                assert backend.fail(row.lease, error="no")
                assert backend.retry_failed([row.id]) == 1
                row = claim_one(backend, "rep")
            assert backend.requeue([row.lease]) == {row.id}
            row = claim_one(backend, "rep")
            assert backend.complete([row.lease]) == {row.id}
            assert backend.reap(3600).requeued == ()
            assert backend.get_stats().total == 0
            assert backend.list_jobs(queue="rep") == []

    # -- claim -------------------------------------------------------------------------------
    def test_claim_on_empty_queue_returns_nothing(self, backend: Backend) -> None:
        assert backend.claim(["default"], worker_id(), 10) == []
        assert backend.claim([], worker_id(), 10) == []

    def test_claim_sets_claim_fields(self, backend: Backend) -> None:
        job_id = enqueue_one(backend, "q", tenant_id="t1")
        worker = worker_id()
        before = backend.now()
        (row,) = backend.claim(["q"], worker, 5)
        assert row.id == job_id
        assert (row.status, row.claimed_by, row.attempts, row.tenant_id) == (
            "claimed",
            worker,
            1,
            "t1",
        )
        assert isinstance(row.claimed_at, datetime)
        assert isinstance(row.heartbeat_at, datetime)
        assert row.claimed_at >= before - _SKEW
        assert row.lease.attempts == 1
        assert row.lease.claimed_by == worker
        stored = backend.get_job(job_id)
        assert stored is not None
        assert stored.status == "claimed"
        assert stored.attempts == 1
        assert backend.claim(["q"], worker_id(), 5) == [], "a claimed job is not claimed twice"

    def test_claimed_records_equal_what_get_job_reads(self, backend: Backend) -> None:
        # Backends may build claimed records on a path of their own (SQLite and Postgres read
        # the driver's rows directly): every field must still match the stored row.
        backend.enqueue(
            [
                request("q", job_type="a", payload='{"x": 1}', priority=2),
                request("q", job_type="b", idempotency_key="k", tenant_id="t1"),
                request("q", job_type="c", payload="[]", max_attempts=7),
            ]
        )
        claimed = backend.claim(["q"], worker_id(), 10)
        assert len(claimed) == 3
        assert [r.job_type for r in claimed][-1] == "a"
        assert claimed == sorted(claimed, key=lambda r: (r.priority, r.available_at, r.id))
        for row in claimed:
            assert row == backend.get_job(row.id)  # every field, timestamps included
            assert row.status == "claimed"
            assert row.claimed_at is not None
            assert row.claimed_at.tzinfo is not None
            assert row.heartbeat_at == row.claimed_at
            # A per-claim conversion cache must not make distinct values share a datetime.
            assert row.created_at <= row.claimed_at

    def test_claim_respects_limit(self, backend: Backend) -> None:
        backend.enqueue([request("q") for _ in range(10)])
        assert backend.claim(["q"], worker_id(), 0) == []
        first = backend.claim(["q"], worker_id(), 3)
        assert len(first) == 3
        second = backend.claim(["q"], worker_id(), 100)
        assert len(second) == 7
        assert not {r.id for r in first} & {r.id for r in second}
        assert backend.claim(["q"], worker_id(), 100) == []

    def test_claim_orders_by_priority_then_age(self, backend: Backend) -> None:
        ids = [r.id for r in backend.enqueue([request("q", priority=p) for p in (5, 0, 10, 0)])]
        rows = backend.claim(["q"], worker_id(), 10)
        assert [r.id for r in rows] == [ids[1], ids[3], ids[0], ids[2]]
        assert [r.priority for r in rows] == [0, 0, 5, 10]

    def test_claim_takes_one_at_a_time_in_order(self, backend: Backend) -> None:
        ids = [enqueue_one(backend, "q", priority=p) for p in (1, 1, 0)]
        got = [claim_one(backend, "q").id for _ in range(3)]
        assert got == [ids[2], ids[0], ids[1]]

    def test_claim_takes_queues_in_strict_order(self, backend: Backend) -> None:
        low = [r.id for r in backend.enqueue([request("low") for _ in range(3)])]
        high = [r.id for r in backend.enqueue([request("high", priority=9) for _ in range(2)])]
        rows = backend.claim(["high", "low"], worker_id(), 4)
        assert [r.id for r in rows] == [*high, *low[:2]]
        backend.enqueue([request("high")])
        rest = backend.claim(["low", "high"], worker_id(), 4)
        assert [r.queue for r in rest] == ["low", "high"]

    def test_queues_are_isolated(self, backend: Backend) -> None:
        a = enqueue_one(backend, "a")
        assert backend.claim(["b"], worker_id(), 10) == []
        assert backend.claim(["A", "a "], worker_id(), 10) == [], "names match exactly"
        assert [r.id for r in backend.claim(["b", "a"], worker_id(), 10)] == [a]

    def test_delayed_job_not_claimable_before_its_time(self, backend: Backend) -> None:
        job_id = enqueue_one(backend, "q", delay=3600)
        assert backend.claim(["q"], worker_id(), 10) == []
        row = backend.get_job(job_id)
        assert row is not None
        assert row.state_at(backend.now()) is JobState.DELAYED
        assert 3590 < (row.available_at - row.created_at).total_seconds() <= 3600.5
        assert [r.id for r in backend.list_jobs(state=JobState.DELAYED)] == [job_id]
        assert backend.list_jobs(state=JobState.PENDING) == []

    def test_delayed_job_claimable_once_due(self, backend: Backend) -> None:
        job_id = enqueue_one(backend, "q", delay=0.3)
        rows = wait_until(
            lambda: backend.claim(["q"], worker_id(), 10), what="the delayed job to become due"
        )
        assert [r.id for r in rows] == [job_id]
        assert rows[0].claimed_at is not None
        assert rows[0].claimed_at >= rows[0].available_at
