"""Pauses and cancel requests on SQLite (``ControlStore``), inside the backend's transactions.

Every write runs inside ``BEGIN IMMEDIATE``, so it is ordered against each claim: a pause that
committed is seen by every claim after it, and a cancel finds each job either pending (deleted)
or claimed (a request), never between the two.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ferroq_core.clock import from_micros, to_micros, utcnow
from ferroq_core.control_records import CancelResult, Pause
from ferroq_core.storage.controls import Beat
from ferroq_core.storage.rules import lease_groups
from ferroq_sqlite.queries import sql
from ferroq_sqlite.rows import stored_row

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Collection

    from ferroq_core.control_records import PauseScope
    from ferroq_core.records import JobRow, Lease

__all__ = [
    "cancel_jobs",
    "finish_cancelled",
    "heartbeat_cancels",
    "list_pauses",
    "pause",
    "resume",
    "sweep_cancelled",
]


def _pause(row: Any) -> Pause:
    return Pause(scope=row[0], name=row[1], paused_at=from_micros(row[2]), reason=row[3])


def pause(db: sqlite3.Connection, scope: PauseScope, name: str, reason: str | None) -> Pause | None:
    params = {"scope": scope.value, "name": name, "now": to_micros(utcnow()), "reason": reason}
    row = db.execute(sql("pause"), params).fetchone()
    return None if row is None else _pause(row)


def resume(db: sqlite3.Connection, scope: PauseScope, name: str) -> Pause | None:
    row = db.execute(sql("resume"), {"scope": scope.value, "name": name}).fetchone()
    return None if row is None else _pause(row)


def list_pauses(db: sqlite3.Connection) -> list[Pause]:
    return [_pause(row) for row in db.execute(sql("list_pauses")).fetchall()]


def cancel_jobs(
    db: sqlite3.Connection,
    ids: Collection[int] | None,
    queue: str | None,
    job_type: str | None,
) -> CancelResult:
    params = {
        "ids": None if ids is None else json.dumps(sorted(set(ids))),
        "queue": queue,
        "job_type": job_type,
        "now": to_micros(utcnow()),
    }
    removed = db.execute(sql("cancel_pending"), params).fetchall()
    requested = db.execute(sql("cancel_running"), params).fetchall()
    return CancelResult(
        removed=tuple(sorted((stored_row(r) for r in removed), key=lambda r: r.id)),
        requested=tuple(sorted(int(r[0]) for r in requested)),
    )


def heartbeat_cancels(db: sqlite3.Connection, leases: Collection[Lease]) -> Beat:
    now = to_micros(utcnow())
    held: set[int] = set()
    stop: set[int] = set()
    for group in lease_groups(leases):
        params = (group.owner, json.dumps(group.ids), group.attempts, now)
        for job_id, asked in db.execute(sql("heartbeat_cancels"), params).fetchall():
            held.add(job_id)
            if asked:
                stop.add(job_id)
    return Beat(held=frozenset(held), stop=frozenset(stop))


def finish_cancelled(db: sqlite3.Connection, lease: Lease) -> bool:
    params = {"id": lease.id, "owner": lease.claimed_by, "attempts": lease.attempts}
    matched = db.execute(sql("finish_cancelled"), params).rowcount == 1
    if matched:
        db.execute(sql("drop_cancellation"), {"id": lease.id})
    return matched


def sweep_cancelled(db: sqlite3.Connection, holders: Collection[str]) -> list[JobRow]:
    rows = db.execute(sql("sweep_cancelled"), {"holders": json.dumps(sorted(holders))}).fetchall()
    db.execute(sql("sweep_cancellations"))
    return sorted((stored_row(r) for r in rows), key=lambda r: r.id)
