"""The storage contract, in the roles its callers use.

Dispatch needs :class:`Dispatcher`; the worker needs :class:`WorkerStore`; the CLI's listings
and operator actions need :class:`Admin`; ``ferroq migrate`` and start-up checks need
:class:`SchemaStore`; pauses and cancellations need
:class:`~ferroq_core.storage.controls.ControlStore`. A backend implements all five as
:class:`Backend`, declares what it can do beyond them in a
:class:`~ferroq_core.records.Capabilities` record, and may implement :class:`TestingStore` for
the testing kit. ``ferroq_core.testing.contract`` is the one
definition of a correct backend.

Every finishing write is fenced by a :class:`~ferroq_core.records.Lease`: it matches the row
only while ``status = 'claimed'`` and ``claimed_by`` and ``attempts`` are still the lease's,
and reports whether it matched, so a late or zombie worker can never overwrite a job that was
reclaimed (see :mod:`ferroq_core.storage.rules`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ferroq_core.storage.controls import ControlStore
from ferroq_core.storage.flow import FlowStore
from ferroq_core.storage.history import HistoryStore
from ferroq_core.storage.results import ResultStore
from ferroq_core.storage.schedules import ScheduleStore
from ferroq_core.storage.unique import UniqueKeys
from ferroq_core.storage.workers import WorkerRegistry

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence
    from datetime import datetime

    from ferroq_core.records import (
        Capabilities,
        EnqueueRequest,
        EnqueueResult,
        JobRow,
        JobState,
        Lease,
        QueueStats,
        ReapResult,
    )
    from ferroq_core.schema import Applied

__all__ = [
    "Admin",
    "Backend",
    "Dispatcher",
    "HistoryStore",
    "ScheduleStore",
    "SchemaStore",
    "TestingStore",
    "WorkerStore",
]


@runtime_checkable
class Dispatcher(Protocol):
    """Writes new jobs."""

    def enqueue(
        self, requests: Sequence[EnqueueRequest], *, connection: Any = None
    ) -> list[EnqueueResult]:
        """Insert jobs in one transaction; results are in request order. A request with an
        idempotency key that an active (pending or claimed) job of its type holds is not
        inserted: its result is that job's id with ``duplicate=True``.

        :param connection: a caller's SQLAlchemy ``Connection`` or ``Session`` (backends whose
            capabilities have ``caller_connection``): the jobs are inserted inside its open
            transaction and commit or roll back with it. Anything else raises ``TypeError``.
        """


@runtime_checkable
class WorkerStore(Protocol):
    """What a worker does with jobs: claim, finish under a lease, keep leases, wait."""

    def now(self) -> datetime:
        """The clock every comparison uses (the database's where ``database_clock``)."""

    def claim(self, queues: Sequence[str], worker_id: str, limit: int) -> list[JobRow]:
        """Claim up to ``limit`` due pending jobs, from ``queues`` in strict order (then by
        priority, ``available_at``, id), in one transaction. Sets ``status = 'claimed'``,
        ``claimed_by``, ``claimed_at``, ``heartbeat_at`` and increments ``attempts``."""

    def complete(self, leases: Collection[Lease]) -> set[int]:
        """Delete succeeded jobs; return the ids whose lease still matched."""

    def release(
        self, lease: Lease, *, delay: float, error: str | None, count_attempt: bool = True
    ) -> bool:
        """Return a claimed job to pending, due after ``delay`` seconds, with ``error`` (capped
        by :func:`~ferroq_core.storage.rules.cap_error`). With ``count_attempt=False`` the
        claim's attempt is given back (the job never started). True if the lease matched."""

    def fail(self, lease: Lease, *, error: str) -> bool:
        """Park a claimed job as failed with ``error`` and ``failed_at``. True if it matched."""

    def heartbeat(self, leases: Collection[Lease]) -> set[int]:
        """Extend the leases; return the ids still held (a missing id was reaped)."""

    def reap(self, visibility_timeout: float) -> ReapResult:
        """Return claims whose heartbeat is older than ``visibility_timeout`` seconds to
        pending (``available_at`` kept), or park them as failed when no attempts are left;
        the error is :func:`~ferroq_core.storage.rules.lease_expired_error` (not orphaned:
        they do not run alone). The attempt counts: the holder may be alive (frozen or cut
        off), and a late write of its must never match the claim that follows."""

    def requeue(self, leases: Collection[Lease], *, count_attempt: bool = True) -> set[int]:
        """Return these claimed jobs to pending at once (``available_at`` kept); return the
        ids that matched."""

    def requeue_claimed_by(self, worker_id: str, *, count_attempt: bool = True) -> int:
        """Return every job claimed by ``worker_id`` to pending; return how many. Counting the
        attempt, a job on its last one stays claimed (the reaper fails it): attempts never
        exceed ``max_attempts``."""

    def reap_worker(self, worker_id: str) -> ReapResult:
        """Take back the claims of ``worker_id``, whose process is known to be dead, in one
        transaction: with several claims each gets its attempt back (safe: a dead worker
        writes nothing more, and its id is never used again); with one, the attempt counts.
        A job with attempts left returns to pending (``available_at`` kept), one without is
        parked as failed; either way the error is
        :func:`~ferroq_core.storage.rules.dead_worker_error` followed by the worker's id, which
        marks it orphaned (:func:`~ferroq_core.storage.rules.is_orphaned`)."""

    def claimed_by_host(self, host: str) -> list[str]:
        """Worker ids (``host:pid:uuid``) on exactly ``host`` that hold claims."""

    def wait_for_jobs(self, queues: Sequence[str], timeout: float) -> bool:
        """Block up to ``timeout`` seconds or until jobs may be available on ``queues``: a
        dispatch (by any process) or the earliest pending job of ``queues`` becoming due
        (:func:`~ferroq_core.storage.rules.due_bound`). True when it ended for one of those,
        False on timeout. Returns early after :meth:`wake`."""

    def wake(self) -> None:
        """Interrupt every :meth:`wait_for_jobs` of this process."""


@runtime_checkable
class Admin(Protocol):
    """Listings, counts and operator actions (the CLI, dashboards)."""

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
        limit_key: str | None = None,
    ) -> list[JobRow]:
        """Jobs matching every given filter (``limit_key``: the key a job's limits count it
        under): failed newest first (``failed_at``, id), claimed by ``claimed_at`` and id,
        the others by priority, ``available_at`` and id."""

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


