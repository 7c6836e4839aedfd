"""How jobs and the worker stop: jobs past their timeout, the worker's limits (``--max-jobs``,
``--once``, ``--max-time``, ``--memory``) and shutdown (unstarted jobs handed back, running
ones requeued). A mixin of :class:`~ferroq_core.worker.loop.WorkerLoop`, run by its main thread
only.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from ferroq_core.worker.attempt import Outcome, describe_row
from ferroq_core.worker.limits import rss_mb
from ferroq_core.worker.running import timeout_error

if TYPE_CHECKING:
    from ferroq_core.config import WorkerConfig
    from ferroq_core.job import Job
    from ferroq_core.records import JobRow
    from ferroq_core.runtime import Runtime
    from ferroq_core.worker.report import Reporter
    from ferroq_core.worker.running import Running, RunningSet
    from ferroq_core.worker.threads import JobThreads

__all__ = ["StoppingMixin"]

log = logging.getLogger("ferroq.worker")


class StoppingMixin:
    """Timeouts, limits and shutdown of a :class:`~ferroq_core.worker.loop.WorkerLoop`."""

    if TYPE_CHECKING:
        runtime: Runtime
        config: WorkerConfig
        processed: int
        _claims: int
        _running: RunningSet
        _threads: JobThreads | None
        _reporter: Reporter | None

        def request_stop(self, reason: str = ..., *, force: bool = ...) -> None: ...
        def _settle(self, running: Running, outcome: Outcome) -> None: ...
        def _decode(self, row: JobRow) -> Job | None: ...
        def _collect(self) -> None: ...
        def _flush(self, *, force: bool = ...) -> bool: ...

    def _check_deadlines(self) -> None:
        now = time.monotonic()
        for running in self._running.take_overdue(now):
            row = running.row
            started = running.started_at
            error = timeout_error(running)
            if running.is_async:
                # Report the end to a supervisor only when the task really ends: a handler
                # that blocks the event loop is then killed with its process.
                running.abandoned = started is not None
                if running.future is not None:
                    running.future.cancel()
            elif started is not None and self._threads is not None:
                self._threads.abandon(running)
            log.warning(
                "%s: timed out after %gs%s",
                describe_row(row),
                running.timeout,
                "" if running.is_async else " (its thread is abandoned)",
            )
            duration = now - started if started is not None else 0.0
            self._settle(
                running, Outcome(row=row, error=error, duration=duration, job=self._decode(row))
            )

    def _check_limits(self, started: float) -> None:
        cfg = self.config
        # --max-jobs and --once stop claiming through _free_slots and stop once the jobs they
        # claimed are settled, so nothing claimed under them is handed back unstarted.
        if cfg.max_jobs is not None and self.processed >= cfg.max_jobs:
            self.request_stop(f"--max-jobs {cfg.max_jobs} reached")
        elif cfg.once and self._claims and not self._running:
            self.request_stop("--once")
        elif cfg.max_time is not None and time.monotonic() - started >= cfg.max_time:
            self.request_stop(f"--max-time {cfg.max_time:g}s reached")
        elif cfg.memory_limit_mb is not None:
            used = rss_mb()
            if used is not None and used > cfg.memory_limit_mb:
                self.request_stop(f"memory {used:.0f} MB over --memory {cfg.memory_limit_mb:g}")

    def _return_unstarted(self) -> None:
        """Claimed but not started: back to pending with the attempt given back."""
        unstarted = self._running.take_unstarted()
        self._requeue(unstarted, count_attempt=False, why="claimed but not started")

    def _requeue(self, records: list[Running], *, count_attempt: bool, why: str) -> None:
        if not records:
            return
        for r in records:
            if r.future is not None:
                r.future.cancel()
            if self._reporter is not None:
                self._reporter.ended(r.row.id)
        try:
            done = self.runtime.backend.requeue(
                [r.row.lease for r in records], count_attempt=count_attempt
            )
        except Exception as exc:
            log.warning("could not return %d job(s) to pending: %s", len(records), exc)
            return
        for r in records:
            if r.row.id in done:
                log.info("%s: returned to pending (%s)", describe_row(r.row), why)

    def _shutdown(self) -> None:
        self._collect()
        self._flush(force=True)
        self._return_unstarted()
        left = self._running.take_all()
        self._requeue(left, count_attempt=True, why="still running at shutdown")
        self._flush(force=True)
