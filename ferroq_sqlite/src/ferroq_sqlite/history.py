"""History, attempt errors and progress on SQLite (:class:`~ferroq_core.storage.history.
HistoryStore`): the statements' parameters and rows; the backend runs them in its
transactions."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ferroq_core.clock import from_micros, to_micros, utcnow
from ferroq_core.history_records import AttemptError, HistoryRecord, Progress
from ferroq_core.storage.rules import LeaseGroup, lease_groups
from ferroq_sqlite.queries import sql
from ferroq_sqlite.rows import optional_time

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Collection, Mapping, Sequence

    from ferroq_core.history_records import Completion

__all__ = [
    "attempt_errors",
    "complete_with_history",
    "get_history",
    "get_progress",
    "list_history",
    "prune",
    "record_params",
    "write_progress",
]


def record_params(
    completions: Collection[Completion], now: int
) -> list[tuple[dict[str, Any], LeaseGroup]]:
    """The parameters of ``history_record`` for ``completions`` at ``now`` (epoch us): one
    statement per (owner, attempts) group, with the group."""
    durations = {c.lease.id: c.duration for c in completions}
    return [
        (
            {
                "done": json.dumps([[i, durations[i]] for i in group.ids]),
                "owner": group.owner,
                "attempts": group.attempts,
                "now": now,
            },
            group,
        )
        for group in lease_groups(c.lease for c in completions)
    ]


def complete_with_history(db: sqlite3.Connection, completions: Collection[Completion]) -> set[int]:
    """Record then delete the jobs whose lease still matches, per (owner, attempts) group;
    return their ids. As ``leases.complete``: on a shortfall the acknowledgement is rolled
    back to its savepoint and done again, returning which matched."""
    groups = [
        (record, (group.owner, json.dumps(group.ids), group.attempts), len(group.ids))
        for record, group in record_params(completions, to_micros(utcnow()))
    ]
    db.execute(sql("savepoint_ack"))
    for record, fence, count in groups:
        db.execute(sql("history_record"), record)
        if db.execute(sql("complete"), fence).rowcount != count:
            db.execute(sql("rollback_to_ack"))
            matched: set[int] = set()
            for again, again_fence, _count in groups:
                db.execute(sql("history_record"), again)
                rows = db.execute(sql("complete_returning"), again_fence).fetchall()
                matched.update(r[0] for r in rows)
            return matched
    return {c.lease.id for c in completions}


def write_progress(db: sqlite3.Connection, updates: Mapping[int, Progress]) -> None:
    now = to_micros(utcnow())
    db.executemany(
        sql("write_progress"),
        [
            {"job_id": job_id, "fraction": p.fraction, "message": p.message, "now": now}
            for job_id, p in updates.items()
        ],
    )


def get_progress(db: sqlite3.Connection, ids: Collection[int]) -> dict[int, Progress]:
    rows = db.execute(sql("get_progress"), {"ids": json.dumps(list(ids))}).fetchall()
    return {int(r[0]): Progress(r[1], r[2], from_micros(r[3])) for r in rows}


def _record(row: Sequence[Any]) -> HistoryRecord:
    return HistoryRecord(
        job_id=int(row[0]),
        queue=row[1],
        job_type=row[2],
        tenant_id=row[3],
        priority=int(row[4]),
        attempts=int(row[5]),
        max_attempts=int(row[6]),
        created_at=from_micros(row[7]),
        claimed_at=optional_time(row[8]),
        finished_at=from_micros(row[9]),
        duration=float(row[10]),
        worker=row[11],
    )


def get_history(db: sqlite3.Connection, job_id: int) -> HistoryRecord | None:
    row = db.execute(sql("get_history"), {"job_id": job_id}).fetchone()
    return None if row is None else _record(row)


def list_history(db: sqlite3.Connection, **filters: Any) -> list[HistoryRecord]:
    return [_record(r) for r in db.execute(sql("list_history"), filters).fetchall()]


def attempt_errors(db: sqlite3.Connection, job_id: int) -> list[AttemptError]:
    rows = db.execute(sql("attempt_errors"), {"job_id": job_id}).fetchall()
    return [AttemptError(int(r[0]), int(r[1]), r[2], r[3], from_micros(r[4])) for r in rows]


def prune(db: sqlite3.Connection, older_than: float, limit: int) -> int:
    """One batch of each kind (see ``HistoryStore.prune_history``); how many were deleted."""
    params = {"cutoff": to_micros(utcnow() - timedelta(seconds=older_than)), "limit": limit}
    return sum(
        int(db.execute(sql(name), params).rowcount)
        for name in ("prune_history", "prune_errors", "prune_progress")
    )
