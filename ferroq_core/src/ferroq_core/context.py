"""What a running job knows about itself and can ask for: :func:`current_job` inside
``handle()`` (or ``handle(self, ctx)``).

A worker (and ``drain()``, ``run_job()`` and sync mode) sets the context before it calls a
handler, in the job's own :class:`contextvars.Context`, so a sync handler on a job thread and an
``async def`` one on the event loop each see their own job, and nothing outside a job sees one.

The actions (:meth:`CurrentJob.release`, :meth:`~CurrentJob.fail`,
:meth:`~CurrentJob.heartbeat`, :meth:`~CurrentJob.progress`) reach whatever runs the job
through its :class:`JobChannel`: the worker's heartbeat thread, ``drain()``'s backend, or
nothing (``run_job()`` and sync mode, which have no row).
"""

from __future__ import annotations

import contextvars
import time
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, NoReturn, Protocol

import attrs

from ferroq_core.clock import seconds, utcnow
from ferroq_core.errors import JobCancelled, JobGivenUp, JobReleased, NoCurrentJob
from ferroq_core.history_records import Progress

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ferroq_core.records import EnqueueRequest, JobRow

__all__ = [
    "DETACHED",
    "MAX_PROGRESS_MESSAGE",
    "NEVER_STOPPED",
    "Attempt",
    "CurrentJob",
    "JobChannel",
    "Requests",
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


#: Longest progress message kept (longer ones are cut).
MAX_PROGRESS_MESSAGE = 500


class JobChannel(Protocol):
    """How a job's context reaches what runs it (a worker, ``drain()``)."""

    def heartbeat(self, job_id: int) -> bool:
        """Extend the job's lease now; False when it was lost (the job was reaped)."""

    def progress(self, job_id: int, progress: Progress) -> None:
        """Note the job's latest progress (stored when and as the runner sees fit)."""


class _Detached:
    """The channel of a job without a row (``run_job()``, sync mode): nothing to extend or
    store; progress stays readable on the context."""

    def heartbeat(self, job_id: int) -> bool:
        return True

    def progress(self, job_id: int, progress: Progress) -> None:
        return None


#: The channel of a job that has no row.
DETACHED: JobChannel = _Detached()


class Requests:
    """What a handler asked for during its attempt (mutable: one per attempt's context; a
    plain class with class-level defaults, the cheapest to make)."""

    #: ``ctx.release()`` or ``ctx.fail()``'s exception, read when the attempt is settled, so
    #: the request holds even when the handler caught it.
    action: JobReleased | JobGivenUp | None = None
    #: The latest ``ctx.progress()``.
    progress: Progress | None = None


@attrs.frozen
class CurrentJob:
    """The job that is running: read with :func:`current_job` inside ``handle()``, or
    received as ``handle(self, ctx)``."""

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
    #: Where the actions go (the worker, ``drain()``; :data:`DETACHED` without a row).
    channel: JobChannel = attrs.field(default=DETACHED, repr=False, eq=False)
    #: What the handler asked for so far in this attempt.
    requests: Requests = attrs.field(factory=Requests, repr=False, eq=False)
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
        handler calls it between steps (and :meth:`heartbeat` calls it)."""
        if self.stop.requested:
            raise JobCancelled(f"job {self.id} ({self.job_type}) was cancelled while running")

    def time_left(self) -> float | None:
        """Seconds until the timeout ends this attempt (never below 0), None without one."""
        if self.timeout is None:
            return None
        return max(0.0, self.started + self.timeout - time.monotonic())

    # -- actions -----------------------------------------------------------------------------
    def release(self, delay: float | timedelta = 0.0) -> NoReturn:
        """End this attempt and run the job again after ``delay`` (seconds or a timedelta),
        counting neither a failure nor an attempt (a resource is busy, a rate limit hit).

        Raises :class:`~ferroq_core.errors.JobReleased` to leave the handler; the release holds
        even if the handler catches it. In ``run_job()`` and sync mode, which run a job once,
        the exception reaches the caller (``failed()`` is not called).
        """
        wait = seconds(delay)
        if wait < 0:
            raise ValueError(f"release delay must not be negative, got {wait}")
        exc = JobReleased(wait)
        self.requests.action = exc
        raise exc

    def fail(self, reason: str) -> NoReturn:
        """End this attempt and park the job as failed at once, without the retries it has
        left; ``failed()`` is called once, with a :class:`~ferroq_core.errors.JobGivenUp`
        carrying ``reason``.

        Raises that error to leave the handler; it holds even if the handler catches it.
        """
        exc = JobGivenUp(str(reason))
        self.requests.action = exc
        raise exc

    def heartbeat(self) -> bool:
        """Extend this job's lease now (a long step ahead), in one round trip of the worker's
        heartbeat; returns False when the lease was lost (the job was reaped: its result will
        be dropped). Always True in ``run_job()`` and sync mode.

        :raises JobCancelled: the job was cancelled (``ferroq cancel``) by this beat or an
            earlier one: leave the handler (the job is removed, not retried).
        """
        held = self.channel.heartbeat(self.id)
        self.raise_if_cancelled()
        return held

    def progress(self, fraction: float | None = None, message: str | None = None) -> None:
        """Report progress, e.g. ``ctx.progress(0.4, "pages 40/100")``: ``fraction`` from 0.0
        to 1.0 (None: unknown), ``message`` at most :data:`MAX_PROGRESS_MESSAGE` characters.
        Cheap to call often: a worker stores only the latest value, on its heartbeat thread
        (at most about once a second); ``ferroq jobs`` and ``ferroq show`` display it."""
        if fraction is not None:
            fraction = float(fraction)
            if not 0.0 <= fraction <= 1.0:
                raise ValueError(f"progress fraction must be from 0.0 to 1.0, got {fraction}")
        if message is not None:
            message = str(message)[:MAX_PROGRESS_MESSAGE]
        latest = Progress(fraction, message)
        self.requests.progress = latest
        self.channel.progress(self.id, latest)

    @property
    def last_progress(self) -> Progress | None:
        """What this attempt reported last with :meth:`progress` (None before)."""
        return self.requests.progress


class Attempt:
    """An attempt's context, made into a :class:`CurrentJob` the first time it is asked for.

    A worker starts one per job, and most handlers never read their context: this keeps the
    few values it is made from (the row, the timeout, the channel, the start) and builds the
    record on the first :func:`current_job` (or ``handle(self, ctx)``), so a job that does not
    ask pays for none of it.
    """

    __slots__ = ("_channel", "_job", "_row", "_started", "_stop", "_tick", "_timeout")

    def __init__(
        self,
        row: JobRow | None,
        *,
        timeout: float | None = None,
        tick: datetime | None = None,
        channel: JobChannel = DETACHED,
        stop: StopSignal = NEVER_STOPPED,
        job: CurrentJob | None = None,
    ) -> None:
        self._row = row
        self._stop = stop
        self._timeout = timeout
        self._tick = tick
        self._channel = channel
        self._started = time.monotonic()
        self._job = job

    def job(self) -> CurrentJob:
        """The :class:`CurrentJob` (built on the first call)."""
        job = self._job
        if job is None:
            row, timeout = self._row, self._timeout
            assert row is not None  # one of row and job is always given
            deadline = None
            if timeout is not None:
                # The deadline counts from the start of the attempt, not from this call.
                left = timeout - (time.monotonic() - self._started)
                deadline = utcnow() + timedelta(seconds=left)
            job = self._job = _current(
                row, timeout, deadline, self._tick, self._channel, self._started, self._stop
            )
        return job

    @property
    def action(self) -> JobReleased | JobGivenUp | None:
        """What the handler asked for with ``release()`` or ``fail()``, if anything."""
        job = self._job
        return None if job is None else job.requests.action


_CURRENT: contextvars.ContextVar[Attempt] = contextvars.ContextVar("ferroq_current_job")


def current_job() -> CurrentJob:
    """The job running in this context.

    :raises NoCurrentJob: called outside a job's ``handle()`` (or ``failed()``).
    """
    try:
        attempt = _CURRENT.get()
    except LookupError:
        raise NoCurrentJob() from None
    return attempt.job()


def attempt_context(
    row: JobRow,
    *,
    timeout: float | None,
    tick: datetime | None = None,
    channel: JobChannel = DETACHED,
    stop: StopSignal = NEVER_STOPPED,
) -> CurrentJob:
    """The context of an attempt of ``row`` starting now, under ``timeout`` seconds, whose
    actions go to ``channel``; ``stop`` is what its worker sets to ask it to stop."""
    deadline = None if timeout is None else utcnow() + timedelta(seconds=timeout)
    return _current(row, timeout, deadline, tick, channel, time.monotonic(), stop)


def _current(
    row: JobRow,
    timeout: float | None,
    deadline: datetime | None,
    tick: datetime | None,
    channel: JobChannel,
    started: float,
    stop: StopSignal = NEVER_STOPPED,
) -> CurrentJob:
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
        started=started,
        channel=channel,
        stop=stop,
    )


def enter_job(context: CurrentJob | Attempt) -> None:
    """Make ``context`` the current job of the running :class:`contextvars.Context`.

    Called at the start of a job's own context (:func:`~ferroq_core.execution.in_own_context`
    or its asyncio task), which ends with the job, so there is nothing to reset."""
    _CURRENT.set(context if isinstance(context, Attempt) else Attempt(None, job=context))


@contextmanager
def running_job(context: CurrentJob) -> Iterator[CurrentJob]:
    """``context`` as the current job inside the block, the previous one (or none) after it:
    for a job run in its caller's context (sync mode)."""
    token = _CURRENT.set(Attempt(None, job=context))
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
