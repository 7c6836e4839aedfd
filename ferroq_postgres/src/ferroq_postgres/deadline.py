"""A client-side deadline on the worker's operations: past it, the connection is cut off.

A statement waiting on a silent network (packets dropped, no RST) or on a server that does not
answer blocks in the driver with no timeout of its own. A server-side ``statement_timeout``
cannot help when the server's answer never arrives, and the TCP bounds (keepalives,
``tcp_user_timeout``) only act at the kernel's pace. So one daemon thread per process watches
the armed operations and, once one is overdue, shuts its socket down: the blocked driver call
then fails at once as a broken connection (SQLAlchemy's pool drops it). This needs nothing
from the server or a pooler in between (PgBouncer in transaction mode included).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import math
import socket
import threading
import time
from typing import final

__all__ = ["Watchdog", "watchdog"]

log = logging.getLogger("ferroq.postgres")


@final
class Watchdog:
    """Shuts down the sockets of operations that outlive their deadline."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        #: token -> socket descriptor, for every armed operation.
        self._armed: dict[int, int] = {}
        self._heap: list[tuple[float, int]] = []
        self._tokens = itertools.count(1)
        self._thread: threading.Thread | None = None
        #: When the thread wakes next on its own (``inf``: only when notified).
        self._wakes_at = math.inf

    def arm(self, fd: int, seconds: float) -> int:
        """Watch the operation on socket ``fd`` for ``seconds``; returns its token."""
        at = time.monotonic() + seconds
        with self._cond:
            heap, armed = self._heap, self._armed
            # Operations mostly end in the order they began: dropping the ended ones at the
            # head here keeps the heap as small as the number of operations in flight.
            while heap and heap[0][1] not in armed:
                heapq.heappop(heap)
            token = next(self._tokens)
            armed[token] = fd
            heapq.heappush(heap, (at, token))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._watch, name="ferroq-pg-deadline", daemon=True
                )
                self._thread.start()
            elif at < self._wakes_at:
                # Only a deadline earlier than the thread's own wake-up needs it awake: every
                # operation arms one, and waking a thread per statement cost a Postgres drain
                # 12-15% of its throughput (the later deadlines are found when it wakes).
                self._cond.notify()
        return token

    def reset(self) -> None:
        """Forget everything (in a forked child: the parent's thread and lock are not ours)."""
        self._cond = threading.Condition(threading.Lock())
        self._armed = {}
        self._heap = []
        self._thread = None
        self._wakes_at = math.inf

    def disarm(self, token: int) -> bool:
        """The operation ended; False when its deadline had already cut it off."""
        with self._cond:
            return self._armed.pop(token, None) is not None

    def _watch(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                while self._heap and (
                    self._heap[0][0] <= now or self._heap[0][1] not in self._armed
                ):
                    _, token = heapq.heappop(self._heap)
                    fd = self._armed.pop(token, None)
                    if fd is not None:
                        _cut(fd)
                self._wakes_at = self._heap[0][0] if self._heap else math.inf
                self._cond.wait(self._wakes_at - now if self._heap else None)


def _cut(fd: int) -> None:
    """Shut the socket down under the blocked driver call (held under the watchdog's lock,
    so it never reaches a connection that was given back and reused meanwhile)."""
    with contextlib.suppress(OSError):
        sock = socket.socket(fileno=socket.dup(fd))
        try:
            sock.shutdown(socket.SHUT_RDWR)
        finally:
            sock.close()


#: The process's watchdog (its thread starts on the first armed operation).
watchdog = Watchdog()
