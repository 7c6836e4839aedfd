"""Contract checks for introspection and operator actions (part of
:class:`~ferroq_core.testing.contract.BackendContract`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ferroq_core.records import JobState
from ferroq_core.storage.protocol import TestingStore
from ferroq_core.testing._contract_support import (
    age_of,
    claim_one,
    enqueue_one,
    request,
    wait_until,
    worker_id,
)

if TYPE_CHECKING:
    from ferroq_core.storage.protocol import Backend

__all__ = ["AdminContract"]

#: Queue names that break SQL built by string formatting or LIKE matching.
ODD_QUEUE_NAMES = (
    "it's",
    'double"quote',
    "semi;colon",
    "'; DROP TABLE ferroq_jobs; --",
    "ünïcødé ✓ 队列",
    "50%",
    "50%_off",
    "5_0",
    "500",
    "back\\slash",
    "inner space",
)


def _failed_job(backend: Backend, queue: str = "q", **fields: object) -> int:
    job_id = enqueue_one(backend, queue, **fields)
    row = claim_one(backend, queue)
    assert row.id == job_id, "the suite fails jobs only on queues with nothing else pending"
    assert backend.fail(row.lease, error="boom")
    return job_id


class AdminContract:
    """list_jobs, get_stats, retry_failed, delete_jobs, flush_failed, clear_queue,
    worker_heartbeats, make_due, and queue names stored and matched as data."""

    def test_odd_queue_names_are_data(self, backend: Backend) -> None:
        ids = {name: enqueue_one(backend, name) for name in ODD_QUEUE_NAMES}
        stats = backend.get_stats()
        assert sorted(q.queue for q in stats.queues) == sorted(ODD_QUEUE_NAMES)
        for name, job_id in ids.items():
            assert stats.for_queue(name).pending == 1, name
            assert [r.id for r in backend.list_jobs(queue=name)] == [job_id], name
            row = backend.get_job(job_id)
            assert row is not None
            assert row.queue == name
        for name in ("5_0", "50%", "it's", "ünïcødé ✓ 队列", "inner space"):
            rows = backend.claim([name], worker_id(), 10)
            assert [r.id for r in rows] == [ids[name]], name
        assert backend.clear_queue("50%_off") == 1
        assert backend.clear_queue("50%") == 0, "already claimed; no other queue is touched"
        assert backend.get_stats().total == len(ODD_QUEUE_NAMES) - 1

    # -- list_jobs ---------------------------------------------------------------------------
    def test_list_jobs_filters(self, backend: Backend) -> None:
        a = enqueue_one(backend, "a", tenant_id="t1", job_type="contract:A")
        b = enqueue_one(backend, "b", tenant_id="t2", job_type="contract:B")
        delayed = enqueue_one(backend, "a", delay=3600)
        claimed = enqueue_one(backend, "c")
        claim_one(backend, "c")
        failed = _failed_job(backend, "f")

        def ids(**filters: object) -> list[int]:
            return [r.id for r in backend.list_jobs(**filters)]  # type: ignore[arg-type]

        assert sorted(ids()) == sorted([a, b, delayed, claimed, failed])
        assert sorted(ids(state=JobState.PENDING)) == sorted([a, b])
        assert ids(state=JobState.DELAYED) == [delayed]
        assert ids(state=JobState.CLAIMED) == [claimed]
        assert ids(state=JobState.FAILED) == [failed]
        assert sorted(ids(queue="a")) == sorted([a, delayed])
        assert ids(queue="a", state=JobState.PENDING) == [a]
        assert ids(job_type="contract:B") == [b]
        assert ids(tenant_id="t1") == [a]
        assert ids(tenant_id="t1", queue="b") == []
        assert ids(queue="nope") == []

    def test_list_jobs_order_limit_offset(self, backend: Backend) -> None:
        ids = [r.id for r in backend.enqueue([request("q", priority=p) for p in (2, 0, 1, 0)])]
        expected = [ids[1], ids[3], ids[2], ids[0]]
        assert [r.id for r in backend.list_jobs(state=JobState.PENDING)] == expected
        assert [r.id for r in backend.list_jobs(limit=2)] == expected[:2]
        assert [r.id for r in backend.list_jobs(limit=2, offset=2)] == expected[2:]
        assert backend.list_jobs(offset=10) == []
        assert backend.list_jobs(limit=0) == []

    def test_list_failed_newest_first(self, backend: Backend) -> None:
        first = _failed_job(backend)
        row = backend.get_job(first)
        assert row is not None
        assert row.failed_at is not None
        wait_until(lambda: backend.now() > row.failed_at, what="the clock to move")  # type: ignore[operator]
        second = _failed_job(backend)
        assert [r.id for r in backend.list_jobs(state=JobState.FAILED)] == [second, first]

    # -- get_stats ---------------------------------------------------------------------------
    def test_stats_counts_per_queue(self, backend: Backend) -> None:
        assert backend.get_stats().queues == ()
        _failed_job(backend, "b")
        backend.enqueue([request("a"), request("a"), request("a", delay=3600), request("b")])
        enqueue_one(backend, "c")
        claim_one(backend, "c")
        stats = backend.get_stats()
        assert [q.queue for q in stats.queues] == ["a", "b", "c"]
        a, b, c = stats.queues
        assert (a.pending, a.delayed, a.claimed, a.failed) == (2, 1, 0, 0)
        assert (b.pending, b.delayed, b.claimed, b.failed) == (1, 0, 0, 1)
        assert (c.pending, c.delayed, c.claimed, c.failed) == (0, 0, 1, 0)
        assert (stats.pending, stats.delayed, stats.claimed, stats.failed) == (3, 1, 1, 1)
        assert stats.total == 6
        assert a.oldest_pending_age is not None
        assert b.oldest_pending_age is not None
        assert c.oldest_pending_age is None

    def test_stats_oldest_pending_age(self, backend: Backend) -> None:
        job_id = enqueue_one(backend, "q")
        enqueue_one(backend, "q", delay=3600)
        wait_until(lambda: age_of(backend, job_id) >= 0.3, what="the job to age")
        age = backend.get_stats().for_queue("q").oldest_pending_age
        assert age is not None
        assert 0.3 <= age < 300

    # -- operator actions --------------------------------------------------------------------
    def test_retry_failed_resets_attempts_and_keeps_tenant(self, backend: Backend) -> None:
        job_id = _failed_job(backend, "q", tenant_id="acme", max_attempts=1)
        before = backend.get_job(job_id)
        assert backend.retry_failed([job_id]) == 1
        row = backend.get_job(job_id)
        assert row is not None
        assert before is not None
        assert (row.status, row.attempts, row.tenant_id, row.payload) == (
            "pending",
            0,
            "acme",
            before.payload,
        )
        assert row.failed_at is None
        assert row.claimed_by is None
        assert row.state_at(backend.now()) is JobState.PENDING
        assert claim_one(backend, "q").id == job_id
        assert backend.retry_failed([job_id]) == 0, "only failed jobs move"

    def test_retry_failed_filters(self, backend: Backend) -> None:
        a = _failed_job(backend, "a")
        b = _failed_job(backend, "b", job_type="contract:B")
        c = _failed_job(backend, "b")
        assert backend.retry_failed([]) == 0
        assert backend.retry_failed(queue="a") == 1
        assert backend.retry_failed(job_type="contract:B") == 1
        statuses = {i: backend.get_job(i).status for i in (a, b, c)}  # type: ignore[union-attr]
        assert statuses == {a: "pending", b: "pending", c: "failed"}
        assert backend.retry_failed() == 1

    def test_retry_failed_leaves_key_conflict_failed(self, backend: Backend) -> None:
        old = _failed_job(backend, "q", idempotency_key="k")
        (new,) = backend.enqueue([request("q", idempotency_key="k")])
        assert not new.duplicate
        assert backend.retry_failed([old]) == 0
        row = backend.get_job(old)
        assert row is not None
        assert row.status == "failed"
        claimed = claim_one(backend, "q")
        assert backend.complete([claimed.lease]) == {new.id}
        assert backend.retry_failed([old]) == 1, "the key is free again"

    def test_delete_jobs(self, backend: Backend) -> None:
        pending = enqueue_one(backend, "q")
        failed = _failed_job(backend, "f")
        assert backend.delete_jobs([]) == 0
        assert backend.delete_jobs([pending], state=JobState.FAILED) == 0
        assert backend.delete_jobs([pending, failed, 987_654], state=JobState.FAILED) == 1
        assert backend.get_job(failed) is None
        assert backend.get_job(pending) is not None
        assert backend.delete_jobs([pending]) == 1
        assert backend.get_stats().total == 0

    def test_flush_failed_older_than(self, backend: Backend) -> None:
        job_id = _failed_job(backend, "f")
        enqueue_one(backend, "q")
        assert backend.flush_failed(older_than=3600) == 0
        row = backend.get_job(job_id)
        assert row is not None
        assert row.failed_at is not None
        wait_until(
            lambda: (backend.now() - row.failed_at).total_seconds() > 0.3,  # type: ignore[operator]
            what="the failure to age",
        )
        assert backend.flush_failed(older_than=0.2) == 1
        _failed_job(backend, "f")
        assert backend.flush_failed() == 1
        assert backend.get_stats().total == 1, "pending jobs are never flushed"

    def test_clear_queue_deletes_pending_and_delayed_only(self, backend: Backend) -> None:
        _failed_job(backend, "q")
        backend.enqueue([request("q"), request("q", delay=3600), request("q"), request("keep")])
        claimed = claim_one(backend, "q")
        assert backend.clear_queue("q") == 2
        stats = backend.get_stats()
        q = stats.for_queue("q")
        assert (q.pending, q.delayed, q.claimed, q.failed) == (0, 0, 1, 1)
        assert stats.for_queue("keep").pending == 1
        assert backend.get_job(claimed.id) is not None
        assert backend.clear_queue("empty") == 0

    def test_worker_heartbeats(self, backend: Backend) -> None:
        assert backend.worker_heartbeats() == {}
        w1, w2 = worker_id(pid=1), worker_id(pid=2)
        backend.enqueue([request("q") for _ in range(3)])
        rows = backend.claim(["q"], w1, 2)
        claim_one(backend, "q", w2)
        beats = backend.worker_heartbeats()
        assert set(beats) == {w1, w2}
        assert all(v.tzinfo is not None for v in beats.values())
        wait_until(lambda: backend.now() > beats[w1], what="the clock to move")
        backend.heartbeat([rows[0].lease])
        assert backend.worker_heartbeats()[w1] > beats[w1]
        assert backend.complete([r.lease for r in rows]) == {r.id for r in rows}
        assert set(backend.worker_heartbeats()) == {w2}

    def test_make_due(self, backend: Backend) -> None:
        assert isinstance(backend, TestingStore), "the testing kit's drain() needs make_due"
        soon = enqueue_one(backend, "q", delay=60)
        later = enqueue_one(backend, "q", delay=7200)
        other = enqueue_one(backend, "other", delay=60)
        assert backend.make_due(["q"], within=600) == 1
        assert [r.id for r in backend.claim(["q"], worker_id(), 10)] == [soon]
        assert backend.make_due([]) == 0
        assert backend.make_due() == 2
        assert sorted(r.id for r in backend.claim(["q", "other"], worker_id(), 10)) == sorted(
            [later, other]
        )
