"""The storage contract: everything the worker, dispatch and the CLI need from a database.

The worker sees only this protocol (no SQL, no driver). Every finishing write is fenced by a
:class:`~ferroq_core.records.Lease`: it matches the row only while ``status = 'claimed'`` and
``claimed_by`` and ``attempts`` are still the lease's, and reports whether it matched, so a
late or zombie worker can never overwrite a job that was reclaimed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Sequence
    from datetime import datetime

    from ferroq_core.records import (
        EnqueueRequest,
        EnqueueResult,
        JobRow,
        JobState,
        Lease,
        QueueStats,
        ReapResult,
    )

__all__ = ["Backend"]


@runtime_checkable
class Backend(Protocol):
    """A storage backend. Implementations must be safe to share between threads."""

    #: Short name, the same as the plugin's entry point (``sqlite``, ``postgres``).
    name: str

    # -- lifecycle ---------------------------------------------------------------------------
    def migrate(self) -> list[str]:
        """Apply pending schema migrations; return the names applied (idempotent)."""

    def schema_version(self) -> int:
        """The schema version recorded in the database (0 when never migrated)."""

    def check_schema(self) -> None:
        """Raise :class:`SchemaMissing` or :class:`SchemaOutdated` unless ready."""

    def now(self) -> datetime:
        """The clock every comparison uses (the database's on PostgreSQL)."""

    def close(self) -> None:
        """Release connections and listeners."""

    # -- dispatch ----------------------------------------------------------------------------
    def enqueue(
        self, requests: Sequence[EnqueueRequest], *, connection: Any = None
    ) -> list[EnqueueResult]:
        """Insert jobs in one transaction (the caller's, when ``connection`` is given: a
        SQLAlchemy ``Connection`` or ``Session``). Results are in request order."""

    # -- worker ------------------------------------------------------------------------------
    def claim(self, queues: Sequence[str], worker_id: str, limit: int) -> list[JobRow]:
        """Claim up to ``limit`` eligible jobs, from ``queues`` in strict priority order, in one
        transaction. Sets the claim fields and increments ``attempts``."""

    def complete(self, leases: Collection[Lease]) -> set[int]:
        """Delete succeeded jobs; return the ids whose lease still matched."""

    def release(
        self, lease: Lease, *, delay: float, error: str | None, count_attempt: bool = True
    ) -> bool:
        """Return a claimed job to pending after ``delay`` seconds. With
        ``count_attempt=False`` the claim's attempt is given back (the job never started)."""

    def fail(self, lease: Lease, *, error: str) -> bool:
        """Park a claimed job as failed with ``error``."""

    def heartbeat(self, leases: Collection[Lease]) -> set[int]:
        """Extend the leases; return the ids still held (a missing id was reaped)."""

    def reap(self, visibility_timeout: float) -> ReapResult:
        """Return claims whose heartbeat is older than ``visibility_timeout`` seconds to
        pending, or park them as failed when no attempts are left."""

    def requeue_claimed_by(self, worker_id: str, *, count_attempt: bool = True) -> int:
        """Return every job claimed by ``worker_id`` to pending; return how many."""

    def requeue(self, leases: Collection[Lease], *, count_attempt: bool = True) -> set[int]:
        """Return these claimed jobs to pending at once; return the ids that matched."""

    def claimed_by_host(self, host: str) -> list[str]:
        """Worker ids (``host:pid:uuid``) on ``host`` that hold claims."""

    def reap_startup_claims(self, host: str, alive: Callable[[int], bool]) -> int:
        """Requeue claims of workers on ``host`` whose process is gone; return how many."""

    def make_due(self, queues: Sequence[str] | None = None, *, within: float | None = None) -> int:
        """Make delayed pending jobs of ``queues`` (None: every queue) eligible now, as if the
        clock had moved forward ``within`` seconds (None: as far as needed). Used by the
        testing kit's ``drain(advance_time=...)``; returns how many jobs became due."""

    def wait_for_jobs(self, queues: Sequence[str], timeout: float) -> bool:
        """Block up to ``timeout`` seconds or until jobs may be available on ``queues``: a
        notification of new jobs, or the earliest pending (delayed) job of ``queues`` becoming
        due, so it starts at its time and not at the caller's next poll. Returns True when it
        ended for one of those, False on timeout. Must return early after :meth:`wake`."""

    def wake(self) -> None:
        """Interrupt every :meth:`wait_for_jobs` of this process."""

    # -- introspection and operations ---------------------------------------------------------
    def get_job(self, job_id: int) -> JobRow | None:
        """One job by id, or None."""

    def list_jobs(
        self,
        *,
        state: JobState | None = None,
        queue: str | None = None,
        job_type: str | None = None,
        tenant_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[JobRow]:
        """Jobs matching every given filter (failed newest first, others oldest first)."""

    def get_stats(self) -> QueueStats:
        """Counts per queue."""

    def retry_failed(
        self,
        ids: Collection[int] | None = None,
        *,
        queue: str | None = None,
        job_type: str | None = None,
    ) -> int:
        """Return failed jobs to pending with attempts reset (tenant and payload kept);
        ``ids=None`` means every failed job matching the filters. A job whose idempotency key
        is held by another active job is left failed. Returns how many moved."""

    def delete_jobs(self, ids: Collection[int], *, state: JobState | None = None) -> int:
        """Delete jobs by id (only in ``state`` when given); return how many."""

    def flush_failed(self, *, older_than: float | None = None) -> int:
        """Delete failed jobs (only those failed more than ``older_than`` seconds ago)."""

    def clear_queue(self, queue: str) -> int:
        """Delete the pending (and delayed) jobs of ``queue``; return how many."""

    def worker_heartbeats(self) -> dict[str, datetime]:
        """The latest heartbeat of every worker that holds claims."""
