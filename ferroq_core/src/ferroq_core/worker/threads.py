"""Where a worker's jobs run: :class:`JobThreads` for plain ``handle()``, one
:class:`LoopThread` (an asyncio event loop) for ``async def``.

Runners only execute and post the outcome back to the main loop. A sync job that overruns its
timeout cannot be killed inside a thread, so its thread is *abandoned*: the pool starts a fresh
thread for the next job, and the late outcome is ignored (and would be rejected by fencing
anyway).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import queue
import threading
import time
from typing import TYPE_CHECKING, Any, final

if TYPE_CHECKING:
    import concurrent.futures
    from collections.abc import Callable, Coroutine

    from ferroq_core.worker.running import Running

__all__ = ["JobThreads", "LoopThread"]

log = logging.getLogger("ferroq.worker")


@final
class JobThreads:
    """The pool of daemon threads that run sync handlers, started on demand (a worker that
    only runs async jobs starts none) and reused. A thread stuck in an abandoned job never
    comes back: the next job gets a fresh thread, so a timed-out handler never costs a slot.

    Waking a thread costs more than a short job (a futex wake-up and a GIL hand-off; see
    docs/performance.md, "The worker"), so a thread is woken only when needed: while
    jobs wait and no thread is already on its way (``_waking``), one more is woken (or
    started). A thread that finishes a job takes the next waiting one itself. Every waiting
    job therefore has a thread coming for it that is not busy with another job: a slow job
    never delays the start of the others (each thread taking a job wakes the next one while
    more wait), yet a burst of short jobs is run by the few threads already awake.
    """

    def __init__(self, run: Callable[[Running], None], name: str = "ferroq-job") -> None:
        self._pending: collections.deque[Running] = collections.deque()
        #: Wake-up tokens for sleeping threads: True takes work, None ends the thread.
        self._tokens: queue.SimpleQueue[bool | None] = queue.SimpleQueue()
        self._run = run
        self._name = name
        self._count = 0
        self._lock = threading.Lock()
        #: Threads blocked waiting for a token, and threads woken (or started) that have not
        #: looked at ``_pending`` yet.
        self._sleeping = 0
        self._waking = 0
        self._live: set[threading.Thread] = set()

    def _wake_one(self) -> None:
        # Called with the lock held, when jobs wait and no thread is on its way.
        self._waking += 1
        if self._sleeping >= self._waking:
            self._tokens.put(True)
            return
        self._count += 1
        thread = threading.Thread(
            target=self._serve, name=f"{self._name}-{self._count}", daemon=True
        )
        self._live.add(thread)
        thread.start()

    def _take(self, *, woken: bool) -> Running | None:
        """The next waiting job, or None (the caller then sleeps, counted)."""
        with self._lock:
            if woken:
                self._waking -= 1
            if not self._pending:
                self._sleeping += 1
                return None
            item = self._pending.popleft()
            if self._pending and not self._waking:
                self._wake_one()
            return item

    def _serve(self) -> None:
        me = threading.current_thread()
        woken = True  # a new thread was counted as on its way
        try:
            while True:
                item = self._take(woken=woken)
                woken = False
                if item is None:
                    token = self._tokens.get()
                    with self._lock:
                        self._sleeping -= 1
                    if token is None:
                        return
                    woken = True
                    continue
                self._run(item)
                if item.abandoned:
                    # Given up after a timeout (see running.expire): later jobs get a fresh
                    # thread.
                    return
        finally:
            with self._lock:
                self._live.discard(me)

    def submit_all(self, runs: list[Running]) -> None:
        """Queue jobs in order; one thread is woken (or started) if none is on its way, and
        each thread that takes one wakes the next while more wait (see the class)."""
        with self._lock:
            self._pending.extend(runs)
            if not self._waking:
                self._wake_one()

    def stop(self) -> None:
        """Let idle threads exit (running ones are daemons: they never block exit)."""
        with self._lock:
            n = len(self._live)
        for _ in range(n):
            self._tokens.put(None)


@final
class LoopThread:
    """An asyncio event loop on a daemon thread, owned by the worker."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="ferroq-async", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            try:
                pending = asyncio.all_tasks(self.loop)
                for task in pending:
                    task.cancel()
                if pending:
                    self.loop.run_until_complete(
                        asyncio.wait(pending, timeout=1.0, return_when=asyncio.ALL_COMPLETED)
                    )
            except Exception:  # shutting down: nothing left to report to
                log.debug("async loop shutdown", exc_info=True)
            self.loop.close()

    def submit(self, coro: Coroutine[Any, Any, None]) -> concurrent.futures.Future[None]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self, timeout: float = 1.0) -> None:
        if self.loop.is_closed():
            return
        try:
            self.loop.call_soon_threadsafe(self.loop.stop)
        except RuntimeError:  # already closed
            return
        deadline = time.monotonic() + timeout
        self._thread.join(max(0.0, deadline - time.monotonic()))
