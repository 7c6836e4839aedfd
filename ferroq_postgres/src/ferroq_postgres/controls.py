"""Pauses and cancel requests on Postgres (``ControlStore``).

A pause needs no notification: the claim reads ``ferroq_pauses`` itself, so the first claim
after the commit, on any host, skips what it covers. A resume notifies the queues it held back
so idle workers look at once. A cancel is two statements in one transaction (see the
``cancel_running`` query for why not one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ferroq_core.control_records import CancelResult, Pause
from ferroq_core.storage.controls import Beat
from ferroq_core.storage.rules import job_from_row
from ferroq_postgres.connections import fetch, rowcount
from ferroq_postgres.params import CHANNEL, RESULTS_CHANNEL, fence_params, lease_params
from ferroq_postgres.wait import notify_ended

if TYPE_CHECKING:
    from collections.abc import Collection

    import psycopg

    from ferroq_core.control_records import PauseScope
    from ferroq_core.records import JobRow, Lease
    from ferroq_postgres.connections import Connections, Row

__all__ = [
    "cancel_jobs",
    "finish_cancelled",
    "heartbeat_cancels",
    "list_pauses",
    "pause",
    "resume",
    "sweep_cancelled",
]


def _pause(row: Row) -> Pause:
    return Pause(scope=row[0], name=row[1], paused_at=row[2], reason=row[3])


def pause(
    connections: Connections, scope: PauseScope, name: str, reason: str | None
) -> Pause | None:
    params = {"scope": scope.value, "name": name, "reason": reason}
    rows = connections.transaction(lambda conn: fetch(conn, "pause", params, prepare=False))
    return _pause(rows[0]) if rows else None


def resume(connections: Connections, scope: PauseScope, name: str) -> Pause | None:
    params = {"scope": scope.value, "name": name, "channel": CHANNEL}

    def run(conn: psycopg.Connection[Any]) -> list[Row]:
        rows = fetch(conn, "resume", params, prepare=False)
        if rows:
            fetch(conn, "notify_resumed", params, prepare=False)
        return rows

    rows = connections.transaction(run)
    return _pause(rows[0]) if rows else None


def list_pauses(connections: Connections) -> list[Pause]:
    return [_pause(row) for row in connections.rows("list_pauses")]


def cancel_jobs(
    connections: Connections,
    ids: Collection[int] | None,
    queue: str | None,
    job_type: str | None,
) -> CancelResult:
    params = {
        "ids": None if ids is None else sorted(set(ids)),
        "queue": queue,
        "job_type": job_type,
    }

    def run(conn: psycopg.Connection[Any]) -> tuple[list[Row], list[Row]]:
        removed = fetch(conn, "cancel_pending", params, prepare=False)
        requested = fetch(conn, "cancel_running", params, prepare=False)
        notify_ended(conn, (int(r[0]) for r in removed))
        return removed, requested

    removed, requested = connections.transaction(run)
    return CancelResult(
        removed=tuple(sorted((job_from_row(r) for r in removed), key=lambda r: r.id)),
        requested=tuple(sorted(int(r[0]) for r in requested)),
    )


def heartbeat_cancels(connections: Connections, leases: Collection[Lease]) -> Beat:
    if not leases:
        return Beat(held=frozenset())
    rows = connections.rows_once("heartbeat_cancels", lease_params(leases))
    return Beat(
        held=frozenset(int(r[0]) for r in rows),
        stop=frozenset(int(r[0]) for r in rows if r[1]),
    )


def finish_cancelled(connections: Connections, lease: Lease) -> bool:
    params = fence_params(lease)
    params["results"] = RESULTS_CHANNEL
    return bool(connections.rows_once("finish_cancelled", params))


def sweep_cancelled(connections: Connections, holders: Collection[str]) -> list[JobRow]:
    def run(conn: psycopg.Connection[Any]) -> list[Row]:
        rows = fetch(conn, "sweep_cancelled", {"holders": sorted(holders)})
        rowcount(conn, "sweep_cancellations", {})
        notify_ended(conn, (int(r[0]) for r in rows))
        return rows

    rows = connections.transaction(run)
    return sorted((job_from_row(r) for r in rows), key=lambda r: r.id)
