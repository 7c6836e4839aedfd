"""Frozen value records that cross the storage boundary.

Backends return these, never driver rows; the worker, the CLI and applications only see these.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from ferroq_core.bounds import (
    MAX_DELAY_SECONDS,
    MAX_IDEMPOTENCY_KEY_CHARS,
    MAX_JOB_TYPE_CHARS,
    MAX_TENANT_ID_CHARS,
    check_delay,
    check_limit_key,
    check_queue_name,
    check_result_ttl,
    check_text,
)
from ferroq_core.errors import InvalidDispatch

if TYPE_CHECKING:
    from ferroq_core.unique import Unique

__all__ = [
    "Capabilities",
    "EnqueueRequest",
    "EnqueueResult",
    "FailedJobInfo",
    "JobInfo",
    "JobRow",
    "JobState",
    "Lease",
    "QueueStats",
    "ReapResult",
    "SingleQueueStats",
]


def _tz_aware(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, datetime) and value.tzinfo is None:
        raise ValueError(f"{attribute.name} must be a timezone-aware datetime, got {value!r}")


class JobState(str, enum.Enum):
    """Where a job is in its life. ``delayed`` is a pending row whose time has not come."""

    PENDING = "pending"
    DELAYED = "delayed"
    CLAIMED = "claimed"
    FAILED = "failed"


@attrs.frozen
class EnqueueRequest:
    """One job to insert, as dispatch hands it to a backend."""

    #: Queue name (see :func:`~ferroq_core.bounds.queue_name_problem`); stored and matched as
    #: data.
    queue: str
    #: Stable job type name (the registry key).
    job_type: str
    #: Encoded payload (JSON text).
    payload: str
    #: Lower runs first within a queue.
    priority: int = 0
    #: Total executions allowed (>= 1).
    max_attempts: int = 3
    #: Seconds from now until the job may run.
    delay: float = 0.0
    #: Jobs with the same (job_type, key) are deduplicated while pending or claimed (or as
    #: :attr:`unique` says).
    idempotency_key: str | None = None
    #: Tenant id as text, or None.
    tenant_id: str | None = None
    #: How the key is held and what a conflict does; None: as an idempotency key (until
    #: finished, skip). Set only with a key.
    unique: Unique | None = None
    #: Store this job's result for this many seconds, whatever its type says
    #: (``.with_stored_result()``); None: as its type says.
    result_ttl: float | None = None
    #: The limit key given at dispatch or taken from the payload field the job type names;
    #: None: the tenant id is the key (a backend stores ``limit_key`` else ``tenant_id``).
    limit_key: str | None = None

    # One check after init rather than field validators: every dispatched job makes one of
    # these, and a validator adds a call per field to each. Every backend gets its rows from
    # here, so the limits of ferroq_core.bounds hold the same on each.
    def __attrs_post_init__(self) -> None:
        if self.max_attempts < 1:
            raise InvalidDispatch(f"max_attempts must be >= 1, got {self.max_attempts}")
        if not 0 <= self.delay <= MAX_DELAY_SECONDS:
            check_delay(self.delay)
        check_queue_name(self.queue)
        if len(self.job_type) > MAX_JOB_TYPE_CHARS:
            check_text(
                f"job type name {self.job_type[:40]!r}...", self.job_type, MAX_JOB_TYPE_CHARS
            )
        if (
            self.idempotency_key is not None
            and len(self.idempotency_key) > MAX_IDEMPOTENCY_KEY_CHARS
        ):
            check_text("idempotency key", self.idempotency_key, MAX_IDEMPOTENCY_KEY_CHARS)
        if self.tenant_id is not None and len(self.tenant_id) > MAX_TENANT_ID_CHARS:
            check_text("tenant id", self.tenant_id, MAX_TENANT_ID_CHARS)
        if self.unique is not None and self.idempotency_key is None:
            raise InvalidDispatch("a unique rule needs a key: set idempotency_key")
        if self.result_ttl is not None:
            check_result_ttl(self.result_ttl)
        key: object = self.limit_key  # typed str; a caller's int must not be stored as one
        if key is not None:
            if not isinstance(key, str):
                raise InvalidDispatch(f"limit key must be a str, got {type(key).__name__}")
            check_limit_key(key)


@attrs.frozen
class EnqueueResult:
    """What an enqueue did."""

    #: The new job's id, or the existing job's id for an idempotent duplicate.
    id: int
    #: True when an equal idempotency (or unique) key was held.
    duplicate: bool = False
    #: True when the holder was pending and took this request's payload and run time
    #: (``on_conflict="replace"``); ``duplicate`` is then True too.
    replaced: bool = False


@attrs.frozen
class Lease:
    """The fence a worker holds on a claimed job: every finishing write must match all three."""

    #: Job id.
    id: int
    #: The worker id that claimed it.
    claimed_by: str
    #: The attempts count the claim set; a reclaim bumps it, so a stale lease stops matching.
    attempts: int


@attrs.frozen
class JobRow:
    """A full row of ``ferroq_jobs``."""

    #: Job id.
    id: int
    #: Queue name.
    queue: str
    #: Stable job type name.
    job_type: str
    #: Encoded payload.
    payload: str
    #: ``pending``, ``claimed`` or ``failed`` (``delayed`` is derived, see :attr:`state`).
    status: str
    #: Lower runs first.
    priority: int
    #: Executions started so far.
    attempts: int
    #: Total executions allowed.
    max_attempts: int
    #: Idempotency key, if any.
    idempotency_key: str | None
    #: Tenant id, if any.
    tenant_id: str | None
    #: When the job becomes eligible.
    available_at: datetime = attrs.field(validator=_tz_aware)
    #: When the job was created.
    created_at: datetime = attrs.field(validator=_tz_aware)
    #: When the current claim was made.
    claimed_at: datetime | None = attrs.field(default=None, validator=_tz_aware)
    #: Worker id holding the claim.
    claimed_by: str | None = None
    #: Last heartbeat of the claim.
    heartbeat_at: datetime | None = attrs.field(default=None, validator=_tz_aware)
    #: Last error text (kept on retries and on failure).
    error: str | None = None
    #: When the job was parked as failed.
    failed_at: datetime | None = attrs.field(default=None, validator=_tz_aware)
    #: Seconds to keep this job's result, asked by its dispatch (``.with_stored_result()``),
    #: whatever its type's ``store_result``; None: as its type says.
    result_ttl: float | None = None
    #: The key its limits and fair turns count it under: the key given at dispatch, else its
    #: type's declared payload field, else its tenant; None: none (counted under '').
    limit_key: str | None = None

    @property
    def lease(self) -> Lease:
        if self.claimed_by is None:
            raise ValueError(f"job {self.id} is not claimed")
        return Lease(self.id, self.claimed_by, self.attempts)

    def state_at(self, now: datetime) -> JobState:
        if self.status == "pending" and self.available_at > now:
            return JobState.DELAYED
        return JobState(self.status)


#: The listing view of a job is the full row; the alias keeps the seed crate's name.
JobInfo = JobRow


@attrs.frozen
class FailedJobInfo:
    """A job parked as failed."""

    #: Job id.
    id: int
    #: Queue name.
    queue: str
    #: Stable job type name.
    job_type: str
    #: Encoded payload, kept for inspection and retry.
    payload: str
    #: Executions it had.
    attempts: int
    #: Error text of the last attempt.
    error: str
    #: When it was parked.
    failed_at: datetime = attrs.field(validator=_tz_aware)
    #: Tenant id, if any.
    tenant_id: str | None = None


@attrs.frozen
class SingleQueueStats:
    """Counts for one queue."""

    #: Queue name.
    queue: str
    #: Pending and eligible now.
    pending: int = 0
    #: Pending with a future ``available_at``.
    delayed: int = 0
    #: Claimed by a worker (running).
    claimed: int = 0
    #: Parked as failed.
    failed: int = 0
    #: Seconds the oldest eligible pending job has waited, or None.
    oldest_pending_age: float | None = None


@attrs.frozen
class QueueStats:
    """Counts for every queue and in total."""

    #: One entry per queue that has rows, sorted by name.
    queues: tuple[SingleQueueStats, ...] = ()

    @property
    def pending(self) -> int:
        return sum(q.pending for q in self.queues)

    @property
    def delayed(self) -> int:
        return sum(q.delayed for q in self.queues)

    @property
    def claimed(self) -> int:
        return sum(q.claimed for q in self.queues)

    @property
    def failed(self) -> int:
        return sum(q.failed for q in self.queues)

    @property
    def total(self) -> int:
        return self.pending + self.delayed + self.claimed + self.failed

    def for_queue(self, queue: str) -> SingleQueueStats:
        for q in self.queues:
            if q.queue == queue:
                return q
        return SingleQueueStats(queue=queue)


@attrs.frozen
class ReapResult:
    """What one reaper pass did."""

    #: Ids returned to pending (attempts left).
    requeued: tuple[int, ...] = ()
    #: Rows parked as failed (attempts exhausted), so the caller can run ``failed()``.
    failed: tuple[JobRow, ...] = ()


@attrs.frozen
class Capabilities:
    """What a storage backend can do beyond the protocol, declared rather than probed.

    A backend class has them as ``capabilities``; its plugin's
    :class:`~ferroq_core.BackendSpec` names the same record, so they can be read without
    building (or importing) the backend.
    """

    #: Every write waits on a database server across a connection (a round trip), not only on
    #: this process: the worker then claims its next batch before it writes the last one back,
    #: so jobs run during the round trip.
    remote: bool = False
    #: Idle workers are woken by other processes' dispatches (LISTEN/NOTIFY) rather than by
    #: polling the database.
    listens: bool = False
    #: ``enqueue(..., connection=...)`` accepts a caller's SQLAlchemy ``Connection`` or
    #: ``Session`` and inserts inside its transaction.
    caller_connection: bool = False
    #: Every time comparison uses the database server's clock (one clock for every host),
    #: not the clock of the process that asks.
    database_clock: bool = False
