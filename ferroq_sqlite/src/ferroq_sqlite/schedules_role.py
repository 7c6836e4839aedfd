"""The schedules role of :class:`~ferroq_sqlite.backend.SqliteBackend` (``ScheduleStore``):
periodic jobs' definitions, the workers' ticks and manual runs, as a mixin base of the backend.

The statements are in :mod:`ferroq_sqlite.schedules`; a tick or a run that inserted jobs wakes
this process's waiters (other processes see the commit through ``data_version``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ferroq_sqlite import schedules

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from ferroq_core.records import EnqueueRequest, EnqueueResult
    from ferroq_core.schedule_records import Schedule, ScheduleAdvance, ScheduleSpec
    from ferroq_core.storage.schedules import SaveOutcome
    from ferroq_sqlite.transactions import Transactions

__all__ = ["ScheduleRole"]


class ScheduleRole:
    """``ScheduleStore`` in the backend's transactions."""

    _tx: Transactions

    if TYPE_CHECKING:

        def wake(self) -> None: ...

    def schedule_due_in(self) -> float | None:
        return self._tx.read(schedules.due_in)

    def due_schedules(self, now: datetime, limit: int) -> list[Schedule]:
        return self._tx.read(lambda db: schedules.due(db, now, limit))

    def advance_schedule(
        self, advance: ScheduleAdvance, requests: Sequence[EnqueueRequest]
    ) -> list[EnqueueResult] | None:
        results = self._tx.write(lambda db: schedules.advance(db, advance, requests))
        if results:
            self.wake()
        return results

    def save_schedule(
        self, spec: ScheduleSpec, next_run_at: datetime, *, replace: bool = True
    ) -> SaveOutcome:
        return self._tx.write(lambda db: schedules.save(db, spec, next_run_at, replace=replace))

    def get_schedule(self, name: str) -> Schedule | None:
        return self._tx.read(lambda db: schedules.get(db, name))

    def list_schedules(self) -> list[Schedule]:
        return self._tx.read(schedules.list_all)

    def pause_schedule(self, name: str, *, paused: bool, next_run_at: datetime | None) -> bool:
        return self._tx.write(
            lambda db: schedules.pause(db, name, paused=paused, next_run_at=next_run_at)
        )

    def remove_schedule(self, name: str) -> bool:
        return self._tx.write(lambda db: schedules.remove(db, name))

    def record_schedule_run(
        self, name: str, at: datetime, request: EnqueueRequest
    ) -> EnqueueResult | None:
        result = self._tx.write(lambda db: schedules.record_run(db, name, at, request))
        self.wake()
        return result
