"""Outcomes waiting to be written back: successes gathered into batches, failures in order.

A write that fails (database unreachable, a permission revoked) stays queued and is retried
with capped exponential backoff; its lease stays in :meth:`WriteBack.rows` so the heartbeat
keeps it alive meanwhile. While writes fail, one warning is logged per
:data:`WARN_INTERVAL`, and :meth:`WriteBack.refused_for` tells the worker how long the database
has been answering and refusing them (it gives up past the visibility timeout). A database that
cannot be reached (down, a network partition) refuses nothing: the leases expire on their own
then, and the worker stays to write or drop its results once it is back.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import TYPE_CHECKING

from ferroq_core.errors import BackendBusy, BackendUnavailable
from ferroq_core.worker.acknowledge import settle_successes
from ferroq_core.worker.settle import settle

if TYPE_CHECKING:
    from collections.abc import Callable

    from ferroq_core.records import JobRow
    from ferroq_core.runtime import Runtime
    from ferroq_core.worker.outcome import Outcome

__all__ = ["ACK_WINDOW", "RETRY_CAP", "WARN_INTERVAL", "Callbacks", "WriteBack"]

log = logging.getLogger("ferroq.worker")

#: Successes wait at most this long (while other jobs still run) to be acknowledged together.
ACK_WINDOW = 0.02
#: While writes fail: the first retry after this many seconds, doubling up to RETRY_CAP.
RETRY_FIRST = 0.05
RETRY_CAP = 2.0
#: Write failures that say the database could not be reached or stayed locked, not that it
#: refused the write.
UNREACHABLE = (BackendUnavailable, BackendBusy)
#: While writes fail, at most one warning per this many seconds.
WARN_INTERVAL = 10.0


class WriteBack:
    """The worker's pending writes. Used by the worker's main thread only (the heartbeat
    thread only reads :meth:`rows`)."""

    def __init__(
        self,
        runtime: Runtime,
        batch_size: int,
        defer: Callable[[Callable[[], None]], None] | None = None,
    ) -> None:
        self._runtime = runtime
        self._defer = defer
        self._batch_size = batch_size
        self._acks: list[Outcome] = []
        self._acks_since = 0.0
        self._failures: list[Outcome] = []
        #: ``time.monotonic()`` of the first failed write since the last one that worked.
        self._failing_since: float | None = None
        #: The same, for failures where the database answered and refused the write.
        self._refused_since: float | None = None
        self._retry_at = 0.0
        self._retry_delay = RETRY_FIRST
        self._warned_at = 0.0
        #: Outcomes written back so far (successes acknowledged, failures settled).
        self.written = 0

    def __len__(self) -> int:
        """Results not written back yet."""
        return len(self._acks) + len(self._failures)

    def refused_for(self) -> float:
        """Seconds since the database began refusing writes it received (0.0 while writes
        work, or only fail to reach it)."""
        since = self._refused_since
        return 0.0 if since is None else time.monotonic() - since

    def failing_for(self) -> float:
        """Seconds since writes began to fail (0.0 while they work)."""
        since = self._failing_since
        return 0.0 if since is None else time.monotonic() - since

    def take_all(self) -> list[JobRow]:
        """Give up every result not written back: their rows (the caller returns them)."""
        rows = self.rows()
        self._acks, self._failures = [], []
        return rows

    def add(self, outcome: Outcome) -> None:
        if not outcome.ok:
            self._failures.append(outcome)
            return
        if not self._acks:
            self._acks_since = time.monotonic()
        self._acks.append(outcome)

    def rows(self) -> list[JobRow]:
        """Rows whose outcome is not written yet (their leases must stay alive)."""
        return [o.row for o in list(self._acks) + list(self._failures)]

    def ack_wait(self) -> float | None:
        """Seconds until gathered successes are due (or, while writes fail, the next retry),
        or None when nothing waits."""
        now = time.monotonic()
        if self._failing_since is not None and (self._acks or self._failures):
            return max(0.0, self._retry_at - now)
        if not self._acks:
            return None
        return max(0.0, self._acks_since + ACK_WINDOW - now)

    def flush(self, *, force: bool, retry_now: bool = False) -> bool:
        """Acknowledge successes in one batch and write failures back.

        Without ``force``, successes gather for up to :data:`ACK_WINDOW` or until a batch's
        worth waits, so a busy worker deletes many rows per statement (the caller forces the
        write when nothing else runs or it is stopping). While writes fail, nothing is tried
        before the backoff's next retry unless ``retry_now``. Returns True when a job went
        back to pending (it may be claimable at once).
        """
        if self._failing_since is not None and not retry_now:
            if time.monotonic() < self._retry_at:
                return False
            force = True  # a retry writes everything held
        released = False
        due = force or len(self._acks) >= self._batch_size or self.ack_wait() == 0.0
        if self._acks and due:
            batch, self._acks = self._acks, []
            try:
                settle_successes(self._runtime, batch)
            except Exception as exc:
                self._acks = batch + self._acks
                self._failed(exc)
                return False
            self.written += len(batch)
        if self._failures:
            pending, self._failures = self._failures, []
            for i, outcome in enumerate(pending):
                try:
                    result = settle(self._runtime, outcome, defer=self._defer)
                    released |= result in ("retrying", "released")
                    self.written += 1
                except Exception as exc:
                    self._failures = pending[i:] + self._failures
                    self._failed(exc)
                    return released
        if self._failing_since is not None:
            log.warning(
                "writing results back works again after %.1fs of failures", self.failing_for()
            )
            self._failing_since = self._refused_since = None
            self._retry_delay = RETRY_FIRST
        return released

    def _failed(self, exc: Exception) -> None:
        """A write failed: schedule the retry and warn at most once per interval."""
        now = time.monotonic()
        if self._refused_since is None and not isinstance(exc, UNREACHABLE):
            self._refused_since = now
        if self._failing_since is None:
            self._failing_since = now
            self._warned_at = now - WARN_INTERVAL
        else:
            self._retry_delay = min(RETRY_CAP, self._retry_delay * 2)
        self._retry_at = now + self._retry_delay
        if now - self._warned_at >= WARN_INTERVAL:
            self._warned_at = now
            log.warning(
                "writing results back failed for %.1fs, %d held (retrying with backoff; not "
                "claiming while they fill the slots): %s",
                now - self._failing_since,
                len(self),
                exc,
            )


class Callbacks:
    """One thread that runs ``failed()`` callbacks and ``failed`` hooks in order, so slow user
    code there never holds up the worker's claiming, timeouts or write-backs."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._idle = threading.Event()
        self._idle.set()
        self._pending = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, fn: Callable[[], None]) -> None:
        with self._lock:
            self._pending += 1
            self._idle.clear()
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, name="ferroq-callbacks", daemon=True
                )
                self._thread.start()
        self._queue.put(fn)

    def _serve(self) -> None:
        while True:
            fn = self._queue.get()
            if fn is None:
                return
            try:
                fn()
            except BaseException:  # each callback already logs its own errors
                log.exception("a failed() callback or hook raised")
            with self._lock:
                self._pending -= 1
                if self._pending == 0:
                    self._idle.set()

    def drain(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for queued callbacks; False if some are left."""
        done = self._idle.wait(timeout)
        if self._thread is not None:
            self._queue.put(None)
        return done
