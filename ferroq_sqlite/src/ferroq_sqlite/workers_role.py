"""The worker-registry role of :class:`~ferroq_sqlite.backend.SqliteBackend`
(``WorkerRegistry``): live workers, their beats and the restart signal, as a mixin base of the
backend.

The statements are in :mod:`ferroq_sqlite.workers`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ferroq_sqlite import workers

if TYPE_CHECKING:
    from collections.abc import Collection
    from datetime import datetime

    from ferroq_core.fleet import WorkerBeat, WorkerInfo, WorkerRegistration
    from ferroq_core.records import Lease
    from ferroq_sqlite.transactions import Transactions

__all__ = ["WorkerRegistryRole"]


class WorkerRegistryRole:
    """``WorkerRegistry`` in the backend's transactions."""

    _tx: Transactions

    def register_worker(self, registration: WorkerRegistration) -> datetime:
        return self._tx.write(lambda db: workers.register(db, registration))

    def beat_worker(self, worker_id: str, leases_: Collection[Lease]) -> WorkerBeat:
        return self._tx.write(lambda db: workers.beat(db, worker_id, leases_))

    def deregister_worker(self, worker_id: str) -> bool:
        return self._tx.write(lambda db: workers.deregister(db, worker_id))

    def list_workers(self) -> list[WorkerInfo]:
        return self._tx.read(workers.live)

    def registered_heartbeats(self) -> dict[str, datetime]:
        return self._tx.read(workers.registered_beats)

    def reap_workers(self) -> list[WorkerInfo]:
        return self._tx.write(workers.reap)

    def request_restart(self) -> datetime:
        return self._tx.write(workers.send_signal)

    def restart_requested_at(self) -> datetime | None:
        return self._tx.read(workers.read_signal)
