"""The runners' channel to the worker's main thread: finished attempts, and the wake-up that
ends the main thread's sleep.

The main thread sleeps on an event, or inside the backend's ``wait_for_jobs`` when it is idle
(a dispatch in this process or a database notification wakes it there). A runner posts its
outcome, then sets the event, then wakes the backend only if the main thread sleeps in
``wait_for_jobs``. No wake-up is lost: the main thread marks itself idle before it looks at
the event and the outcomes a last time.
"""

from __future__ import annotations

import collections
import logging
import threading
from typing import TYPE_CHECKING, final

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ferroq_core.storage.protocol import Backend
    from ferroq_core.worker.outcome import Outcome
    from ferroq_core.worker.running import Running

__all__ = ["Inbox"]

log = logging.getLogger("ferroq.worker")


@final
class Inbox:
    """Finished attempts posted by the runners, taken by the main thread.

    :param backend: the store whose ``wait_for_jobs`` the idle main thread sleeps in.
    :param queues: the worker's queues (what ``wait_for_jobs`` waits for).
    """

    def __init__(self, backend: Backend, queues: Sequence[str]) -> None:
        self._backend = backend
        self._queues = queues
        # A deque, not a queue: nobody blocks on it (the event does the waking), and its
        # append and popleft are atomic, so neither side takes a lock for it.
        self._done: collections.deque[tuple[Running, Outcome]] = collections.deque()
        self._event = threading.Event()
        #: Set while the main thread sleeps in ``backend.wait_for_jobs``.
        self._idle_waiting = False

    # -- runners' side -----------------------------------------------------------------------
    def post(self, running: Running, outcome: Outcome) -> None:
        """Hand a finished attempt to the main thread and wake it."""
        self._done.append((running, outcome))
        # Every finished job wakes the main thread: the event's lock is skipped when it is
        # already set (the main thread clears it only before it looks at the outcomes again),
        # and the backend's wake-up (a lock and a notify) unless the main thread sleeps there.
        if not self._event.is_set():
            self._event.set()
        if self._idle_waiting:
            self._backend.wake()

    def wake(self) -> None:
        """End the main thread's sleep, wherever it sleeps (a stop request). Any thread."""
        self._event.set()
        self._backend.wake()

    # -- main thread's side ------------------------------------------------------------------
    def take(self) -> list[tuple[Running, Outcome]]:
        """Every attempt posted since the last call, in order."""
        done = self._done
        pop = done.popleft
        taken: list[tuple[Running, Outcome]] = []
        while done:
            taken.append(pop())
        return taken

    def sleep(self, timeout: float, *, idle: bool) -> None:
        """Sleep up to ``timeout`` seconds or until woken; at once when already woken.

        :param timeout: the longest sleep, in seconds.
        :param idle: no job is due: sleep in ``backend.wait_for_jobs``, so a new job wakes it.
        """
        timeout = max(0.0, timeout)
        self._idle_waiting = idle
        try:
            if self._event.is_set() or self._done:
                self._event.clear()
                return
            if idle:
                try:
                    self._backend.wait_for_jobs(self._queues, timeout)
                except Exception as exc:  # a broken wake-up channel degrades to polling
                    log.debug("waiting for notifications failed: %s", exc)
                    self._event.wait(timeout)
            else:
                self._event.wait(timeout)
        finally:
            self._idle_waiting = False
        self._event.clear()
