"""New jobs into SQLite, inside a write transaction the caller opened (the backend's own, or
a caller's transactional dispatch): plain jobs in bulk with consecutive ids, keyed jobs one
by one through the partial unique index.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ferroq_core.clock import to_micros, utcnow
from ferroq_core.errors import DatabaseError
from ferroq_core.records import EnqueueResult
from ferroq_core.storage.rules import enqueue_in_order, result_ttls, settle_key
from ferroq_sqlite.bulk import insert_in_order
from ferroq_sqlite.queries import sql
from ferroq_sqlite.unique import SqliteUnique, insert_unique

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable, Sequence

    from ferroq_core.records import EnqueueRequest

    #: How a dispatch's rows are inserted: (connection, requests) -> results in order.
    Insert = Callable[[sqlite3.Connection, Sequence[EnqueueRequest]], list[EnqueueResult]]

__all__ = ["insert_keyed", "insert_plain", "insert_requests", "with_result_ttls"]


def insert_requests(
    db: sqlite3.Connection, requests: Sequence[EnqueueRequest]
) -> list[EnqueueResult]:
    """Insert ``requests`` in the open write transaction; results in request order."""
    now = to_micros(utcnow())
    return enqueue_in_order(
        requests, lambda reqs: insert_plain(db, reqs), lambda req: insert_keyed(db, req, now)
    )


def _available_at(created: int, delay: float) -> int:
    return created + round(delay * 1_000_000) if delay else created


def insert_plain(db: sqlite3.Connection, reqs: Sequence[EnqueueRequest]) -> list[EnqueueResult]:
    """Insert jobs without idempotency keys; their ids are consecutive, in request order.

    One job is one ``insert_job_returning_id``. More go in with :func:`insert_in_order`
    (which returns no ids), then ``new_ids`` reads the ids above the largest id seen before:
    inside the write transaction every one of them is ours, and with AUTOINCREMENT they are
    consecutive, so their bounds and count (one row, not one per job) are the ids.

    :raises DatabaseError: the new ids are not exactly ours (another writer in the same
        transaction, such as a trigger); the caller's transaction must then roll back.
    """
    if not reqs:
        return []
    created = to_micros(utcnow())
    rows = [
        (
            r.queue,
            r.job_type,
            r.payload,
            r.priority,
            r.max_attempts,
            r.tenant_id,
            _available_at(created, r.delay),
            created,
            r.limit_key,
        )
        for r in reqs
    ]
    if len(rows) == 1:
        return [
            EnqueueResult(id=int(db.execute(sql("insert_job_returning_id"), rows[0]).fetchone()[0]))
        ]
    before = int(db.execute(sql("max_id")).fetchone()[0])
    insert_in_order(db, rows)
    first, last, count = db.execute(sql("new_ids"), (before,)).fetchone()
    if count != len(reqs) or last - first + 1 != count:
        raise DatabaseError(
            f"inserted {len(reqs)} jobs but found {count} new ids from {first} to {last}: "
            "another writer wrote inside this transaction; nothing was committed"
        )
    return [EnqueueResult(i) for i in range(first, last + 1)]


def insert_keyed(db: sqlite3.Connection, req: EnqueueRequest, now: int) -> EnqueueResult:
    """Insert a job with an idempotency key at ``now`` (epoch microseconds), or find the
    active job of its type that holds the key (:func:`~ferroq_core.storage.rules.settle_key`);
    one with a unique rule as :func:`~ferroq_sqlite.unique.insert_unique` says."""
    if req.unique is not None:
        return insert_unique(db, req, now)
    stmts = SqliteUnique(db, now)
    return settle_key(req, lambda: stmts.insert_keyed(req), lambda: stmts.key_holder(req))


def with_result_ttls(insert: Insert) -> Insert:
    """``insert``, then the ``result_ttl`` of each new row whose dispatch asked to store its
    result (:func:`~ferroq_core.storage.rules.result_ttls`), in the same write transaction:
    no worker can claim the row before it has it."""

    def run(db: sqlite3.Connection, requests: Sequence[EnqueueRequest]) -> list[EnqueueResult]:
        results = insert(db, requests)
        ids, ttls = result_ttls(requests, results)
        db.executemany(sql("set_result_ttl"), zip(ttls, ids, strict=True))
        return results

    return run
