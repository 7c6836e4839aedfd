"""The schedules role of :class:`~ferroq_postgres.backend.PostgresBackend` (``ScheduleStore``):
periodic jobs' definitions, the workers' ticks and manual runs, as a mixin base of the backend.

The statements are in :mod:`ferroq_postgres.schedules`; the jobs a tick or a run inserts
notify their queues on commit, and this process's own waiters are woken when nobody here
hears that notification.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ferroq_postgres import schedules

if TYPE_CHECKING:
    from collections.abc import Sequence, Set
    from datetime import datetime

    from ferroq_core.records import EnqueueRequest, EnqueueResult
    from ferroq_core.schedule_records import Schedule, ScheduleAdvance, ScheduleSpec
    from ferroq_core.storage.schedules import SaveOutcome
    from ferroq_postgres.connections import Connections

__all__ = ["ScheduleRole"]


class ScheduleRole:
    """``ScheduleStore`` over the backend's connections (the workers' calls on theirs)."""

    _connections: Connections
    _worker_connections: Connections

    if TYPE_CHECKING:

        def _heard_own(self, queues: Set[str]) -> None: ...

    def schedule_due_in(self) -> float | None:
        return schedules.due_in(self._worker_connections)

    def due_schedules(self, now: datetime, limit: int) -> list[Schedule]:
        return schedules.due(self._worker_connections, now, limit)

    def advance_schedule(
        self, advance: ScheduleAdvance, requests: Sequence[EnqueueRequest]
    ) -> list[EnqueueResult] | None:
        results = schedules.advance(self._worker_connections, advance, requests)
        if results:
            self._heard_own({r.queue for r in requests})
        return results

    def save_schedule(
        self, spec: ScheduleSpec, next_run_at: datetime, *, replace: bool = True
    ) -> SaveOutcome:
        return schedules.save(self._connections, spec, next_run_at, replace=replace)

    def get_schedule(self, name: str) -> Schedule | None:
        return schedules.get(self._connections, name)

    def list_schedules(self) -> list[Schedule]:
        return schedules.list_all(self._connections)

    def pause_schedule(self, name: str, *, paused: bool, next_run_at: datetime | None) -> bool:
        return schedules.pause(self._connections, name, paused=paused, next_run_at=next_run_at)

    def remove_schedule(self, name: str) -> bool:
        return schedules.remove(self._connections, name)

    def record_schedule_run(
        self, name: str, at: datetime, request: EnqueueRequest
    ) -> EnqueueResult | None:
        result = schedules.record_run(self._connections, name, at, request)
        if result is not None:
            self._heard_own({request.queue})
        return result
