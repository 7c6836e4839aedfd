"""Schedules (periodic jobs) on SQLite: the statements of
:class:`~ferroq_core.storage.schedules.ScheduleStore`, each run inside the transaction the
backend opened (a write transaction holds the write lock, so a compare-and-set and the ticks'
inserts are one atomic step)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ferroq_core.clock import to_micros, utcnow
from ferroq_core.storage.schedules import definition_params, schedule_from_row
from ferroq_sqlite.dispatch import insert_requests
from ferroq_sqlite.queries import sql
from ferroq_sqlite.rows import optional_time

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Sequence
    from datetime import datetime

    from ferroq_core.records import EnqueueRequest, EnqueueResult
    from ferroq_core.schedule_records import Schedule, ScheduleAdvance, ScheduleSpec
    from ferroq_core.storage.schedules import SaveOutcome

__all__ = [
    "advance",
    "due",
    "due_in",
    "get",
    "list_all",
    "pause",
    "record_run",
    "remove",
    "save",
]

#: Positions of the timestamps in a row of SCHEDULE_COLUMNS.
_TIMES = (12, 13, 16)


def _schedule(row: Sequence[Any]) -> Schedule:
    values = list(row)
    for i in _TIMES:
        values[i] = optional_time(values[i])
    return schedule_from_row(values)


def _micros(value: datetime | None) -> int | None:
    return None if value is None else to_micros(value)


def due_in(db: sqlite3.Connection) -> float | None:
    earliest = db.execute(sql("schedule_earliest")).fetchone()[0]
    if earliest is None:
        return None
    return (int(earliest) - to_micros(utcnow())) / 1e6


def due(db: sqlite3.Connection, now: datetime, limit: int) -> list[Schedule]:
    rows = db.execute(sql("schedules_due"), {"now": to_micros(now), "limit": limit})
    return [_schedule(r) for r in rows.fetchall()]


def advance(
    db: sqlite3.Connection, step: ScheduleAdvance, requests: Sequence[EnqueueRequest]
) -> list[EnqueueResult] | None:
    params = {
        "new_next_run_at": to_micros(step.new_next_run_at),
        "last_run_at": _micros(step.ticks[-1] if step.ticks else None),
        "name": step.name,
        "revision": step.revision,
        "next_run_at": to_micros(step.next_run_at),
    }
    if db.execute(sql("schedule_advance"), params).rowcount != 1:
        return None
    results = insert_requests(db, requests) if requests else []
    if results:
        last = {"name": step.name, "job_id": results[-1].id, "at": params["last_run_at"]}
        db.execute(sql("schedule_last_job"), last)
    return results


def _definition(spec: ScheduleSpec, next_run_at: datetime) -> dict[str, Any]:
    now = to_micros(utcnow())
    return {**definition_params(spec), "next_run_at": to_micros(next_run_at), "now": now}


def save(
    db: sqlite3.Connection, spec: ScheduleSpec, next_run_at: datetime, *, replace: bool
) -> SaveOutcome:
    found = get(db, spec.name)
    if found is None:
        db.execute(sql("schedule_insert"), _definition(spec, next_run_at))
        return "created"
    if found.spec.same_definition(spec):
        return "unchanged"
    if not replace:
        return "exists"
    db.execute(sql("schedule_replace"), _definition(spec, next_run_at))
    return "updated"


def get(db: sqlite3.Connection, name: str) -> Schedule | None:
    row = db.execute(sql("schedule_get"), {"name": name}).fetchone()
    return None if row is None else _schedule(row)


def list_all(db: sqlite3.Connection) -> list[Schedule]:
    return [_schedule(r) for r in db.execute(sql("schedules_all")).fetchall()]


def pause(db: sqlite3.Connection, name: str, *, paused: bool, next_run_at: datetime | None) -> bool:
    params = {
        "name": name,
        "paused": int(paused),
        "next_run_at": _micros(next_run_at),
        "now": to_micros(utcnow()),
    }
    db.execute(sql("schedule_pause"), params)
    return bool(db.execute(sql("schedule_exists"), {"name": name}).fetchone()[0])


def remove(db: sqlite3.Connection, name: str) -> bool:
    return db.execute(sql("schedule_delete"), {"name": name}).rowcount == 1


def record_run(
    db: sqlite3.Connection, name: str, at: datetime, request: EnqueueRequest
) -> EnqueueResult | None:
    if not db.execute(sql("schedule_exists"), {"name": name}).fetchone()[0]:
        return None
    (result,) = insert_requests(db, [request])
    db.execute(sql("schedule_last_job"), {"name": name, "job_id": result.id, "at": to_micros(at)})
    return result
