"""What a running job knows about itself: :func:`current_job` inside ``handle()``.

A worker (and ``drain()``, ``run_job()`` and sync mode) sets the context before it calls a
handler, in the job's own :class:`contextvars.Context`, so a sync handler on a job thread and an
``async def`` one on the event loop each see their own job, and nothing outside a job sees one.
"""

from __future__ import annotations

import contextvars
import time
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import attrs

from ferroq_core.clock import utcnow
from ferroq_core.errors import JobCancelled, NoCurrentJob

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ferroq_core.records import EnqueueRequest, JobRow

__all__ = [
    "CurrentJob",
    "StopSignal",
    "attempt_context",
    "current_job",
    "enter_job",
    "inline_context",
    "running_job",
]


class StopSignal:
    """Set by a worker when the job running under it is asked to stop (``ferroq cancel``).

    A plain attribute, not a lock: one thread sets it, the handler's thread reads it.
    """

    __slots__ = ("requested",)

    def __init__(self) -> None:
        #: True once a cancel request for this job reached its worker.
        self.requested = False

    def is_set(self) -> bool:
        return self.requested


#: The signal of a job no worker can ask to stop (``drain()``, ``run_job()``, sync mode).
NEVER_STOPPED = StopSignal()


@attrs.frozen
class CurrentJob:
    """The job that is running: read with :func:`current_job` inside ``handle()``."""

    #: The job's id (0 in sync mode, where no row is written).
    id: int
    #: Its registered type name.
    job_type: str
    queue: str
    #: This attempt, 1-based: 1 on the first run, 2 on the first retry, ...
    attempt: int
    max_attempts: int
    priority: int
    tenant_id: str | None
    #: When it was dispatched, and when it was (or became) due.
    enqueued_at: datetime | None
    available_at: datetime | None
    #: When this attempt was claimed (the database's clock where it keeps the time).
    claimed_at: datetime | None
    #: The timeout this attempt runs under (seconds), None for none.
    timeout: float | None
    #: When the timeout ends this attempt (UTC), None without a timeout.
    deadline: datetime | None
    #: For a job a schedule enqueued: the tick it was enqueued for; else None.
    tick: datetime | None = None
    #: ``time.monotonic()`` when the handler started (for :meth:`time_left`).
    started: float = attrs.field(factory=time.monotonic, repr=False)
    #: Set by the worker when the job is cancelled while it runs (see :meth:`should_stop`).
    stop: StopSignal = attrs.field(default=NEVER_STOPPED, repr=False, eq=False)

    @property
    def is_last_attempt(self) -> bool:
        """True when a failure of this attempt parks the job as failed."""
        return self.attempt >= self.max_attempts

    def should_stop(self) -> bool:
        """True once the job was cancelled while it runs (``ferroq cancel``,
        ``Queue.cancel()``): a long sync handler checks it between steps and returns or
        raises :class:`~ferroq_core.JobCancelled` (see :meth:`raise_if_cancelled`). The
        worker learns of a cancel at its next heartbeat. Either way the job is removed as
        cancelled, not retried."""
        return self.stop.requested

    def raise_if_cancelled(self) -> None:
        """Raise :class:`~ferroq_core.JobCancelled` when :meth:`should_stop` is True; a
        handler calls it between steps (and ``heartbeat()`` calls it)."""
        if self.stop.requested:
            raise JobCancelled(f"job {self.id} ({self.job_type}) was cancelled while running")

    def time_left(self) -> float | None:
        """Seconds until the timeout ends this attempt (never below 0), None without one."""
        if self.timeout is None:
            return None
        return max(0.0, self.started + self.timeout - time.monotonic())


_CURRENT: contextvars.ContextVar[CurrentJob] = contextvars.ContextVar("ferroq_current_job")


def current_job() -> CurrentJob:
    """The job running in this context.

    :raises NoCurrentJob: called outside a job's ``handle()`` (or ``failed()``).
    """
    try:
        return _CURRENT.get()
    except LookupError:
        raise NoCurrentJob() from None


def attempt_context(
    row: JobRow,
    *,
    timeout: float | None,
    tick: datetime | None = None,
    stop: StopSignal = NEVER_STOPPED,
) -> CurrentJob:
    """The context of an attempt of ``row`` starting now, under ``timeout`` seconds; ``stop``
    is what its worker sets to ask it to stop."""
    deadline = None if timeout is None else utcnow() + timedelta(seconds=timeout)
    return CurrentJob(
        id=row.id,
        job_type=row.job_type,
        queue=row.queue,
        attempt=row.attempts,
        max_attempts=row.max_attempts,
        priority=row.priority,
        tenant_id=row.tenant_id,
        enqueued_at=row.created_at,
        available_at=row.available_at,
        claimed_at=row.claimed_at,
        timeout=timeout,
        deadline=deadline,
        tick=tick,
        stop=stop,
    )


def enter_job(context: CurrentJob) -> None:
    """Make ``context`` the current job of the running :class:`contextvars.Context`.

    Called at the start of a job's own context (:func:`~ferroq_core.execution.in_own_context`
    or its asyncio task), which ends with the job, so there is nothing to reset."""
    _CURRENT.set(context)


@contextmanager
def running_job(context: CurrentJob) -> Iterator[CurrentJob]:
    """``context`` as the current job inside the block, the previous one (or none) after it:
    for a job run in its caller's context (sync mode)."""
    token = _CURRENT.set(context)
    try:
        yield context
    finally:
        _CURRENT.reset(token)


def inline_context(request: EnqueueRequest) -> CurrentJob:
    """The context of a job that sync mode runs in its caller: id 0, first and only attempt."""
    now = utcnow()
    return CurrentJob(
        id=0,
        job_type=request.job_type,
        queue=request.queue,
        attempt=1,
        max_attempts=1,
        priority=request.priority,
        tenant_id=request.tenant_id,
        enqueued_at=now,
        available_at=now,
        claimed_at=now,
        timeout=None,
        deadline=None,
    )
