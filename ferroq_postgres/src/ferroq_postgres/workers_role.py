"""The worker-registry role of :class:`~ferroq_postgres.backend.PostgresBackend`
(``WorkerRegistry``): live workers, their beats and the restart signal, as a mixin base of the
backend.

The statements are in :mod:`ferroq_postgres.workers`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ferroq_postgres import workers

if TYPE_CHECKING:
    from collections.abc import Collection
    from datetime import datetime

    from ferroq_core.fleet import WorkerBeat, WorkerInfo, WorkerRegistration
    from ferroq_core.records import Lease
    from ferroq_postgres.connections import Connections

__all__ = ["WorkerRegistryRole"]


class WorkerRegistryRole:
    """``WorkerRegistry`` over the backend's connections (the workers' calls on theirs)."""

    _connections: Connections
    _worker_connections: Connections

    def register_worker(self, registration: WorkerRegistration) -> datetime:
        return workers.register(self._connections, registration)

    def beat_worker(self, worker_id: str, leases_: Collection[Lease]) -> WorkerBeat:
        return workers.beat(self._worker_connections, worker_id, leases_)

    def deregister_worker(self, worker_id: str) -> bool:
        return workers.deregister(self._connections, worker_id)

    def list_workers(self) -> list[WorkerInfo]:
        return workers.live(self._connections)

    def registered_heartbeats(self) -> dict[str, datetime]:
        return workers.registered_beats(self._connections)

    def reap_workers(self) -> list[WorkerInfo]:
        return workers.reap(self._worker_connections)

    def request_restart(self) -> datetime:
        return workers.send_signal(self._connections)

    def restart_requested_at(self) -> datetime | None:
        return workers.read_signal(self._connections)
