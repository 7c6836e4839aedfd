"""When a worker stops, and how its run ends.

A stop is asked for once, from any thread: a signal, ``ferroq restart``, a limit
(``--max-jobs``, ``--once``, ``--max-time``, ``--memory``), ``--stop-when-empty``, or results
the database keeps refusing. From then on the main thread claims nothing; it waits for the
running jobs up to the shutdown timeout (none when forced), then hands back whatever it still
holds. Every way a run can end is decided here, so the loop only asks whether to go on.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, final

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from ferroq_core.config import WorkerConfig
    from ferroq_core.worker.limits import Limits
    from ferroq_core.worker.running import RunningSet
    from ferroq_core.worker.shutdown import Shutdown
    from ferroq_core.worker.writeback import WriteBack

__all__ = ["Stopping"]

log = logging.getLogger("ferroq.worker")


@final
class Stopping:
    """One worker's stop: whether it was asked for, why, whether it is forced, and the exit
    code. :meth:`request` and :meth:`restart` may be called from any thread; the rest runs on
    the worker's main thread.

    :param worker_id: the worker's id (for the log).
    :param config: the worker's options.
    :param running: the worker's claimed jobs.
    :param writeback: the outcomes waiting to be written back.
    :param shutdown: hands the jobs back to the queue.
    :param wake: wakes the main thread's sleep, so that it sees the stop at once.
    """

    def __init__(
        self,
        worker_id: str,
        config: WorkerConfig,
        running: RunningSet,
        writeback: WriteBack,
        shutdown: Shutdown,
        wake: Callable[[], None],
    ) -> None:
        self._worker_id = worker_id
        self._config = config
        self._running = running
        self._writeback = writeback
        self._shutdown = shutdown
        self._wake = wake
        self._event = threading.Event()
        #: Hand every job back at once instead of waiting for it (a second signal, results
        #: that cannot be written back).
        self.force = False
        #: Why the worker stops, for the log; empty until it does.
        self.reason = ""
        #: What the run returns: 1 once the worker gave up writing results back.
        self.exit_code = 0

    @property
    def requested(self) -> bool:
        """Whether a stop was asked for."""
        return self._event.is_set()

    def request(self, reason: str = "stop requested", *, force: bool = False) -> None:
        """Stop claiming and let running jobs finish (up to the shutdown timeout). With
        ``force`` return every job to pending at once and exit. Safe from any thread.

        :param reason: why (for the log); the first request's reason is kept.
        :param force: do not wait for the running jobs.
        """
        if force:
            self.force = True
        if not self._event.is_set():
            self.reason = reason
            self._event.set()
        self._wake()

    def restart(self, requested_at: datetime) -> None:
        """``ferroq restart`` was sent after this worker started (heartbeat thread).

        :param requested_at: when it was sent.
        """
        log.warning(
            "worker %s: restart requested at %s: finishing current jobs, then exiting",
            self._worker_id,
            requested_at.isoformat(),
        )
        self.request("restart requested (ferroq restart)")

    def check(self, limits: Limits, *, processed: int, claims: int) -> bool:
        """Whether the worker is stopping; a limit reached, or writes refused for too long,
        ask it to.

        :param limits: the worker's limits.
        :param processed: attempts settled so far.
        :param claims: claims made so far.
        """
        if not self._event.is_set() and self._writes_given_up():
            return True
        if not self._event.is_set():
            reason = limits.reached(running=len(self._running), processed=processed, claims=claims)
            if reason is not None:
                self.request(reason)
        return self._event.is_set()

    def when_empty(self, *, held_back: bool) -> None:
        """After a short claim: stop under ``--stop-when-empty`` once nothing runs and no due
        job waits for a limit (jobs a rate window holds back are due: they are waited for,
        not left).

        :param held_back: whether a limit held the last claim back.
        """
        if self._config.stop_when_empty and not self._running and not held_back:
            self.request("queues empty (--stop-when-empty)")

    def _writes_given_up(self) -> bool:
        """Past the visibility timeout with every write refused (DELETE revoked, a trigger),
        the held results' leases are kept alive for nothing (or lost already): stop at once
        and hand every job back, so they run again elsewhere instead of waiting here. A
        database that cannot be reached is waited for instead: the leases expire there on
        their own, and the results are written or dropped as stale when it is back."""
        failing = self._writeback.refused_for()
        if failing <= self._config.visibility_timeout:
            return False
        log.error(
            "the database refused to write results back for %.1fs, longer than the visibility "
            "timeout (%gs): exiting with %d result(s) unwritten; their jobs will run again",
            failing,
            self._config.visibility_timeout,
            len(self._writeback),
        )
        self.exit_code = 1
        self.request("results cannot be written back", force=True)
        return True

    def grace_left(self) -> float | None:
        """One turn while stopping: the seconds left to wait for the running jobs, or None
        once the run may end (forced, nothing runs, or the shutdown deadline passed)."""
        if self.force or not self._running:
            return None
        left = self._shutdown.begin(self.reason) - time.monotonic()
        return left if left > 0 else None

    def hand_back(self) -> None:
        """At the end of the run: write back what finished (unless the worker gave up
        writing); every job still held goes back to pending."""
        shutdown = self._shutdown
        if self.exit_code:
            shutdown.return_unstarted()
            shutdown.return_running()
            shutdown.return_rows(self._writeback.take_all(), why="result not written back")
            return
        self._writeback.flush(force=True, retry_now=True)
        shutdown.return_unstarted()
        shutdown.return_running()
        self._writeback.flush(force=True, retry_now=True)
