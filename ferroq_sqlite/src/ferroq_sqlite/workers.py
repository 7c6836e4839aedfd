"""The worker registry and the workers' signals on SQLite (the host's clock, as integer
microseconds): registration, the heartbeat with the leases in one write transaction, the
listing and the reaper's removal of dead workers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ferroq_core.clock import from_micros, to_micros, utcnow
from ferroq_core.fleet import WorkerBeat
from ferroq_core.storage.registry_rules import (
    RESTART,
    held_jobs,
    registration_params,
    worker_from_row,
)
from ferroq_sqlite import controls
from ferroq_sqlite.queries import sql

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Collection, Sequence
    from datetime import datetime

    from ferroq_core.fleet import WorkerInfo, WorkerRegistration
    from ferroq_core.records import Lease

__all__ = [
    "beat",
    "deregister",
    "live",
    "read_signal",
    "reap",
    "register",
    "registered_beats",
    "send_signal",
]


def register(db: sqlite3.Connection, registration: WorkerRegistration) -> datetime:
    """Write the worker's row; return its start time."""
    now = utcnow()
    started = registration.started_at or now
    params = registration_params(registration)
    params.update(started_at=to_micros(started), now=to_micros(now))
    db.execute(sql("register_worker"), params)
    return from_micros(to_micros(started))


def beat(db: sqlite3.Connection, worker_id: str, leases_: Collection[Lease]) -> WorkerBeat:
    """The leases' heartbeat, the worker's, and the restart signal, in ``db``'s transaction."""
    # The leases' heartbeat is the one that also reports cancel requests (controls).
    reply = controls.heartbeat_cancels(db, leases_) if leases_ else None
    changed = db.execute(sql("beat_worker"), {"id": worker_id, "now": to_micros(utcnow())})
    return WorkerBeat(
        held=reply.held if reply else frozenset(),
        registered=changed.rowcount == 1,
        restart_at=read_signal(db),
        stop=reply.stop if reply else frozenset(),
    )


def deregister(db: sqlite3.Connection, worker_id: str) -> bool:
    return db.execute(sql("deregister_worker"), {"id": worker_id}).rowcount == 1


def _worker(row: Sequence[Any], jobs: dict[str, Any] | None = None) -> WorkerInfo:
    values = list(row)
    values[9], values[10] = from_micros(values[9]), from_micros(values[10])
    return worker_from_row(values, jobs)


def live(db: sqlite3.Connection) -> list[WorkerInfo]:
    """The live workers with the jobs each holds."""
    rows = db.execute(sql("live_workers"), {"now": to_micros(utcnow())}).fetchall()
    if not rows:
        return []
    claimed = db.execute(sql("held_jobs")).fetchall()
    jobs = held_jobs(
        (r[0], r[1], r[2], r[3], None if r[4] is None else from_micros(r[4])) for r in claimed
    )
    return [_worker(row, jobs) for row in rows]


def registered_beats(db: sqlite3.Connection) -> dict[str, datetime]:
    return {str(r[0]): from_micros(r[1]) for r in db.execute(sql("registered_beats"))}


def reap(db: sqlite3.Connection) -> list[WorkerInfo]:
    """Remove the workers silent for longer than their visibility timeout; return them."""
    rows = db.execute(sql("reap_workers"), {"now": to_micros(utcnow())}).fetchall()
    return [_worker(row) for row in rows]


def send_signal(db: sqlite3.Connection, name: str = RESTART) -> datetime:
    now = to_micros(utcnow())
    db.execute(sql("send_signal"), {"name": name, "now": now})
    return from_micros(now)


def read_signal(db: sqlite3.Connection, name: str = RESTART) -> datetime | None:
    row = db.execute(sql("read_signal"), {"name": name}).fetchone()
    return None if row is None else from_micros(row[0])
