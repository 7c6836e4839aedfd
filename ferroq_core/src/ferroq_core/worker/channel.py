"""The channel from a running job's context to its worker: ``ctx.heartbeat()`` asks the
heartbeat thread for a beat now and waits for it; ``ctx.progress()`` leaves the job's latest
progress for the heartbeat thread to store, at most once per :data:`PROGRESS_INTERVAL`.

Job threads never touch the database here: they only note what they want and wake the
heartbeat thread (:class:`~ferroq_core.worker.leases.LeaseKeeper`), which does the writes.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, final

if TYPE_CHECKING:
    from ferroq_core.history_records import Progress

__all__ = ["BEAT_WAIT", "PROGRESS_INTERVAL", "WorkerChannel"]

#: Progress is written at most this often (seconds) by one worker, all jobs' together.
PROGRESS_INTERVAL = 1.0
#: The longest ``ctx.heartbeat()`` waits for its beat (the database may be slow or away).
BEAT_WAIT = 30.0


@final
class WorkerChannel:
    """What a worker's running jobs asked of its heartbeat thread (thread-safe)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        #: Set to wake the heartbeat thread early (also by the keeper's stop).
        self.wake = threading.Event()
        self._progress: dict[int, Progress] = {}
        self._written_at = float("-inf")
        #: Beats asked for, and beats done (a beat serves every request made before it).
        self._asked = 0
        self._done = 0
        self._lost: set[int] = set()

    # -- job side ----------------------------------------------------------------------------
    def heartbeat(self, job_id: int) -> bool:
        with self._cond:
            self._asked += 1
            target = self._asked
            self.wake.set()
            self._cond.wait_for(lambda: self._done >= target, timeout=BEAT_WAIT)
            return job_id not in self._lost

    def progress(self, job_id: int, progress: Progress) -> None:
        with self._cond:
            first = not self._progress
            self._progress[job_id] = progress
            due = time.monotonic() - self._written_at >= PROGRESS_INTERVAL
        if first and due:
            self.wake.set()

    # -- heartbeat thread side ---------------------------------------------------------------
    def beat_wanted(self) -> bool:
        """Whether a job waits for a beat."""
        with self._cond:
            return self._asked > self._done

    def progress_due_in(self) -> float | None:
        """Seconds until noted progress should be written (0: now), None when none is."""
        with self._cond:
            if not self._progress:
                return None
            return max(0.0, self._written_at + PROGRESS_INTERVAL - time.monotonic())

    def take_progress(self) -> dict[int, Progress]:
        """The latest progress of each job since the last call, to write now."""
        with self._cond:
            taken, self._progress = self._progress, {}
            self._written_at = time.monotonic()
            return taken

    def beat_starts(self) -> int:
        """A beat starts: it serves the requests made so far (pass this to :meth:`beat_done`)."""
        with self._cond:
            return self._asked

    def beat_done(self, served: int, lost: set[int]) -> None:
        """A beat ended (``lost``: ids of leases it found reaped); wake the jobs it served."""
        with self._cond:
            self._lost |= lost
            self._done = max(self._done, served)
            self._cond.notify_all()
