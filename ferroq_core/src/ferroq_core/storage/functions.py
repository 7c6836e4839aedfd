"""The seed crate's storage functions, each taking an optional backend.

Without ``backend`` they use the process-wide :class:`~ferroq_core.Queue` (and raise
:class:`~ferroq_core.errors.NotInitialized` before ``Queue.init``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ferroq_core.processes import pid_alive
from ferroq_core.queue import Queue
from ferroq_core.records import JobState
from ferroq_core.storage.rules import reap_dead_on_host

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ferroq_core.records import (
        EnqueueRequest,
        EnqueueResult,
        JobRow,
        Lease,
        QueueStats,
        ReapResult,
    )
    from ferroq_core.storage.protocol import Backend

__all__ = [
    "claim",
    "delete_job",
    "enqueue",
    "fail_job",
    "get_delayed_jobs",
    "get_failed_jobs",
    "get_pending_jobs",
    "get_stats",
    "reap_startup_claims",
    "reaper",
    "release_job",
    "requeue_claimed_by",
]


def _backend(backend: Backend | None) -> Backend:
    if backend is not None:
        return backend
    return Queue.backend()


def enqueue(
    request: EnqueueRequest, *, backend: Backend | None = None, connection: Any = None
) -> EnqueueResult:
    """Insert one job (inside ``connection``'s transaction when given)."""
    return _backend(backend).enqueue([request], connection=connection)[0]


def claim(
    queues: Sequence[str], worker_id: str, limit: int = 1, *, backend: Backend | None = None
) -> list[JobRow]:
    """Claim up to ``limit`` eligible jobs from ``queues`` in priority order."""
    return _backend(backend).claim(queues, worker_id, limit)


def delete_job(lease: Lease, *, backend: Backend | None = None) -> bool:
    """Delete a finished job; False when the lease no longer matched (a zombie write)."""
    return lease.id in _backend(backend).complete([lease])


def release_job(
    lease: Lease, delay: float = 0.0, error: str | None = None, *, backend: Backend | None = None
) -> bool:
    """Return a claimed job to pending after ``delay`` seconds."""
    return _backend(backend).release(lease, delay=delay, error=error)


def fail_job(lease: Lease, error: str, *, backend: Backend | None = None) -> bool:
    """Park a claimed job as failed."""
    return _backend(backend).fail(lease, error=error)


def requeue_claimed_by(worker_id: str, *, backend: Backend | None = None) -> int:
    """Return every job claimed by ``worker_id`` to pending (a job on its last attempt stays
    claimed: the reaper fails it)."""
    return _backend(backend).requeue_claimed_by(worker_id)


def reap_startup_claims(host: str, *, backend: Backend | None = None) -> ReapResult:
    """Take back the claims of dead worker processes on ``host`` (checked by pid): back to
    pending, or failed when no attempts are left (the caller runs their ``failed()``)."""
    return reap_dead_on_host(_backend(backend), host, pid_alive)


def reaper(visibility_timeout: float, *, backend: Backend | None = None) -> ReapResult:
    """One reaper pass: expired leases back to pending, or failed when attempts are spent."""
    return _backend(backend).reap(visibility_timeout)


def get_pending_jobs(
    queue: str | None = None, limit: int = 100, *, backend: Backend | None = None
) -> list[JobRow]:
    """Pending jobs that are eligible now."""
    return _backend(backend).list_jobs(state=JobState.PENDING, queue=queue, limit=limit)


def get_delayed_jobs(
    queue: str | None = None, limit: int = 100, *, backend: Backend | None = None
) -> list[JobRow]:
    """Pending jobs whose time has not come."""
    return _backend(backend).list_jobs(state=JobState.DELAYED, queue=queue, limit=limit)


def get_failed_jobs(
    queue: str | None = None, limit: int = 100, *, backend: Backend | None = None
) -> list[JobRow]:
    """Failed jobs, newest first."""
    return _backend(backend).list_jobs(state=JobState.FAILED, queue=queue, limit=limit)


def get_stats(*, backend: Backend | None = None) -> QueueStats:
    """Counts per queue."""
    return _backend(backend).get_stats()
