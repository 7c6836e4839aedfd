"""The storage role of the worker registry and the workers' signals (``ferroq restart``).

Every worker registers itself at start, beats with its lease heartbeat (one transaction: the
leases, its row, the restart signal read back), deregisters on a clean exit; a row silent for
longer than its own visibility timeout is a dead worker's, hidden from listings and deleted by
the reaper. Times are the backend's clock (the database's where ``database_clock``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Collection
    from datetime import datetime

    from ferroq_core.fleet import WorkerBeat, WorkerInfo, WorkerRegistration
    from ferroq_core.records import Lease

__all__ = ["WorkerRegistry"]


@runtime_checkable
class WorkerRegistry(Protocol):
    """Live workers and the signals they read in their heartbeat."""

    def register_worker(self, registration: WorkerRegistration) -> datetime:
        """Write the worker's row (replacing one with its id), its heartbeat now and its
        start ``registration.started_at`` or now; return the start time stored."""

    def beat_worker(self, worker_id: str, leases: Collection[Lease]) -> WorkerBeat:
        """One heartbeat, in one transaction: extend ``leases`` as ``heartbeat`` does, set
        the worker's row's heartbeat to now, and read the restart signal."""

    def deregister_worker(self, worker_id: str) -> bool:
        """Delete the worker's row; True if there was one."""

    def list_workers(self) -> list[WorkerInfo]:
        """The live workers (a heartbeat within their own visibility timeout) by host, role,
        and id, each with the jobs it holds (claimed) by id."""

    def registered_heartbeats(self) -> dict[str, datetime]:
        """Every registered worker's last heartbeat, dead ones too until they are reaped
        (the reaper's dead-worker detection on its host)."""

    def reap_workers(self) -> list[WorkerInfo]:
        """Delete the rows of workers silent for longer than their own visibility timeout;
        return them (without jobs)."""

    def request_restart(self) -> datetime:
        """Set the restart signal to now; return it. Every worker started before it stops
        claiming, finishes its jobs and exits."""

    def restart_requested_at(self) -> datetime | None:
        """The latest restart signal, or None when none was ever sent."""
