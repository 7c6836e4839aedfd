"""The worker's claimed jobs: a :class:`Running` record per job from claim to settlement,
the :class:`RunningSet` that holds them, and :class:`RunningRecords`, which makes a claim's
records.

The main loop owns every record and is the only one that settles a job; runners only mark a
record started (:meth:`RunningSet.begin`). Every change that races between the two happens
under the set's lock.
"""

from __future__ import annotations

import inspect
import logging
import sys
import threading
import time
import traceback
from typing import TYPE_CHECKING, Any, final

import attrs

from ferroq_core.context import StopSignal
from ferroq_core.errors import JobTimeout
from ferroq_core.worker.outcome import Outcome, describe_row

if TYPE_CHECKING:
    import concurrent.futures

    from ferroq_core.job import Job
    from ferroq_core.records import JobRow
    from ferroq_core.runtime import Runtime

__all__ = ["Running", "RunningRecords", "RunningSet", "expire", "timeout_error"]

#: Stack text kept in a timeout's error, at most.
MAX_STACK_CHARS = 4_000

log = logging.getLogger("ferroq.worker")


@attrs.define(eq=False)
class Running:
    """One claimed job from claim to settlement (mutable: a change that races between the
    main thread and a runner happens under the :class:`RunningSet` lock)."""

    #: The claimed row (its lease fences every write).
    row: JobRow
    #: Whether ``handle`` is ``async def`` (runs on the loop thread).
    is_async: bool
    #: ``time.monotonic()`` after which the attempt has timed out, or None.
    deadline: float | None
    #: The job's timeout in seconds (for messages), or None.
    timeout: float | None
    #: When the handler started (None: claimed but not started yet).
    started_at: float | None = None
    #: Set by the main loop when it returned the job before it started: skip it.
    cancelled: bool = False
    #: Set once the main loop settled the job (timeout, shutdown): a late outcome is ignored.
    settled: bool = False
    #: Set when the thread running it was given up after a timeout.
    abandoned: bool = False
    #: The thread running a sync job (to show where it is stuck when it times out).
    thread_id: int | None = None
    #: The async task's future, for cancellation.
    future: concurrent.futures.Future[Any] | None = None
    #: Set when a cancel request for the job came back in a heartbeat (its handler sees it).
    stop: StopSignal = attrs.Factory(StopSignal)


@final
class RunningRecords:
    """Makes the :class:`Running` records of claimed rows: each job class's timeout (else the
    worker's) and whether its ``handle`` is ``async def``, looked up once per job type
    (inspect is slow next to a no-op job) and checked against the registry's current class."""

    def __init__(self, runtime: Runtime, default_timeout: float | None) -> None:
        self._runtime = runtime
        self._default_timeout = default_timeout
        self._kinds: dict[str, tuple[type[Job] | None, float | None, bool]] = {}

    def records(self, rows: list[JobRow]) -> list[Running]:
        """The records of one claim's rows (one clock reading: they were claimed together;
        each job type's kind checked once per claim, not per row)."""
        now = time.monotonic()
        claim_kinds: dict[str, tuple[type[Job] | None, float | None, bool]] = {}
        out = []
        for row in rows:
            kind = claim_kinds.get(row.job_type)
            if kind is None:
                kind = claim_kinds[row.job_type] = self._current_kind(row.job_type)
            _cls, timeout, is_async = kind
            deadline = None if timeout is None else now + timeout
            out.append(Running(row, is_async, deadline, timeout))
        return out

    def _current_kind(self, job_type: str) -> tuple[type[Job] | None, float | None, bool]:
        """The remembered kind of ``job_type`` while the registry still holds its class."""
        kind = self._kinds.get(job_type)
        if kind is not None:
            try:
                current: type[Job] | None = self._runtime.registry.get(job_type)
            except Exception:
                current = None
            if current is kind[0]:
                return kind
            # Re-registered (a reloaded module's class replaces its old self), or the
            # registry was cleared: look again.
        return self._kind(job_type)

    def _kind(self, job_type: str) -> tuple[type[Job] | None, float | None, bool]:
        """A job type's class, timeout and whether it is async; remembered unless unknown."""
        runtime = self._runtime
        cls: type[Job] | None
        try:
            cls = runtime.registry.get(job_type, runtime.pm)
        except Exception:
            cls = None  # the attempt fails with the reason when it decodes
        timeout = cls.timeout if cls is not None and cls.timeout is not None else None
        if timeout is None:
            timeout = self._default_timeout
        kind = (cls, timeout, cls is not None and inspect.iscoroutinefunction(cls.handle))
        if cls is not None:
            self._kinds[job_type] = kind
        return kind


