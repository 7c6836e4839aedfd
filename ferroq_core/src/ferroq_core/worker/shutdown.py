"""How a stopping worker hands its jobs back to the queue.

Claimed jobs that no runner has started go back to pending at once, with their attempt given
back. Jobs still running when the shutdown timeout ends (or when a second signal forces the
exit) go back with their attempt counted: they may have done part of their work.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, final

from ferroq_core.worker.outcome import describe_row

if TYPE_CHECKING:
    from ferroq_core.records import JobRow
    from ferroq_core.storage.protocol import Backend
    from ferroq_core.worker.report import Reporter
    from ferroq_core.worker.running import Running, RunningSet

__all__ = ["Shutdown"]

log = logging.getLogger("ferroq.worker")


@final
class Shutdown:
    """Returns a stopping worker's jobs to pending. Used by the worker's main thread only.

    :param running: the worker's claimed jobs.
    :param backend: the store the jobs go back to.
    :param reporter: the channel to a supervisor (``--processes``), told that each job handed
        back ended; None without one.
    :param timeout: seconds running jobs may go on once stopping began (``--shutdown-timeout``).
    """

    def __init__(
        self, running: RunningSet, backend: Backend, reporter: Reporter | None, timeout: float
    ) -> None:
        self._running = running
        self._backend = backend
        self._reporter = reporter
        self._timeout = timeout
        #: ``time.monotonic()`` when running jobs are handed back; None until stopping began.
        self.deadline: float | None = None

    def begin(self, reason: str) -> float:
        """Begin stopping, once: set the deadline and hand back the unstarted jobs.

        :param reason: why the worker stops (for the log).
        :return: the deadline (``time.monotonic()``) for the running jobs.
        """
        if self.deadline is None:
            self.deadline = time.monotonic() + self._timeout
            self.return_unstarted()
            log.info(
                "stopping (%s): waiting up to %gs for %d running job(s)",
                reason,
                self._timeout,
                len(self._running),
            )
        return self.deadline

    def return_unstarted(self) -> None:
        """Claimed but not started: back to pending with the attempt given back."""
        unstarted = self._running.take_unstarted()
        self._requeue(unstarted, count_attempt=False, why="claimed but not started")

    def return_running(self) -> None:
        """Every job not settled yet: back to pending with the attempt counted."""
        left = self._running.take_all()
        self._requeue(left, count_attempt=True, why="still running at shutdown")

    def return_rows(self, rows: list[JobRow], *, why: str) -> None:
        """Jobs that ran but whose outcome is given up: back to pending, attempt counted."""
        self._return(rows, count_attempt=True, why=why)

    def _requeue(self, records: list[Running], *, count_attempt: bool, why: str) -> None:
        if not records:
            return
        for r in records:
            if r.future is not None:
                r.future.cancel()
            if self._reporter is not None:
                self._reporter.ended(r.row.id)
        self._return([r.row for r in records], count_attempt=count_attempt, why=why)

    def _return(self, rows: list[JobRow], *, count_attempt: bool, why: str) -> None:
        if not rows:
            return
        try:
            done = self._backend.requeue([row.lease for row in rows], count_attempt=count_attempt)
        except Exception as exc:
            log.warning(
                "could not return %d job(s) to pending (they return when reaped): %s",
                len(rows),
                exc,
            )
            return
        for row in rows:
            if row.id in done:
                log.info("%s: returned to pending (%s)", describe_row(row), why)
