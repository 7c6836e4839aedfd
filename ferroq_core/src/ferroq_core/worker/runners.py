"""The runners: where a worker's claimed jobs execute (sync ones on the job threads, async ones
on one event loop thread) and from where each attempt's outcome is posted to the main thread.

The main thread decides what to start (:meth:`Runners.start`); a runner begins the attempt
(marks it running, logs it, fires ``ferroq_job_started``), executes it and posts the outcome
to the inbox. Nothing here settles or writes anything back.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ferroq_core.runtime import fire
from ferroq_core.worker.attempt import execute, execute_async
from ferroq_core.worker.outcome import describe_row
from ferroq_core.worker.threads import JobThreads, LoopThread

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ferroq_core.runtime import Runtime
    from ferroq_core.worker.channel import WorkerChannel
    from ferroq_core.worker.inbox import Inbox
    from ferroq_core.worker.running import Running, RunningSet

__all__ = ["Runners"]

log = logging.getLogger("ferroq.worker")


class Runners:
    """A worker's job threads and event loop thread (the latter made at the first async job).

    :param running: the worker's running set (a record begins there, or not at all when the
        worker gave it up first).
    :param inbox: where outcomes are posted.
    :param channel: what running jobs ask of the heartbeat thread.
    """

    def __init__(
        self,
        runtime: Runtime,
        worker_id: str,
        running: RunningSet,
        inbox: Inbox,
        channel: WorkerChannel,
    ) -> None:
        self._runtime = runtime
        self._worker_id = worker_id
        self._running = running
        self._inbox = inbox
        self._channel = channel
        self._threads = JobThreads(self._run_sync)
        self._loop_thread: LoopThread | None = None
        #: Whether a plugin implements ``ferroq_job_started`` (looked up once per claim).
        self._started_hook = True

    def start(self, runs: Iterable[Running]) -> None:
        """Start these attempts: the sync ones handed to the threads in one call."""
        # Looked up once per claim, not per job: a plugin registered meanwhile is seen by
        # the next claim's jobs.
        self._started_hook = bool(self._runtime.pm.hook.ferroq_job_started.get_hookimpls())
        sync: list[Running] = []
        for running in runs:
            if running.is_async:
                if self._loop_thread is None:
                    self._loop_thread = LoopThread()
                running.future = self._loop_thread.submit(self._run_async(running))
            else:
                sync.append(running)
        if sync:
            self._threads.submit_all(sync)

    def stop(self, budget: float) -> None:
        """Stop the threads (a job thread still running a job is left to finish or die with
        the process; the event loop gets ``budget`` seconds)."""
        self._threads.stop()
        if self._loop_thread is not None:
            self._loop_thread.stop(budget)

    def _begin(self, running: Running) -> bool:
        if not self._running.begin(running):
            return False
        row = running.row
        if log.isEnabledFor(logging.INFO):  # describe_row() is not free: only when logged
            log.info("%s: started", describe_row(row))
        if self._started_hook:
            fire(self._runtime.pm, "ferroq_job_started", row=row, worker_id=self._worker_id)
        return True

    def _run_sync(self, running: Running) -> None:
        if self._begin(running):
            outcome = execute(
                self._runtime,
                running.row,
                timeout=running.timeout,
                channel=self._channel,
                stop=running.stop,
            )
            self._inbox.post(running, outcome)

    async def _run_async(self, running: Running) -> None:
        if self._begin(running):
            outcome = await execute_async(
                self._runtime,
                running.row,
                timeout=running.timeout,
                channel=self._channel,
                stop=running.stop,
            )
            self._inbox.post(running, outcome)
