"""The worker registry and the workers' signals on Postgres (the database clock):
registration, the heartbeat with the leases in one transaction, the listing and the reaper's
removal of dead workers.

A beat without leases is one autocommit statement (the worker's row and the restart signal
read back: ``beat_worker``); with leases it is that statement and the leases' ``heartbeat``
in one transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ferroq_core.fleet import WorkerBeat
from ferroq_core.storage.registry_rules import (
    RESTART,
    held_jobs,
    registration_params,
    worker_from_row,
)
from ferroq_postgres.connections import fetch
from ferroq_postgres.params import lease_params

if TYPE_CHECKING:
    from collections.abc import Collection
    from datetime import datetime

    import psycopg

    from ferroq_core.fleet import WorkerInfo, WorkerRegistration
    from ferroq_core.records import Lease
    from ferroq_postgres.connections import Connections, Row

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


def register(connections: Connections, registration: WorkerRegistration) -> datetime:
    """Write the worker's row (idempotent: replaces its own); return its start time."""
    [(started,)] = connections.rows("register_worker", registration_params(registration))
    return started  # type: ignore[no-any-return]


def _beat_row(row: Row, held: set[int], stop: frozenset[int] = frozenset()) -> WorkerBeat:
    return WorkerBeat(held=frozenset(held), registered=bool(row[0]), restart_at=row[1], stop=stop)


def beat(connections: Connections, worker_id: str, leases: Collection[Lease]) -> WorkerBeat:
    """The leases' heartbeat, the worker's, and the restart signal."""
    if not leases:
        [row] = connections.rows("beat_worker", {"id": worker_id})
        return _beat_row(row, set())
    params = lease_params(leases)

    def run(conn: psycopg.Connection[Any]) -> WorkerBeat:
        # The leases' heartbeat that also reports cancel requests (controls).
        rows = fetch(conn, "heartbeat_cancels", params)
        [row] = fetch(conn, "beat_worker", {"id": worker_id})
        stop = frozenset(int(r[0]) for r in rows if r[1])
        return _beat_row(row, {int(r[0]) for r in rows}, stop)

    return connections.transaction(run)


def deregister(connections: Connections, worker_id: str) -> bool:
    return bool(connections.rows("deregister_worker", {"id": worker_id}))


def live(connections: Connections) -> list[WorkerInfo]:
    """The live workers with the jobs each holds (one transaction: one snapshot)."""

    def run(conn: psycopg.Connection[Any]) -> list[WorkerInfo]:
        rows = fetch(conn, "live_workers")
        if not rows:
            return []
        jobs = held_jobs(fetch(conn, "held_jobs"))
        return [worker_from_row(row, jobs) for row in rows]

    return connections.transaction(run)


def registered_beats(connections: Connections) -> dict[str, datetime]:
    return {str(r[0]): r[1] for r in connections.rows("registered_beats")}


def reap(connections: Connections) -> list[WorkerInfo]:
    """Remove the workers silent for longer than their visibility timeout; return them."""
    return [worker_from_row(row) for row in connections.rows("reap_workers")]


def send_signal(connections: Connections, name: str = RESTART) -> datetime:
    [(sent,)] = connections.rows("send_signal", {"name": name})
    return sent  # type: ignore[no-any-return]


def read_signal(connections: Connections, name: str = RESTART) -> datetime | None:
    rows = connections.rows("read_signal", {"name": name})
    return rows[0][0] if rows else None
