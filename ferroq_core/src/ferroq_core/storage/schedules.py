"""The storage role of periodic jobs: :class:`ScheduleStore`, which
:class:`~ferroq_core.storage.protocol.Backend` includes.

Times are aware UTC datetimes; on a backend whose capabilities have ``database_clock`` the
caller takes "now" from :meth:`~ferroq_core.storage.protocol.WorkerStore.now`, so every
worker computes ticks against one clock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from ferroq_core.schedule_records import Schedule, ScheduleSpec

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from ferroq_core.records import EnqueueRequest, EnqueueResult
    from ferroq_core.schedule_records import ScheduleAdvance

__all__ = [
    "SCHEDULE_COLUMNS",
    "SaveOutcome",
    "ScheduleStore",
    "definition_params",
    "schedule_from_row",
]

#: What :meth:`ScheduleStore.save_schedule` did.
SaveOutcome = Literal["created", "updated", "unchanged", "exists"]

#: The order in which backends read a schedule's columns (:func:`schedule_from_row`).
SCHEDULE_COLUMNS = (
    "name",
    "job_type",
    "payload",
    "queue",
    "priority",
    "max_attempts",
    "cron",
    "timezone",
    "catch_up",
    "catch_up_window",
    "source",
    "paused",
    "next_run_at",
    "last_run_at",
    "last_job_id",
    "revision",
    "updated_at",
    "limit_key",
)


def schedule_from_row(row: Sequence[Any]) -> Schedule:
    """A row of :data:`SCHEDULE_COLUMNS` (timestamps already aware datetimes) as a record."""
    (name, job_type, payload, queue, priority, max_attempts, cron, tz, catch_up, window) = row[:10]
    (source, paused, next_run_at, last_run_at, last_job_id, revision, updated_at) = row[10:17]
    spec = ScheduleSpec(
        name=name,
        job_type=job_type,
        payload=payload,
        queue=queue,
        cron=cron,
        timezone=tz,
        catch_up=catch_up,
        catch_up_window=float(window),
        priority=int(priority),
        max_attempts=int(max_attempts),
        source=source,
        limit_key=row[17],
    )
    return Schedule(
        spec=spec,
        paused=bool(paused),
        next_run_at=next_run_at,
        last_run_at=last_run_at,
        last_job_id=None if last_job_id is None else int(last_job_id),
        revision=int(revision),
        updated_at=updated_at,
    )


def definition_params(spec: ScheduleSpec) -> dict[str, Any]:
    """A definition's columns by name, as the backends' ``schedule_insert`` and
    ``schedule_replace`` queries bind them (with ``next_run_at``)."""
    return {
        "name": spec.name,
        "job_type": spec.job_type,
        "payload": spec.payload,
        "queue": spec.queue,
        "priority": spec.priority,
        "max_attempts": spec.max_attempts,
        "cron": spec.cron,
        "timezone": spec.timezone,
        "catch_up": spec.catch_up,
        "catch_up_window": spec.catch_up_window,
        "source": spec.source,
        "limit_key": spec.limit_key,
    }


@runtime_checkable
class ScheduleStore(Protocol):
    """Schedules: what workers read and advance, what the API and the CLI edit."""

    def schedule_due_in(self) -> float | None:
        """Seconds until the earliest next run of an active schedule (zero or less: one is
        due), None when no schedule is active. One indexed read: a worker makes it often."""

    def due_schedules(self, now: datetime, limit: int) -> list[Schedule]:
        """Up to ``limit`` active schedules whose next run is at or before ``now``, the
        earliest first."""

    def advance_schedule(
        self, advance: ScheduleAdvance, requests: Sequence[EnqueueRequest]
    ) -> list[EnqueueResult] | None:
        """In one transaction: when the schedule still has ``advance.revision`` and
        ``advance.next_run_at`` and is active, move its next run to
        ``advance.new_next_run_at``, insert ``requests`` (each keyed by its tick), and record
        the newest tick and its job as the last run; return the insert results. Otherwise
        change nothing and return None (another worker or an edit came first)."""

    def save_schedule(
        self, spec: ScheduleSpec, next_run_at: datetime, *, replace: bool = True
    ) -> SaveOutcome:
        """Insert ``spec`` (next run ``next_run_at``), or, when a schedule of that name exists
        with another definition, replace it (``replace``: revision + 1, next run
        ``next_run_at`` unless paused; else ``exists``, nothing written). An equal definition
        is ``unchanged`` (its next run and pause kept), whatever ``replace`` says."""

    def get_schedule(self, name: str) -> Schedule | None:
        """One schedule by name, or None."""

    def list_schedules(self) -> list[Schedule]:
        """Every schedule, by name."""

    def pause_schedule(self, name: str, *, paused: bool, next_run_at: datetime | None) -> bool:
        """Pause (next run cleared) or resume (next run ``next_run_at``) a schedule; revision
        + 1 when that changes it. False when there is no such schedule."""

    def remove_schedule(self, name: str) -> bool:
        """Delete a schedule (its jobs already enqueued stay). False when there was none."""

    def record_schedule_run(
        self, name: str, at: datetime, request: EnqueueRequest
    ) -> EnqueueResult | None:
        """``run-now``: insert ``request`` and record ``at`` and its job as the last run, in
        one transaction; None (nothing inserted) when there is no such schedule."""