@final
class RunningSet:
    """The worker's claimed jobs by id. Every state change of a :class:`Running` that races
    between the main thread and a runner (start, cancel, settle) happens under one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[int, Running] = {}

    def __len__(self) -> int:
        return len(self._jobs)

    def add_all(self, runs: list[Running]) -> None:
        with self._lock:
            jobs = self._jobs
            for running in runs:
                jobs[running.row.id] = running

    def discard_all(self, runs: list[Running]) -> None:
        with self._lock:
            pop = self._jobs.pop
            for running in runs:
                pop(running.row.id, None)

    def begin(self, running: Running) -> bool:
        """Mark ``running`` started (runner side); False when it was cancelled or settled."""
        with self._lock:
            if running.cancelled or running.settled:
                return False
            running.started_at = time.monotonic()
            running.thread_id = None if running.is_async else threading.get_ident()
            return True

    def ask_to_stop(self, ids: frozenset[int]) -> list[Running]:
        """Set the stop signal of the jobs among ``ids`` not settled yet; return those newly
        asked (a cancel request comes back in every heartbeat until the job ends)."""
        with self._lock:
            asked = [
                r
                for job_id in ids
                if (r := self._jobs.get(job_id)) is not None
                and not r.settled
                and not r.stop.requested
            ]
            for r in asked:
                r.stop.requested = True
        return asked

    def take_overdue(self, now: float) -> list[Running]:
        """Jobs past their deadline, marked settled (the caller settles them)."""
        with self._lock:
            overdue = [
                r
                for r in self._jobs.values()
                if r.deadline is not None and now >= r.deadline and not r.settled
            ]
            for r in overdue:
                r.settled = True
        return overdue

    def take_unstarted(self) -> list[Running]:
        """Claimed jobs no runner has started, removed and marked cancelled."""
        with self._lock:
            unstarted = [r for r in self._jobs.values() if r.started_at is None]
            for r in unstarted:
                r.cancelled = r.settled = True
                del self._jobs[r.row.id]
        return unstarted

    def take_all(self) -> list[Running]:
        """Every job not settled yet, removed and marked settled (shutdown)."""
        with self._lock:
            left = [r for r in self._jobs.values() if not r.settled]
            for r in left:
                r.settled = True
            self._jobs.clear()
        return left

    def held_rows(self) -> list[JobRow]:
        """Rows whose lease must be kept alive."""
        with self._lock:
            return [r.row for r in self._jobs.values() if not r.settled]

    def next_deadline(self) -> float | None:
        with self._lock:
            deadlines = [r.deadline for r in self._jobs.values() if r.deadline is not None]
        return min(deadlines) if deadlines else None


def expire(running: Running, now: float, job: Job | None) -> Outcome:
    """The outcome of a job taken past its deadline (:meth:`RunningSet.take_overdue`): a
    :class:`~ferroq_core.errors.JobTimeout`. An async task is cancelled; a sync handler
    cannot be stopped, so its thread is abandoned (the pool gives the next job a fresh one).

    :param running: the overdue job, already marked settled.
    :param now: ``time.monotonic()`` of the check.
    :param job: the decoded job, for its ``failed()`` (None when it does not decode).
    """
    row = running.row
    started = running.started_at
    error = timeout_error(running)
    if running.is_async:
        # Report the end to a supervisor only when the task really ends: a handler that
        # blocks the event loop is then killed with its process.
        running.abandoned = started is not None
        if running.future is not None:
            running.future.cancel()
    elif started is not None:
        running.abandoned = True
    log.warning(
        "%s: timed out after %gs%s",
        describe_row(row),
        running.timeout,
        "" if running.is_async else " (its thread is abandoned)",
    )
    duration = now - started if started is not None else 0.0
    return Outcome(row=row, error=error, duration=duration, job=job)


def timeout_error(running: Running) -> JobTimeout:
    """The error of an attempt that ran past its timeout; for a sync handler it shows where
    the handler is stuck (its thread's stack), which is what an operator needs to fix it."""
    row = running.row
    name = f"job {row.id} ({row.job_type})"
    if running.started_at is None:
        return JobTimeout(
            f"{name} did not even start within its timeout of {running.timeout:g}s (an async "
            "handler is blocking the worker's event loop)"
        )
    where = ""
    frame = sys._current_frames().get(running.thread_id or -1)
    if frame is not None:
        stack = "".join(traceback.format_stack(frame))[-MAX_STACK_CHARS:]
        where = f"; the handler was at:\n{stack}"
    return JobTimeout(f"{name} ran past its timeout of {running.timeout:g}s{where}")
