"""Schedules (periodic jobs) on PostgreSQL: the statements of
:class:`~ferroq_core.storage.schedules.ScheduleStore`. A worker's compare-and-set and its
ticks' inserts run in one transaction; the inserts notify the ticks' queues on commit."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ferroq_core.storage.schedules import definition_params, schedule_from_row
from ferroq_postgres.connections import fetch, rowcount
from ferroq_postgres.dispatch import insert_all

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    import psycopg

    from ferroq_core.records import EnqueueRequest, EnqueueResult
    from ferroq_core.schedule_records import Schedule, ScheduleAdvance, ScheduleSpec
    from ferroq_core.storage.schedules import SaveOutcome
    from ferroq_postgres.connections import Connections

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


def due_in(connections: Connections) -> float | None:
    [(seconds,)] = connections.rows("schedule_due_in")
    return None if seconds is None else float(seconds)


def due(connections: Connections, now: datetime, limit: int) -> list[Schedule]:
    rows = connections.rows("schedules_due", {"now": now, "limit": limit})
    return [schedule_from_row(r) for r in rows]


def advance(
    connections: Connections, step: ScheduleAdvance, requests: Sequence[EnqueueRequest]
) -> list[EnqueueResult] | None:
    params = {
        "new_next_run_at": step.new_next_run_at,
        "last_run_at": step.ticks[-1] if step.ticks else None,
        "name": step.name,
        "revision": step.revision,
        "next_run_at": step.next_run_at,
    }

    def work(conn: psycopg.Connection[Any]) -> list[EnqueueResult] | None:
        if not fetch(conn, "schedule_advance", params):
            return None
        if not requests:
            return []
        results = insert_all(conn, requests, prepare=True)
        last = {"name": step.name, "job_id": results[-1].id, "at": params["last_run_at"]}
        rowcount(conn, "schedule_last_job", last)
        return results

    return connections.transaction(work)


def _definition(spec: ScheduleSpec, next_run_at: datetime) -> dict[str, Any]:
    return {**definition_params(spec), "next_run_at": next_run_at}


def save(
    connections: Connections, spec: ScheduleSpec, next_run_at: datetime, *, replace: bool
) -> SaveOutcome:
    params = _definition(spec, next_run_at)

    def work(conn: psycopg.Connection[Any]) -> SaveOutcome:
        while True:
            found = fetch(conn, "schedule_get", {"name": spec.name}, prepare=False)
            if not found:
                if fetch(conn, "schedule_insert", params, prepare=False):
                    return "created"
                continue  # another process inserted it meanwhile: compare with that one
            if schedule_from_row(found[0]).spec.same_definition(spec):
                return "unchanged"
            if not replace:
                return "exists"
            rowcount(conn, "schedule_replace", params)
            return "updated"

    return connections.transaction(work)


def get(connections: Connections, name: str) -> Schedule | None:
    rows = connections.rows("schedule_get", {"name": name}, prepare=False)
    return schedule_from_row(rows[0]) if rows else None


def list_all(connections: Connections) -> list[Schedule]:
    return [schedule_from_row(r) for r in connections.rows("schedules_all", prepare=False)]


def pause(
    connections: Connections, name: str, *, paused: bool, next_run_at: datetime | None
) -> bool:
    params = {"name": name, "paused": int(paused), "next_run_at": next_run_at}

    def work(conn: psycopg.Connection[Any]) -> bool:
        rowcount(conn, "schedule_pause", params)
        return bool(fetch(conn, "schedule_exists", {"name": name}, prepare=False))

    return connections.transaction(work)


def remove(connections: Connections, name: str) -> bool:
    return bool(
        connections.transaction(lambda conn: fetch(conn, "schedule_delete", {"name": name}))
    )


def record_run(
    connections: Connections, name: str, at: datetime, request: EnqueueRequest
) -> EnqueueResult | None:
    def work(conn: psycopg.Connection[Any]) -> EnqueueResult | None:
        if not fetch(conn, "schedule_exists", {"name": name}, prepare=False):
            return None
        (result,) = insert_all(conn, [request], prepare=False)
        rowcount(conn, "schedule_last_job", {"name": name, "job_id": result.id, "at": at})
        return result

    return connections.transaction(work)
