"""Cross-process change detection for SQLite: ``PRAGMA data_version`` on one connection.

SQLite has no LISTEN/NOTIFY. ``PRAGMA data_version`` on a connection changes whenever any
*other* connection (in this process or another) commits to the file, and costs a couple of
microseconds, so an idle worker can poll it often and only query the jobs table after a
change. The watcher's connection never writes, so every commit counts as a change.
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = ["ChangeWatcher", "PollInterval"]


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
                cur = self._raw.driver_connection.execute("PRAGMA data_version")
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
        with self._lock:
            self._current = self.low

    def next(self, cap: float) -> float:
        """The next sleep, at most ``cap`` (and at most ``high`` when set)."""
        with self._lock:
            value = self._current
            limit = cap if self.high is None else min(cap, self.high)
            self._current = min(max(self.low, limit), self._current * self.GROWTH)
            return max(0.0, min(value, limit))
