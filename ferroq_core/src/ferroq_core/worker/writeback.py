"""Outcomes waiting to be written back: successes gathered into batches, failures in order.

A write that fails (database unreachable) stays queued and is retried on the next turn of the
worker's loop; its lease stays in :meth:`WriteBack.rows` so the heartbeat keeps it alive
meanwhile.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import TYPE_CHECKING

from ferroq_core.worker.attempt import settle, settle_successes

if TYPE_CHECKING:
    from collections.abc import Callable

    from ferroq_core.records import JobRow
    from ferroq_core.runtime import Runtime
    from ferroq_core.worker.attempt import Outcome

__all__ = ["ACK_WINDOW", "Callbacks", "WriteBack"]

log = logging.getLogger("ferroq.worker")

#: Successes wait at most this long (while other jobs still run) to be acknowledged together.
ACK_WINDOW = 0.02


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
        #: Writes are failing (logged once, when they start to, and when they succeed again).
        self._failing = False

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
        """Seconds until gathered successes are due, or None when none wait."""
        if not self._acks:
            return None
        return max(0.0, self._acks_since + ACK_WINDOW - time.monotonic())

    def flush(self, *, force: bool) -> bool:
        """Acknowledge successes in one batch and write failures back.

        Without ``force``, successes gather for up to :data:`ACK_WINDOW` or until a batch's
        worth waits, so a busy worker deletes many rows per statement (the caller forces the
        write when nothing else runs or it is stopping). Returns True when a job went back to
        pending (it may be claimable at once).
        """
        released = False
        due = force or len(self._acks) >= self._batch_size or self.ack_wait() == 0.0
        if self._acks and due:
            batch, self._acks = self._acks, []
            try:
                settle_successes(self._runtime, batch)
            except Exception as exc:
                self._failed(f"acknowledging {len(batch)} job(s)", exc)
                self._acks = batch + self._acks
            else:
                self._succeeded()
        if self._failures:
            pending, self._failures = self._failures, []
            for i, outcome in enumerate(pending):
                try:
                    result = settle(self._runtime, outcome, defer=self._defer)
                    released |= result == "retrying"
                except Exception as exc:
                    self._failed(f"writing back job {outcome.row.id}", exc)
                    self._failures = pending[i:] + self._failures
                    break
                else:
                    self._succeeded()
        return released

    def _failed(self, what: str, exc: Exception) -> None:
        # Retried on every turn of the loop: one line when writes start failing, not one per
        # retry (a database down for a minute would log hundreds).
        if not self._failing:
            log.warning("%s failed (will retry until it succeeds): %s", what, exc)
        self._failing = True

    def _succeeded(self) -> None:
        if self._failing:
            log.warning("writing results back again")
        self._failing = False


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
