"""Idle waits on SQLite: local wake-ups, other processes' commits, delayed jobs' due times.

SQLite has no LISTEN/NOTIFY. ``PRAGMA data_version`` on a connection changes whenever any
*other* connection (in this process or another) commits to the file, and costs a couple of
microseconds, so an idle worker can poll it often and only query the jobs table after a
change. The watcher's connection never writes, so every commit counts as a change.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from ferroq_core.clock import to_micros, utcnow
from ferroq_core.errors import FerroqError
from ferroq_sqlite.queries import sql

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable, Sequence

    from sqlalchemy.engine import Engine

    from ferroq_core.storage.wakeup import WakeSignal

__all__ = ["ChangeWatcher", "IdleWait", "PollInterval", "due_in"]

log = logging.getLogger("ferroq.sqlite")


class ChangeWatcher:
    """Reads ``PRAGMA data_version`` on a connection of its own (thread-safe)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._raw: Any = None
        self._closed = False

    def version(self) -> int | None:
        """The current data version, or None when the database cannot be read right now."""
        with self._lock:
            if self._closed:
                return None
            try:
                if self._raw is None:
                    self._raw = self._engine.raw_connection()
                cur = self._raw.driver_connection.execute(sql("data_version"))
                row = cur.fetchone()
                cur.close()
                return int(row[0])
            except Exception:
                # A broken connection is replaced on the next call; the caller falls back to
                # its timeout, and the next claim reports a real error.
                self._drop()
                return None

    def _drop(self) -> None:
        raw, self._raw = self._raw, None
        if raw is not None:
            # Already broken: there is nothing left to release if this fails too.
            with contextlib.suppress(Exception):
                raw.invalidate()

    def close(self) -> None:
        """Release the connection; :meth:`version` then returns None."""
        with self._lock:
            self._closed = True
            raw, self._raw = self._raw, None
        if raw is not None:
            raw.close()


class PollInterval:
    """The idle poll's interval: ``low`` right after a change, growing by half each idle poll.

    Shared by every waiter of a backend, so one thread seeing a change makes all poll fast.
    """

    GROWTH = 1.5

    def __init__(self, low: float, high: float | None) -> None:
        self.low = low
        self.high = high
        self._current = low
        self._lock = threading.Lock()

    def changed(self) -> None:
        """A change was seen: poll fast again."""
        with self._lock:
            self._current = self.low

    def next(self, cap: float) -> float:
        """The next sleep, at most ``cap`` (and at most ``high`` when set)."""
        with self._lock:
            value = self._current
            limit = cap if self.high is None else min(cap, self.high)
            self._current = min(max(self.low, limit), self._current * self.GROWTH)
            return max(0.0, min(value, limit))


def due_in(db: sqlite3.Connection, queues: Sequence[str]) -> float | None:
    """Seconds until the earliest pending job of ``queues`` is due (zero or less: one is due
    now), or None when none is pending."""
    found = [
        db.execute(sql("earliest_due"), {"queue": queue}).fetchone()[0]
        for queue in dict.fromkeys(queues)
    ]
    due = [int(at) for at in found if at is not None]
    if not due:
        return None
    return (min(due) - to_micros(utcnow())) / 1e6


class IdleWait:
    """``wait_for_jobs`` for one backend: until a local wake-up, a commit by another
    connection that leaves a job due on the queues, or a delayed job's time.

    Commits are seen through ``PRAGMA data_version``, polled every ``poll_min`` seconds right
    after a change and less often the longer nothing changes (up to ``poll_max``, or the
    timeout). A wake or change that came while the calling thread was busy claiming counts
    too: each thread remembers the last wake generation and data version it saw.
    """

    def __init__(
        self,
        signal: WakeSignal,
        watcher: ChangeWatcher,
        interval: PollInterval,
        read_due_in: Callable[[Sequence[str]], float | None],
    ) -> None:
        self._signal = signal
        self._watcher = watcher
        self._interval = interval
        self._read_due_in = read_due_in
        self._seen = threading.local()

    def wait(self, queues: Sequence[str], timeout: float) -> bool:
        """Block up to ``timeout`` seconds; True when jobs may be available."""
        deadline = time.monotonic() + max(0.0, timeout)
        generation = self._signal.generation
        last_generation = getattr(self._seen, "generation", generation)
        self._seen.generation = generation
        if generation != last_generation:
            return True
        self._saw_change(self._watcher.version())
        due_at = self._next_due(queues)
        while True:
            now = time.monotonic()
            if due_at is not None and due_at <= now:
                return True
            end = deadline if due_at is None else min(deadline, due_at)
            if end <= now:
                return end < deadline
            if self._signal.wait_since(generation, self._interval.next(end - now)):
                self._seen.generation = self._signal.generation
                return True
            if self._saw_change(self._watcher.version()):
                due_at = self._next_due(queues)

    def _saw_change(self, version: int | None) -> bool:
        """Record the data version this thread saw; True when it differs from the last one."""
        if version is None or version == getattr(self._seen, "version", None):
            return False
        self._seen.version = version
        self._interval.changed()
        return True

    def _next_due(self, queues: Sequence[str]) -> float | None:
        """When (on the monotonic clock) the earliest pending job of ``queues`` is due; None
        when none is, or when the database cannot say now (the wait then runs to its
        timeout, and the next claim reports a real error)."""
        if not queues:
            return None
        try:
            seconds = self._read_due_in(queues)
        except FerroqError as exc:
            log.debug("could not look for due jobs (%s); waiting for the timeout", exc)
            return None
        return None if seconds is None else time.monotonic() + seconds
