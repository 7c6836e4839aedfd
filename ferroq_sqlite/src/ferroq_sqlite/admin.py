"""Listings, counts and operator actions, and the testing kit's clock jump.

Optional filters are nullable parameters of one query each (``:queue IS NULL OR queue =
:queue``) and id lists are JSON arrays, so every call runs a named query as written; the
listing has one query per ordering.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ferroq_core.clock import from_micros, to_micros, utcnow
from ferroq_core.records import JobState, QueueStats, SingleQueueStats
from ferroq_sqlite.queries import sql
from ferroq_sqlite.rows import stored_row

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Collection, Sequence
    from datetime import datetime

    from ferroq_core.records import JobRow

__all__ = [
    "clear_queue",
    "delete_jobs",
    "flush_failed",
    "get_job",
    "list_jobs",
    "make_due",
    "queue_stats",
    "retry_failed",
    "worker_heartbeats",
]

#: The listing query for each state with an ordering of its own.
_LISTING = {JobState.CLAIMED: "list_claimed", JobState.FAILED: "list_failed"}


def _now() -> int:
    return to_micros(utcnow())


def get_job(db: sqlite3.Connection, job_id: int) -> JobRow | None:
    """One job by id, or None."""
    row = db.execute(sql("get_job"), (job_id,)).fetchone()
    return None if row is None else stored_row(row)


def list_jobs(
    db: sqlite3.Connection,
    *,
    state: JobState | None,
    queue: str | None,
    job_type: str | None,
    tenant_id: str | None,
    limit: int,
    offset: int,
    limit_key: str | None = None,
) -> list[JobRow]:
    """Jobs matching every given filter, in the order of their state's listing."""
    params: dict[str, Any] = {
        "state": None if state is None else state.value,
        "now": _now(),
        "queue": queue,
        "job_type": job_type,
        "tenant_id": tenant_id,
        "limit_key": limit_key,
        "limit": max(0, limit),
        "offset": max(0, offset),
    }
    name = "list_jobs" if state is None else _LISTING.get(state, "list_jobs")
    return [stored_row(r) for r in db.execute(sql(name), params).fetchall()]


def queue_stats(db: sqlite3.Connection) -> QueueStats:
    """Counts per queue, and the age of each queue's oldest due job."""
    now = _now()
    out = []
    for queue, pending, delayed, claimed, failed, oldest in db.execute(
        sql("queue_stats"), {"now": now}
    ).fetchall():
        out.append(
            SingleQueueStats(
                queue=queue,
                pending=int(pending or 0),
                delayed=int(delayed or 0),
                claimed=int(claimed or 0),
                failed=int(failed or 0),
                oldest_pending_age=None if oldest is None else max(0.0, (now - oldest) / 1e6),
            )
        )
    return QueueStats(queues=tuple(out))


def retry_failed(
    db: sqlite3.Connection,
    ids: Collection[int] | None,
    *,
    queue: str | None,
    job_type: str | None,
) -> int:
    """Return failed jobs to pending, attempts reset; return how many moved."""
    params = {
        "now": _now(),
        "ids": None if ids is None else json.dumps([int(i) for i in ids]),
        "queue": queue,
        "job_type": job_type,
    }
    return len(db.execute(sql("retry_failed"), params).fetchall())


def delete_jobs(db: sqlite3.Connection, ids: Collection[int], *, state: JobState | None) -> int:
    """Delete jobs by id (only in ``state`` when given); return how many."""
    params = {
        "ids": json.dumps([int(i) for i in ids]),
        "state": None if state is None else state.value,
        "now": _now(),
    }
    return int(db.execute(sql("delete_jobs"), params).rowcount)


def flush_failed(db: sqlite3.Connection, *, older_than: float | None) -> int:
    """Delete failed jobs (only those failed more than ``older_than`` seconds ago)."""
    before = None if older_than is None else to_micros(utcnow() - timedelta(seconds=older_than))
    return int(db.execute(sql("flush_failed"), {"before": before}).rowcount)


def clear_queue(db: sqlite3.Connection, queue: str) -> int:
    """Delete the pending (and delayed) jobs of ``queue``; return how many."""
    return int(db.execute(sql("clear_queue"), {"queue": queue}).rowcount)


def worker_heartbeats(db: sqlite3.Connection) -> dict[str, datetime]:
    """The latest heartbeat of every worker that holds claims."""
    rows = db.execute(sql("worker_heartbeats")).fetchall()
    return {str(owner): from_micros(last) for owner, last in rows if last is not None}


def make_due(db: sqlite3.Connection, queues: Sequence[str] | None, within: float | None) -> int:
    """Make delayed pending jobs of ``queues`` (None: all) due now, those due within
    ``within`` seconds (None: all); return how many."""
    now = utcnow()
    params = {
        "now": to_micros(now),
        "queues": None if queues is None else json.dumps(list(queues)),
        "until": None if within is None else to_micros(now + timedelta(seconds=within)),
    }
    return int(db.execute(sql("make_due"), params).rowcount)
