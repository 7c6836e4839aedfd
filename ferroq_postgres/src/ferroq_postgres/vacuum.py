"""Vacuum ``ferroq_jobs`` from the workers when jobs churn faster than autovacuum looks.

Every job leaves two dead row versions (the claim's update and the delete). The migration sets
aggressive per-table autovacuum thresholds, but the autovacuum launcher visits a database only
every ``autovacuum_naptime`` (a server setting, 60 s by default), and until a vacuum runs the
claim walks the dead entries at the head of its index, so a sustained drain slows down (the
measurement is in docs/performance.md). A vacuum of a table that is mostly dead rows is quick.

So a worker process that has deleted ``every`` jobs since the last vacuum (and at least
``min_interval`` seconds ago) runs ``VACUUM ferroq_jobs`` on a background thread. A
session-level advisory lock keeps it to one process at a time (behind a pooler in transaction
mode, where the session is not ours, ``VACUUM (SKIP_LOCKED)`` does instead); any error (a role
that does not own the table gets a warning and nothing happens) is logged and ignored.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from ferroq_postgres.connections import QUERIES, autocommit, fetch

if TYPE_CHECKING:
    import psycopg
    from sqlalchemy.engine import Engine

__all__ = ["Vacuumer"]

log = logging.getLogger("ferroq.postgres")

#: Shortest time between two vacuums started by one process, in seconds.
MIN_INTERVAL = 5.0


class Vacuumer:
    """Counts deleted jobs; past the threshold, vacuums the jobs table in the background."""

    def __init__(
        self,
        engine: Engine,
        *,
        every: int,
        min_interval: float | None = None,
        pooled: bool = False,
    ) -> None:
        self.engine = engine
        self.every = every
        #: Behind a pooler in transaction mode: no session-level lock.
        self.pooled = pooled
        self.min_interval = MIN_INTERVAL if min_interval is None else min_interval
        self._lock = threading.Lock()
        self._deleted = 0
        self._last = time.monotonic()
        self._running = False
        #: Vacuums this process ran (for tests and logs; behind a pooler, ones Postgres may
        #: have skipped for another vacuum of the table count too).
        self.runs = 0

    def note(self, deleted: int) -> None:
        """Record ``deleted`` finished jobs; start a vacuum when one is due."""
        if self.every <= 0 or deleted <= 0:
            return
        with self._lock:
            self._deleted += deleted
            due = (
                not self._running
                and self._deleted >= self.every
                and time.monotonic() - self._last >= self.min_interval
            )
            if not due:
                return
            self._running = True
        threading.Thread(target=self._run, name="ferroq-vacuum", daemon=True).start()

    def _run(self) -> None:
        try:
            with autocommit(self.engine) as conn:
                if self.pooled:
                    self._vacuum(conn, "vacuum_skip_locked")
                # The lock is the session's: taken and released on this one connection.
                elif fetch(conn, "vacuum_lock", prepare=False)[0][0]:
                    try:
                        self._vacuum(conn, "vacuum")
                    finally:
                        fetch(conn, "vacuum_unlock", prepare=False)
        except Exception as exc:  # maintenance only: never fails a job or the worker
            log.warning("ferroq: VACUUM ferroq_jobs failed (%s); autovacuum remains", exc)
        finally:
            with self._lock:
                self._running = False
                self._deleted = 0
                self._last = time.monotonic()

    def _vacuum(self, conn: psycopg.Connection[Any], name: str) -> None:
        started = time.monotonic()
        conn.execute(QUERIES[name], prepare=False)
        self.runs += 1
        log.debug("vacuumed ferroq_jobs in %.3fs", time.monotonic() - started)
