"""Result waiters hear of every end of a job, not only of a stored result: each statement that
parks a job failed or removes it as cancelled also notifies the results channel with its id
(delivered on commit, so a waiting ``result()`` raises ``JobFailed`` or ``ResultMissing`` at
once instead of at its next 0.5 s poll). A retry's release and a plain completion do not. A
result with its history record is one statement, which notifies too."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest

from ferroq_core.records import Lease
from ferroq_core.storage.results import ResultWrite
from ferroq_core.testing._contract_leases import SHORT_LEASE
from ferroq_core.testing._contract_support import request, worker_id
from ferroq_postgres.results import RESULTS_CHANNEL
from tests.postgres.conftest import listening
from tests.postgres.test_one_round_trip import statements  # noqa: F401 - a fixture

if TYPE_CHECKING:
    from collections.abc import Iterator

    import psycopg

    from ferroq_postgres import PostgresBackend

pytestmark = pytest.mark.postgres


@pytest.fixture
def waiters(pg_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection LISTENing on the results channel."""
    with listening(pg_url, RESULTS_CHANNEL) as conn:
        yield conn


def heard(conn: psycopg.Connection[Any]) -> list[str]:
    return [n.payload for n in conn.notifies(timeout=0.3)]


def _one(backend: PostgresBackend, queue: str, **fields: Any) -> int:
    (result,) = backend.enqueue([request(queue, **fields)])
    return result.id


def test_a_failure_notifies_in_its_one_statement_and_a_retry_does_not(
    pg_backend: PostgresBackend,
    waiters: psycopg.Connection[Any],
    statements: list[str],  # noqa: F811 - the fixture
) -> None:
    job_id = _one(pg_backend, "f", max_attempts=2)
    me = worker_id()
    [row] = pg_backend.claim(["f"], me, 1)
    assert pg_backend.release(Lease(row.id, me, row.attempts), delay=0, error="boom")
    assert heard(waiters) == [], "a retry ends nothing"
    [row] = pg_backend.claim(["f"], me, 1)
    statements.clear()
    assert pg_backend.fail(Lease(row.id, me, row.attempts), error="ValueError: last")
    assert len(statements) == 1
    assert heard(waiters) == [str(job_id)]
    # A lost lease parks nothing and says nothing.
    assert not pg_backend.fail(Lease(row.id, me, row.attempts), error="again")
    assert heard(waiters) == []


def test_a_plain_completion_does_not_notify(
    pg_backend: PostgresBackend, waiters: psycopg.Connection[Any]
) -> None:
    _one(pg_backend, "c")
    [row] = pg_backend.claim(["c"], worker_id(), 1)
    assert pg_backend.complete([row.lease]) == {row.id}
    assert heard(waiters) == []


def test_the_reaper_and_a_dead_workers_take_back_notify_what_they_fail(
    pg_backend: PostgresBackend, waiters: psycopg.Connection[Any]
) -> None:
    reaped = _one(pg_backend, "r", max_attempts=1)
    requeued = _one(pg_backend, "r", max_attempts=3)
    pg_backend.claim(["r"], worker_id(), 2)
    time.sleep(SHORT_LEASE * 3)
    result = pg_backend.reap(SHORT_LEASE)
    assert ([r.id for r in result.failed], result.requeued) == ([reaped], (requeued,))
    assert heard(waiters) == [str(reaped)]
    orphaned = _one(pg_backend, "o", max_attempts=1)
    dead = worker_id(pid=999_999)
    pg_backend.claim(["o"], dead, 1)
    assert [r.id for r in pg_backend.reap_worker(dead).failed] == [orphaned]
    assert heard(waiters) == [str(orphaned)]


def test_cancellations_notify_the_jobs_they_remove(
    pg_backend: PostgresBackend, waiters: psycopg.Connection[Any]
) -> None:
    pending = _one(pg_backend, "x")
    running = _one(pg_backend, "y")
    me = worker_id()
    [row] = pg_backend.claim(["y"], me, 1)
    result = pg_backend.cancel_jobs([pending, running])
    assert ([r.id for r in result.removed], result.requested) == ([pending], (running,))
    assert heard(waiters) == [str(pending)]
    assert pg_backend.finish_cancelled(Lease(row.id, me, row.attempts))
    assert heard(waiters) == [str(running)]
    # A job given back to pending before its worker acted on its request is swept.
    swept = _one(pg_backend, "z")
    [row] = pg_backend.claim(["z"], me, 1)
    pg_backend.cancel_jobs([swept])
    assert pg_backend.requeue([Lease(row.id, me, row.attempts)], count_attempt=False)
    assert [r.id for r in pg_backend.sweep_cancelled()] == [swept]
    assert heard(waiters) == [str(swept)]


def test_a_result_with_history_is_one_statement_that_notifies(
    pg_backend: PostgresBackend,
    waiters: psycopg.Connection[Any],
    statements: list[str],  # noqa: F811 - the fixture
) -> None:
    ids = [_one(pg_backend, "h") for _ in range(3)]
    rows = pg_backend.claim(["h"], worker_id(), 3)
    writes = [
        ResultWrite(r.lease, str(r.id), 60.0, keep_history=r.id != ids[2], duration=0.1)
        for r in rows
    ]
    statements.clear()
    assert pg_backend.complete_with_results(writes) == set(ids)
    assert len(statements) == 1
    assert sorted(heard(waiters)) == sorted(str(i) for i in ids)
    assert [pg_backend.get_history(i) is not None for i in ids] == [True, True, False]
