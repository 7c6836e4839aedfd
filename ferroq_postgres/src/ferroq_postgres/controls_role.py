"""The control role of :class:`~ferroq_postgres.backend.PostgresBackend` (``ControlStore``):
pauses, cancel requests, and the workers' side of cancellations, as a mixin base of the
backend.

The statements are in :mod:`ferroq_postgres.controls`; a resume also wakes this process's
waiters, whether or not its listener is connected.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ferroq_postgres import controls

if TYPE_CHECKING:
    from collections.abc import Collection

    from ferroq_core.control_records import CancelResult, Pause, PauseScope
    from ferroq_core.records import JobRow, Lease
    from ferroq_core.storage.controls import Beat
    from ferroq_postgres.connections import Connections

__all__ = ["ControlRole"]


class ControlRole:
    """``ControlStore`` over the backend's connections (the workers' calls on theirs)."""

    _connections: Connections
    _worker_connections: Connections

    if TYPE_CHECKING:

        def wake(self) -> None: ...

    def pause(self, scope: PauseScope, name: str, *, reason: str | None = None) -> Pause | None:
        return controls.pause(self._connections, scope, name, reason)

    def resume(self, scope: PauseScope, name: str) -> Pause | None:
        removed = controls.resume(self._connections, scope, name)
        if removed is not None:
            self.wake()  # this process's waiters, whether or not its listener is connected
        return removed

    def pauses(self) -> list[Pause]:
        return controls.list_pauses(self._connections)

    def cancel_jobs(
        self,
        ids: Collection[int] | None = None,
        *,
        queue: str | None = None,
        job_type: str | None = None,
    ) -> CancelResult:
        return controls.cancel_jobs(self._connections, ids, queue, job_type)

    def heartbeat_cancels(self, leases_: Collection[Lease]) -> Beat:
        return controls.heartbeat_cancels(self._worker_connections, leases_)

    def finish_cancelled(self, lease: Lease) -> bool:
        return controls.finish_cancelled(self._worker_connections, lease)

    def sweep_cancelled(self, holders: Collection[str] = ()) -> list[JobRow]:
        return controls.sweep_cancelled(self._worker_connections, holders)
