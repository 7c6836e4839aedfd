"""Writing new jobs: one job in one round trip, a batch in one transaction, or inside the
caller's own transaction (transactional dispatch).

Outside a caller's transaction a single job is one autocommit statement that inserts and
notifies (``enqueue_one``), sent again only if it provably never reached the server. A batch
is one transaction: its jobs without idempotency keys go in as one array statement
(``insert_jobs``), each keyed job settles on its key
(:func:`~ferroq_core.storage.rules.settle_key`), and one ``notify_queues`` wakes the workers
of every queue when it commits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import psycopg

from ferroq_core.records import EnqueueResult
from ferroq_core.storage.connections import driver_connection
from ferroq_core.storage.rules import enqueue_in_order, result_ttls, settle_key
from ferroq_postgres.connections import fetch, rowcount
from ferroq_postgres.errors import is_disconnect, translate
from ferroq_postgres.params import bulk_params, job_params
from ferroq_postgres.unique import insert_new_keys, insert_unique
from ferroq_postgres.wait import notify_queues

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ferroq_core.records import EnqueueRequest
    from ferroq_postgres.connections import Connections

__all__ = ["SMALL_BATCH", "enqueue_in_caller", "enqueue_one", "insert_all"]

#: Up to this many jobs without keys, a batch inserts them one statement each; beyond, as
#: one ``insert_jobs`` array statement (the client's cost of each crosses at about two jobs:
#: docs/performance.md).
SMALL_BATCH = 1


def enqueue_one(connections: Connections, req: EnqueueRequest) -> EnqueueResult:
    """One job, outside a caller's transaction, in one round trip (one with a unique rule or
    a result to store in one transaction: :func:`insert_all`)."""
    if req.unique is not None or req.result_ttl is not None:
        return connections.transaction(lambda conn: insert_all(conn, [req], prepare=True))[0]
    params = job_params(req)
    if req.idempotency_key is None:
        [(new_id,)] = connections.rows_once("enqueue_one", params)
        return EnqueueResult(id=int(new_id))
    key = {"job_type": req.job_type, "idempotency_key": req.idempotency_key}

    def insert() -> Any:
        rows = connections.rows_once("enqueue_one_keyed", params)
        return rows[0][0] if rows else None

    def holder() -> Any:
        rows = connections.rows("key_holder", key)
        return rows[0][0] if rows else None

    return settle_key(req, insert, holder)


def insert_all(
    conn: psycopg.Connection[Any], requests: Sequence[EnqueueRequest], *, prepare: bool | None
) -> list[EnqueueResult]:
    """Insert ``requests`` inside the open transaction of ``conn`` and notify their queues on
    commit; results in request order."""

    def plain(reqs: list[EnqueueRequest]) -> list[EnqueueResult]:
        if len(reqs) > SMALL_BATCH:
            rows = fetch(conn, "insert_jobs", bulk_params(reqs), prepare=prepare)
            return [EnqueueResult(id=new_id) for new_id in sorted(int(row[0]) for row in rows)]
        return [
            EnqueueResult(id=int(fetch(conn, "insert_job", job_params(r), prepare=prepare)[0][0]))
            for r in reqs
        ]

    first = insert_new_keys(conn, requests, prepare=prepare)

    def keyed(req: EnqueueRequest) -> EnqueueResult:
        if req.unique is not None:
            new_id = first.pop(id(req), None)
            if new_id is not None:
                return EnqueueResult(new_id)
            return insert_unique(conn, req, prepare=prepare)
        params = job_params(req)
        key = {"job_type": req.job_type, "idempotency_key": req.idempotency_key}

        def insert() -> Any:
            rows = fetch(conn, "insert_job_keyed", params, prepare=prepare)
            return rows[0][0] if rows else None

        def holder() -> Any:
            rows = fetch(conn, "key_holder", key, prepare=prepare)
            return rows[0][0] if rows else None

        return settle_key(req, insert, holder)

    results = enqueue_in_order(requests, plain, keyed)
    if any(r.result_ttl is not None for r in requests):
        ids, ttls = result_ttls(requests, results)
        rowcount(conn, "set_result_ttls", {"ids": ids, "ttls": ttls})
    notify_queues(conn, {r.queue for r in requests}, prepare=prepare)
    return results


def enqueue_in_caller(connection: Any, requests: Sequence[EnqueueRequest]) -> list[EnqueueResult]:
    """Insert ``requests`` inside the open transaction of a caller's SQLAlchemy ``Connection``
    or ``Session``: they commit or roll back with the caller's rows, and the NOTIFY goes out
    only on commit. No retry: the transaction is the caller's.

    The statements are prepared as the caller's connection is set to (psycopg's threshold),
    not forced: the application may sit behind a pooler that cannot keep them.
    """
    caller, conn = driver_connection(connection, "postgresql")
    try:
        return insert_all(conn, requests, prepare=None)
    except psycopg.Error as exc:
        if is_disconnect(exc):
            # The session is gone and the transaction with it. Tell SQLAlchemy, so the
            # caller's rollback does not fail on the dead connection and hide this error,
            # and the pool drops it.
            caller.invalidate(exc)
        raise translate(exc) from exc