@runtime_checkable
class SchemaStore(Protocol):
    """The schema: migrations and the start-up check."""

    def migrate(self) -> list[Applied]:
        """Apply pending schema migrations, or adopt those whose tables exist already
        (:func:`ferroq_core.schema.migrate`); return those recorded (idempotent)."""

    def schema_version(self) -> int:
        """The schema version recorded in the database (0 when never migrated)."""

    def check_schema(self) -> None:
        """Raise :class:`SchemaMissing` or :class:`SchemaOutdated` unless ready
        (:func:`~ferroq_core.storage.rules.check_version`)."""


@runtime_checkable
class Backend(
    Dispatcher,
    WorkerStore,
    Admin,
    SchemaStore,
    ResultStore,
    ScheduleStore,
    UniqueKeys,
    ControlStore,
    HistoryStore,
    WorkerRegistry,
    FlowStore,
    Protocol,
):
    """A storage backend: every role (results: :mod:`ferroq_core.storage.results`, schedules:
    :mod:`ferroq_core.storage.schedules`, unique keys: :mod:`ferroq_core.storage.unique`,
    pauses and cancels: :mod:`ferroq_core.storage.controls`, history:
    :mod:`ferroq_core.storage.history`, live workers: :mod:`ferroq_core.storage.workers`,
    limits: :mod:`ferroq_core.storage.flow`).
    Implementations must be safe to share between threads."""

    #: Short name, the same as the plugin's entry point (``sqlite``, ``postgres``).
    name: str
    #: What it can do beyond the protocol (the same record as its plugin's ``BackendSpec``).
    capabilities: Capabilities

    def close(self) -> None:
        """Release connections and listeners; wake every waiter."""


@runtime_checkable
class TestingStore(Protocol):
    """What the testing kit needs beyond :class:`Backend` (``drain(advance_time=...)``)."""

    def make_due(self, queues: Sequence[str] | None = None, *, within: float | None = None) -> int:
        """Make delayed pending jobs of ``queues`` (None: every queue) due now, as if the clock
        had moved forward ``within`` seconds (None: as far as needed); return how many."""
