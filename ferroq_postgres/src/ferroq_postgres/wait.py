"""Idle waits: notifications heard per queue, and waits bounded by the next due time.

The LISTEN thread (:mod:`ferroq_postgres.listener`) reports the queues it hears about; this
process's own dispatches do too while that thread is not connected. A waiter wakes when a
queue of its own was notified since it last looked, on :meth:`Notifications.wake`, or when
the earliest pending job of its queues becomes due (a delayed job's notification came when it
was dispatched, long before it was due).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from ferroq_core.errors import FerroqError
from ferroq_core.storage.rules import due_bound
from ferroq_core.storage.wakeup import WakeSignal
from ferroq_postgres.connections import fetch
from ferroq_postgres.params import CHANNEL, RESULTS_CHANNEL

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence, Set

    import psycopg

    from ferroq_postgres.connections import Connections

__all__ = ["Notifications", "due_in", "notify_ended", "notify_queues"]

log = logging.getLogger("ferroq.postgres")


def notify_queues(
    conn: psycopg.Connection[Any], queues: Set[str], *, prepare: bool | None = True
) -> None:
    """Notify the workers of ``queues`` (each once, in a stable order) when the open
    transaction of ``conn`` commits; nothing when there are none."""
    if queues:
        fetch(
            conn, "notify_queues", {"channel": CHANNEL, "queues": sorted(queues)}, prepare=prepare
        )


def notify_ended(conn: psycopg.Connection[Any], ids: Iterable[int]) -> None:
    """Wake the result waiters of jobs that ended without a result (failed, cancelled) when
    the open transaction of ``conn`` commits; nothing when there are none. One statement:
    this only runs where jobs were failed or removed."""
    ended = sorted(set(ids))
    if ended:
        fetch(conn, "notify_results", {"channel": RESULTS_CHANNEL, "ids": ended})


def due_in(connections: Connections, queues: Sequence[str]) -> float | None:
    """Seconds on the database clock until the earliest pending job of ``queues`` is due (zero
    or less: one is due now), or None: none is pending, or the database cannot say now (the
    waiter then waits out its timeout, as it would have)."""
    try:
        found = [connections.rows("due_in", {"queue": q}) for q in dict.fromkeys(queues)]
    except FerroqError as exc:
        log.debug("could not look for due jobs (%s); waiting for the timeout", exc)
        return None
    seconds = [float(rows[0][0]) for rows in found if rows and rows[0][0] is not None]
    return min(seconds) if seconds else None


class Notifications:
    """What this process heard, per queue, under one :class:`WakeSignal`. Thread-safe."""

    def __init__(self) -> None:
        self.signal = WakeSignal()
        #: Notifications heard per queue (guarded by ``signal.condition``).
        self.counts: dict[str, int] = {}
        self._seen = threading.local()

    def heard(self, queues: Set[str]) -> None:
        """Record notifications of ``queues`` and let waiters look."""
        with self.signal.condition:
            for queue in queues:
                self.counts[queue] = self.counts.get(queue, 0) + 1
            self.signal.notify()

    def wake(self) -> None:
        """End every current wait."""
        self.signal.wake()

    def _mark(self, queues: tuple[str, ...]) -> tuple[int, tuple[int, ...]]:
        return self.signal.generation, tuple(self.counts.get(q, 0) for q in queues)

    def wait(
        self,
        queues: Sequence[str],
        timeout: float,
        due_in: Callable[[Sequence[str]], float | None],
    ) -> bool:
        """Wait up to ``timeout`` seconds (see the module docstring); True unless it timed out.

        :param due_in: seconds until the earliest pending job of the queues is due, or None.
        """
        key = tuple(queues)
        condition = self.signal.condition
        with condition:
            # A notification that came between this thread's last wait and this one (while it
            # was claiming) must not be slept through: compare with what it saw last time.
            # Taken before the due-time query, so one that comes during the query counts too.
            seen = getattr(self._seen, "mark", None)
            start = seen[1] if seen is not None and seen[0] == key else self._mark(key)
        timeout, due = due_bound(due_in(queues) if queues else None, timeout)
        with condition:
            self.signal.wait_for(lambda: self._mark(key) != start, timeout)
            after = self._mark(key)
            self._seen.mark = (key, after)
            return after != start or due
