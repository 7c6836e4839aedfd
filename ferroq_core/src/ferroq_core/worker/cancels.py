"""A worker's side of cancellation: asking running jobs to stop when a heartbeat says so, and
sweeping cancelled jobs that lost their worker (docs/pause-and-cancel.md).

A cancel request reaches a worker in its heartbeat's reply (``ControlStore.heartbeat_cancels``).
The job's :class:`~ferroq_core.context.StopSignal` is set (a sync handler sees
``current_job().should_stop()``), an async handler's task is cancelled, and under
``--processes`` the supervisor is told, so it kills the child if the job has not ended within
its grace period. The attempt then ends as :class:`~ferroq_core.JobCancelled` and is settled
as cancelled (:func:`~ferroq_core.controlling.settle_cancelled`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ferroq_core.controlling import cancelled_rows
from ferroq_core.worker.outcome import describe_row

if TYPE_CHECKING:
    from collections.abc import Collection

    from ferroq_core.runtime import Runtime
    from ferroq_core.worker.report import Reporter
    from ferroq_core.worker.running import RunningSet

__all__ = ["Sweeper", "ask_to_stop"]

log = logging.getLogger("ferroq.worker")


def ask_to_stop(running: RunningSet, ids: frozenset[int], reporter: Reporter | None) -> None:
    """Ask the jobs among ``ids`` to stop (any thread: the heartbeat's calls it)."""
    for run in running.ask_to_stop(ids):
        log.warning("%s: cancel requested, stopping it", describe_row(run.row))
        if run.is_async and run.future is not None:
            run.future.cancel()
        if reporter is not None and run.started_at is not None:
            reporter.cancelling(run.row.id)


class Sweeper:
    """Removes the cancelled jobs that no worker will stop: given back to pending, or claimed
    by dead workers (before their claims are taken back, so they are neither retried nor
    failed); each gets its ``cancelled()`` and ``ferroq_job_cancelled`` here.

    Housekeeping: a sweep that fails (the database is down, the worker's role may not delete)
    raises; the reaper pass that made it reports it with the pass's other failures and tries
    again at the next pass (:meth:`~ferroq_core.worker.leases.LeaseKeeper.reap`).
    """

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def sweep(self, holders: Collection[str] = ()) -> None:
        """One sweep; ``holders``: workers known to be dead, whose claims are taken back next."""
        rows = self._runtime.backend.sweep_cancelled(holders)
        for row in rows:
            log.warning("%s: cancelled, removed (its worker had stopped)", describe_row(row))
        cancelled_rows(self._runtime, rows, running=True)
