"""Listings, counts and operator actions, and the testing kit's clock jump.

Optional filters are nullable parameters of one query each (see ``queries.sql``), run
unprepared so each is planned with its values. An action that makes jobs eligible notifies
their queues in its transaction; the backend then wakes this process's waiters too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ferroq_core.records import JobState, QueueStats, SingleQueueStats
from ferroq_core.storage.rules import job_from_row
from ferroq_postgres.connections import fetch, rowcount
from ferroq_postgres.params import state_params
from ferroq_postgres.wait import notify_queues

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence
    from datetime import datetime

    import psycopg

    from ferroq_core.records import JobRow
    from ferroq_postgres.connections import Connections

__all__ = [
    "clear_queue",
    "delete_jobs",
    "flush_failed",
    "get_job",
    "get_stats",
    "list_jobs",
    "make_due",
    "now",
    "retry_failed",
    "worker_heartbeats",
]

#: The listing query per state: each state has its own order.
_LISTING = {JobState.CLAIMED: "list_claimed_jobs", JobState.FAILED: "list_failed_jobs"}


def now(connections: Connections) -> datetime:
    """The database clock."""
    [(value,)] = connections.rows("now")
    return value  # type: ignore[no-any-return]


def get_job(connections: Connections, job_id: int) -> JobRow | None:
    rows = connections.rows("get_job", {"id": job_id}, prepare=False, shown=True)
    return job_from_row(rows[0]) if rows else None


def list_jobs(
    connections: Connections,
    *,
    state: JobState | None,
    queue: str | None,
    job_type: str | None,
    tenant_id: str | None,
    limit: int,
    offset: int,
    limit_key: str | None = None,
) -> list[JobRow]:
    params: dict[str, Any] = {
        "queue": queue,
        "job_type": job_type,
        "tenant_id": tenant_id,
        "limit_key": limit_key,
        "limit": max(0, limit),
        "offset": max(0, offset),
    }
    name = _LISTING.get(state) if state is not None else None
    if name is None:
        name = "list_jobs"
        params.update(state_params(state))
    rows = connections.rows(name, params, prepare=False, shown=True)
    return [job_from_row(row) for row in rows]


def get_stats(connections: Connections) -> QueueStats:
    out = []
    for queue, pending, delayed, claimed, failed, oldest, clock in connections.rows(
        "queue_stats", prepare=False, shown=True
    ):
        age = None if oldest is None else max(0.0, (clock - oldest).total_seconds())
        out.append(
            SingleQueueStats(
                queue=queue,
                pending=int(pending),
                delayed=int(delayed),
                claimed=int(claimed),
                failed=int(failed),
                oldest_pending_age=age,
            )
        )
    return QueueStats(queues=tuple(out))


def _moved(connections: Connections, name: str, params: dict[str, Any]) -> int:
    """Run an UPDATE that makes jobs eligible (it returns their queues), notify those queues
    in the same transaction, and return how many moved."""

    def run(conn: psycopg.Connection[Any]) -> int:
        rows = fetch(conn, name, params, prepare=False)
        notify_queues(conn, {str(row[0]) for row in rows})
        return len(rows)

    return connections.transaction(run)


def retry_failed(
    connections: Connections,
    ids: Collection[int] | None,
    *,
    queue: str | None,
    job_type: str | None,
) -> int:
    if ids is not None and not ids:
        return 0
    params = {
        "ids": None if ids is None else [int(i) for i in ids],
        "queue": queue,
        "job_type": job_type,
    }
    return _moved(connections, "retry_failed", params)


def make_due(connections: Connections, queues: Sequence[str] | None, within: float | None) -> int:
    if queues is not None and not queues:
        return 0
    params = {
        "queues": None if queues is None else list(queues),
        "within": None if within is None else float(within),
    }
    return _moved(connections, "make_due", params)


def _deleted(connections: Connections, name: str, params: dict[str, Any]) -> int:
    return connections.transaction(lambda conn: rowcount(conn, name, params))


def delete_jobs(connections: Connections, ids: Collection[int], state: JobState | None) -> int:
    if not ids:
        return 0
    params = dict(state_params(state), ids=[int(i) for i in ids])
    return _deleted(connections, "delete_jobs", params)


def flush_failed(connections: Connections, older_than: float | None) -> int:
    params = {"older_than": None if older_than is None else float(older_than)}
    return _deleted(connections, "flush_failed", params)


def clear_queue(connections: Connections, queue: str) -> int:
    return _deleted(connections, "clear_queue", {"queue": queue})


def worker_heartbeats(connections: Connections) -> dict[str, datetime]:
    rows = connections.rows("worker_heartbeats", prepare=False, shown=True)
    return {str(worker): last for worker, last in rows}
