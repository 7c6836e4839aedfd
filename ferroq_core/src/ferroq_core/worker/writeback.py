"""Outcomes waiting to be written back: successes gathered into batches, failures in order.

A write that fails (database unreachable) stays queued and is retried on the next turn of the
worker's loop; its lease stays in :meth:`WriteBack.rows` so the heartbeat keeps it alive
meanwhile.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from ferroq_core.worker.attempt import settle, settle_successes

if TYPE_CHECKING:
    from ferroq_core.records import JobRow
    from ferroq_core.runtime import Runtime
    from ferroq_core.worker.attempt import Outcome

__all__ = ["ACK_WINDOW", "WriteBack"]

log = logging.getLogger("ferroq.worker")

#: Successes wait at most this long (while other jobs still run) to be acknowledged together.
ACK_WINDOW = 0.02


class WriteBack:
    """The worker's pending writes. Used by the worker's main thread only (the heartbeat
    thread only reads :meth:`rows`)."""

    def __init__(self, runtime: Runtime, batch_size: int) -> None:
        self._runtime = runtime
        self._batch_size = batch_size
        self._acks: list[Outcome] = []
        self._acks_since = 0.0
        self._failures: list[Outcome] = []

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
                log.warning("acknowledging %d job(s) failed (will retry): %s", len(batch), exc)
                self._acks = batch + self._acks
        if self._failures:
            pending, self._failures = self._failures, []
            for i, outcome in enumerate(pending):
                try:
                    released |= settle(self._runtime, outcome) == "retrying"
                except Exception as exc:
                    log.warning("writing back job %s failed (will retry): %s", outcome.row.id, exc)
                    self._failures = pending[i:] + self._failures
                    break
        return released
