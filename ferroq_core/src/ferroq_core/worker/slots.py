"""Where a worker's jobs run: threads for plain ``handle()``, one event loop for ``async def``.

The main loop owns every :class:`Running` record and is the only one that settles a job; the
runners only execute and post the :class:`~ferroq_core.worker.attempt.Outcome` back. A sync
job that overruns its timeout cannot be killed inside a thread, so its thread is *abandoned*:
the pool starts a fresh thread to keep the slot count, and the late outcome is ignored (and
would be rejected by fencing anyway).
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import logging
import queue
import sys
import threading
import time
import traceback
from typing import TYPE_CHECKING, Any

import attrs

from ferroq_core.errors import JobTimeout

if TYPE_CHECKING:
    import concurrent.futures
    from collections.abc import Callable, Coroutine

    from ferroq_core.job import Job
    from ferroq_core.records import JobRow
    from ferroq_core.runtime import Runtime

__all__ = [
    "LoopThread",
    "Running",
    "RunningRecords",
    "RunningSet",
    "ThreadSlots",
    "timeout_error",
]

#: Stack text kept in a timeout's error, at most.
MAX_STACK_CHARS = 4_000

log = logging.getLogger("ferroq.worker")


@attrs.define(eq=False)
class Running:
    """One claimed job from claim to settlement (mutable; guarded by the worker's lock)."""

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


class ThreadSlots:
    """Daemon threads for sync handlers, started on demand (a worker that only runs async
    jobs starts none) and reused. A thread stuck in an abandoned job never comes back: the
    next job gets a fresh thread, so a timed-out handler never costs a slot.

    Waking a thread costs far more than a short job (a futex wake-up and a GIL hand-off,
    ~25 us per job in a profile of no-op jobs), so a thread is woken only when needed: while
    jobs wait and no thread is already on its way (``_waking``), one more is woken (or
    started). A thread that finishes a job takes the next waiting one itself. Every waiting
    job therefore has a thread coming for it that is not busy with another job: a slow job
    never delays the start of the others (each thread taking a job wakes the next one while
    more wait), yet a burst of short jobs is run by the few threads already awake.
    """

    def __init__(self, run: Callable[[Running], None], name: str = "ferroq-job") -> None:
        self._pending: collections.deque[Running] = collections.deque()
        #: Wake-up tokens for sleeping threads: True takes work, None ends the thread.
        self._tokens: queue.SimpleQueue[bool | None] = queue.SimpleQueue()
        self._run = run
        self._name = name
        self._count = 0
        self._lock = threading.Lock()
        #: Threads blocked waiting for a token, and threads woken (or started) that have not
        #: looked at ``_pending`` yet.
        self._sleeping = 0
        self._waking = 0
        self._live: set[threading.Thread] = set()

    def _wake_one(self) -> None:
        # Called with the lock held, when jobs wait and no thread is on its way.
        self._waking += 1
        if self._sleeping >= self._waking:
            self._tokens.put(True)
            return
        self._count += 1
        thread = threading.Thread(
            target=self._serve, name=f"{self._name}-{self._count}", daemon=True
        )
        self._live.add(thread)
        thread.start()

    def _take(self, *, woken: bool) -> Running | None:
        """The next waiting job, or None (the caller then sleeps, counted)."""
        with self._lock:
            if woken:
                self._waking -= 1
            if not self._pending:
                self._sleeping += 1
                return None
            item = self._pending.popleft()
            if self._pending and not self._waking:
                self._wake_one()
            return item

    def _serve(self) -> None:
        me = threading.current_thread()
        woken = True  # a new thread was counted as on its way
        try:
            while True:
                item = self._take(woken=woken)
                woken = False
                if item is None:
                    token = self._tokens.get()
                    with self._lock:
                        self._sleeping -= 1
                    if token is None:
                        return
                    woken = True
                    continue
                self._run(item)
                if item.abandoned:
                    # Given up after a timeout: later jobs get a fresh thread.
                    return
        finally:
            with self._lock:
                self._live.discard(me)

    def submit_all(self, runs: list[Running]) -> None:
        """Queue jobs in order; one thread is woken (or started) if none is on its way, and
        each thread that takes one wakes the next while more wait (see the class)."""
        with self._lock:
            self._pending.extend(runs)
            if not self._waking:
                self._wake_one()

    def abandon(self, running: Running) -> None:
        """Give up on the thread running ``running`` (it leaves the pool when it returns)."""
        running.abandoned = True

    def stop(self) -> None:
        """Let idle threads exit (running ones are daemons: they never block exit)."""
        with self._lock:
            n = len(self._live)
        for _ in range(n):
            self._tokens.put(None)


class LoopThread:
    """An asyncio event loop on a daemon thread, owned by the worker."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="ferroq-async", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            try:
                pending = asyncio.all_tasks(self.loop)
                for task in pending:
                    task.cancel()
                if pending:
                    self.loop.run_until_complete(
                        asyncio.wait(pending, timeout=1.0, return_when=asyncio.ALL_COMPLETED)
                    )
            except Exception:  # shutting down: nothing left to report to
                log.debug("async loop shutdown", exc_info=True)
            self.loop.close()

    def submit(self, coro: Coroutine[Any, Any, None]) -> concurrent.futures.Future[None]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self, timeout: float = 1.0) -> None:
        if self.loop.is_closed():
            return
        try:
            self.loop.call_soon_threadsafe(self.loop.stop)
        except RuntimeError:  # already closed
            return
        deadline = time.monotonic() + timeout
        self._thread.join(max(0.0, deadline - time.monotonic()))


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
