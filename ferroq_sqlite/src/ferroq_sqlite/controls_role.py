"""The control role of :class:`~ferroq_sqlite.backend.SqliteBackend` (``ControlStore``):
pauses, cancel requests, and the workers' side of cancellations, as a mixin base of the
backend.

The statements are in :mod:`ferroq_sqlite.controls`; a resume also wakes this process's
waiters (idle workers of other processes see the commit through ``data_version``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ferroq_core.storage.controls import Beat
from ferroq_sqlite import controls

if TYPE_CHECKING:
    from collections.abc import Collection

    from ferroq_core.control_records import CancelResult, Pause, PauseScope
    from ferroq_core.records import JobRow, Lease
    from ferroq_sqlite.transactions import Transactions

__all__ = ["ControlRole"]


class ControlRole:
    """``ControlStore`` in the backend's transactions."""

    _tx: Transactions

    if TYPE_CHECKING:

        def wake(self) -> None: ...

    def pause(self, scope: PauseScope, name: str, *, reason: str | None = None) -> Pause | None:
        return self._tx.write(lambda db: controls.pause(db, scope, name, reason))

    def resume(self, scope: PauseScope, name: str) -> Pause | None:
        # Idle workers of this file see the commit through data_version; local ones now.
        removed = self._tx.write(lambda db: controls.resume(db, scope, name))
        self.wake()
        return removed

    def pauses(self) -> list[Pause]:
        return self._tx.read(controls.list_pauses)

    def cancel_jobs(
        self,
        ids: Collection[int] | None = None,
        *,
        queue: str | None = None,
        job_type: str | None = None,
    ) -> CancelResult:
        return self._tx.write(lambda db: controls.cancel_jobs(db, ids, queue, job_type))

    def heartbeat_cancels(self, leases_: Collection[Lease]) -> Beat:
        if not leases_:
            return Beat(held=frozenset())
        return self._tx.write(lambda db: controls.heartbeat_cancels(db, leases_))

    def finish_cancelled(self, lease: Lease) -> bool:
        return self._tx.write(lambda db: controls.finish_cancelled(db, lease))

    def sweep_cancelled(self, holders: Collection[str] = ()) -> list[JobRow]:
        return self._tx.write(lambda db: controls.sweep_cancelled(db, holders))
