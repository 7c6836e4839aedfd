"""Gauges of the queue's state, read from the database when scraped, through a cache.

One ``get_stats()`` (a count per queue and state, and the oldest due job's age) serves every
scrape within ``ttl`` seconds, and concurrent scrapes wait for one read rather than each
running their own: a hundred scrapes a second cost the database one query a second. The
query counts every row, so on a large backlog it is slow (17 ms of CPU per 100,000 rows on
SQLite, from its indexes): a read is then reused for at least 100 times as long as it took,
which keeps reading the state under 1% of the time whatever the table's size.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from prometheus_client.core import GaugeMetricFamily

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from ferroq_core import QueueStats

__all__ = ["DEFAULT_TTL", "MAX_READ_SHARE", "QueueStateCollector"]

log = logging.getLogger("ferroq.prometheus")

#: Seconds a read of the queue's state is reused.
DEFAULT_TTL = 1.0

#: The largest share of the time spent reading the state: a read that took ``t`` seconds is
#: reused for at least ``t / MAX_READ_SHARE`` seconds.
MAX_READ_SHARE = 0.01

_STATES = ("pending", "delayed", "claimed", "failed")


class QueueStateCollector:
    """A prometheus_client collector of ``ferroq_queue_jobs{queue,state}``,
    ``ferroq_queue_oldest_due_age_seconds{queue}`` and ``ferroq_queue_state_up``.

    :param read: returns the current stats (``backend.get_stats``).
    :param ttl: seconds a read is reused.
    :param clock: monotonic seconds (tests pass their own).
    """

    def __init__(
        self,
        read: Callable[[], QueueStats],
        ttl: float = DEFAULT_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read, self._ttl, self._clock = read, ttl, clock
        self._lock = threading.Lock()
        self._stats: QueueStats | None = None
        self._read_at = float("-inf")
        self._hold = ttl
        self._up = False
        #: Database reads made (for tests and the docs' claim about the cache).
        self.reads = 0

    def _current(self) -> tuple[QueueStats | None, bool]:
        with self._lock:
            started = self._clock()
            if started - self._read_at >= self._hold:
                self.reads += 1
                try:
                    self._stats, self._up = self._read(), True
                except Exception as exc:
                    log.warning("reading the queue's state for Prometheus failed: %s", exc)
                    self._stats, self._up = None, False
                # A failed read is cached too: a database in trouble is not asked more often.
                self._read_at = self._clock()
                self._hold = max(self._ttl, (self._read_at - started) / MAX_READ_SHARE)
            return self._stats, self._up

    def describe(self) -> list[Any]:
        # Nothing described up front: registering must not read the database.
        return []

    def collect(self) -> Iterator[Any]:
        stats, up = self._current()
        jobs = GaugeMetricFamily(
            "ferroq_queue_jobs",
            "Jobs in the database by queue and state.",
            labels=["queue", "state"],
        )
        age = GaugeMetricFamily(
            "ferroq_queue_oldest_due_age_seconds",
            "Seconds the oldest due pending job has waited (0 when none is due).",
            labels=["queue"],
        )
        for queue in stats.queues if stats is not None else ():
            for state in _STATES:
                jobs.add_metric([queue.queue, state], getattr(queue, state))
            age.add_metric([queue.queue], queue.oldest_pending_age or 0.0)
        yield jobs
        yield age
        yield GaugeMetricFamily(
            "ferroq_queue_state_up",
            "1 when the last read of the queue's state from the database succeeded.",
            value=1.0 if up else 0.0,
        )
