"""``drain()``: run every eligible job of a real backend to completion, in this process.

Each job goes through the worker's own attempt logic (:mod:`ferroq_core.worker.attempt`):
claim, decode, scopes, ``handle()``, then the fenced complete / retry-with-backoff / fail, with
``failed()`` and the lifecycle hooks. Jobs that the drained jobs dispatch are run too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from ferroq_core.clock import seconds
from ferroq_core.config import QueueConfig
from ferroq_core.errors import ConfigError
from ferroq_core.queue import Queue
from ferroq_core.runtime import Runtime, fire
from ferroq_core.storage.protocol import TestingStore
from ferroq_core.worker.attempt import execute, settle
from ferroq_core.worker.identity import new_worker_id

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import timedelta

    from ferroq_core.history_records import Progress
    from ferroq_core.records import JobRow
    from ferroq_core.storage.protocol import Backend

__all__ = ["DrainChannel", "DrainResult", "drain"]


@attrs.frozen
class DrainResult:
    """What a :func:`drain` did, counted per attempt."""

    #: Attempts that succeeded (their jobs were deleted).
    succeeded: int = 0
    #: Attempts that failed with attempts left (their jobs were released for a retry).
    retried: int = 0
    #: Attempts that parked their job as failed (attempts spent, or a permanent error).
    failed: int = 0
    #: Attempts whose outcome could not be written back because the lease was lost.
    stale: int = 0
    #: Attempts whose handler released the job (``ctx.release()``; not counted as attempts
    #: by the job).
    released: int = 0
    #: ``(row, error)`` of every attempt that raised, in order.
    errors: tuple[tuple[JobRow, BaseException], ...] = attrs.field(
        default=(), repr=lambda errors: f"<{len(errors)} errors>"
    )

    @property
    def attempts(self) -> int:
        """Every attempt run."""
        return self.succeeded + self.retried + self.failed + self.stale + self.released


def _resolve(runtime: Runtime | None, backend: Backend | None) -> Runtime:
    if runtime is not None:
        if backend is not None and backend is not runtime.backend:
            return attrs.evolve(runtime, backend=backend)
        return runtime
    if backend is None:
        return Queue.runtime()
    if Queue.is_initialized():
        return attrs.evolve(Queue.runtime(), backend=backend)
    config = attrs.evolve(QueueConfig.from_env(), connection="db")
    return Runtime.build(config=config, backend=backend)


def _horizon(advance_time: bool | float | timedelta) -> tuple[bool, float | None]:
    if advance_time is True:
        return True, None
    if advance_time is False:
        return False, None
    value = seconds(advance_time)
    if value < 0:
        raise ValueError(f"advance_time must not be negative, got {value}")
    return True, value


def drain(
    queues: str | Sequence[str] | None = None,
    *,
    runtime: Runtime | None = None,
    backend: Backend | None = None,
    advance_time: bool | float | timedelta = False,
    max_jobs: int = 1000,
    raise_errors: bool = False,
) -> DrainResult:
    """Run every eligible job of ``queues`` until none is left, one at a time, in this thread.

    Jobs become eligible as a worker would see them: pending and due. With ``advance_time``
    the clock is moved forward whenever the queues run dry, so delayed jobs and retries become
    due without sleeping: ``True`` as far as needed, a number of seconds (or a ``timedelta``)
    at most that far. Job timeouts are not enforced (the handler runs in this thread).

    :param queues: a queue name or names in strict priority order; default every queue that
        has jobs (alphabetical).
    :param runtime: default the process-wide queue's runtime. Jobs dispatched by the drained
        jobs go through the process-wide queue, so install the same runtime there
        (the ``ferroq_sqlite_queue`` and ``ferroq_postgres_queue`` fixtures do).
    :param backend: drain this backend (with the runtime's or a default configuration).
    :param advance_time: see above.
    :param max_jobs: fail when more attempts than this would run (a job that keeps
        dispatching itself).
    :param raise_errors: re-raise the first error a job raises (after its outcome is
        written), instead of only counting it.
    :return: the counts of succeeded, retried and failed attempts, and the errors.
    :raises AssertionError: when ``max_jobs`` is reached with jobs still eligible.
    """
    rt = _resolve(runtime, backend)
    names = [queues] if isinstance(queues, str) else (None if queues is None else list(queues))
    advancing, within = _horizon(advance_time)
    store = rt.backend
    worker_id = new_worker_id()
    counts = {"succeeded": 0, "retrying": 0, "failed": 0, "stale": 0, "released": 0}
    channel = DrainChannel(store, worker_id)
    errors: list[tuple[JobRow, BaseException]] = []
    while True:
        current = names if names is not None else [q.queue for q in store.get_stats().queues]
        rows = store.claim(current, worker_id, 1) if current else []
        if not rows:
            if advancing and _testing(store).make_due(names, within=within) > 0:
                continue
            break
        row = rows[0]
        if sum(counts.values()) >= max_jobs:
            store.requeue([row.lease], count_attempt=False)
            raise AssertionError(
                f"drain() ran {max_jobs} attempts and jobs are still eligible (next: "
                f"{row.job_type} #{row.id} on {row.queue!r}): a job keeps dispatching more "
                "jobs or retrying; raise max_jobs if that is expected"
            )
        fire(rt.pm, "ferroq_jobs_claimed", rows=rows, worker_id=worker_id)
        fire(rt.pm, "ferroq_job_started", row=row, worker_id=worker_id)
        outcome = execute(rt, row, channel=channel)
        status = settle(rt, outcome)
        counts[status] = counts.get(status, 0) + 1
        if outcome.error is not None and status != "released":
            errors.append((row, outcome.error))
            if raise_errors:
                raise outcome.error
    return DrainResult(
        succeeded=counts["succeeded"],
        retried=counts["retrying"],
        failed=counts["failed"],
        stale=counts["stale"],
        released=counts["released"],
        errors=tuple(errors),
    )


class DrainChannel:
    """The actions of a job ``drain()`` runs: a heartbeat extends its lease at once, and
    progress is written at once (a test reads it right after the call)."""

    def __init__(self, store: Backend, worker_id: str) -> None:
        self._store = store
        self._worker_id = worker_id

    def heartbeat(self, job_id: int) -> bool:
        rows = [r for r in [self._store.get_job(job_id)] if r is not None]
        leases = [r.lease for r in rows if r.claimed_by == self._worker_id]
        return bool(leases) and job_id in self._store.heartbeat(leases)

    def progress(self, job_id: int, progress: Progress) -> None:
        self._store.write_progress({job_id: progress})


def _testing(store: Backend) -> TestingStore:
    if not isinstance(store, TestingStore):
        raise ConfigError(
            f"drain(advance_time=...) needs a backend with make_due (the testing role); "
            f"the {store.name} backend has none: drain without advance_time"
        )
    return store
