"""The rules every backend shares, written once: what a lease fence means, the order of a
claim, how a reaped lease reads, when an idle wait ends, how an idempotency key settles.

Backends phrase these in their own SQL (see each backend's ``queries.sql``); what can be
decided outside the database is decided here, so the two backends cannot drift apart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

# MAX_ERROR_CHARS is one of the limits of ferroq_core.bounds, named here too for backends.
from ferroq_core.bounds import MAX_ERROR_CHARS
from ferroq_core.errors import DatabaseError, SchemaMissing, SchemaOutdated
from ferroq_core.records import EnqueueResult, JobRow, ReapResult
from ferroq_core.schema import SCHEMA_VERSION

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from ferroq_core.records import EnqueueRequest, Lease
    from ferroq_core.storage.protocol import WorkerStore

__all__ = [
    "DUE_FLOOR",
    "JOB_COLUMNS",
    "MAX_ERROR_CHARS",
    "ORPHANED",
    "LeaseGroup",
    "cap_error",
    "check_version",
    "claim_in_order",
    "claim_order",
    "dead_worker_error",
    "due_bound",
    "enqueue_in_order",
    "host_like_pattern",
    "is_orphaned",
    "job_from_row",
    "lease_arrays",
    "lease_expired_error",
    "lease_groups",
    "merge_reaped",
    "reap_dead_on_host",
    "result_ttls",
    "settle_key",
    "worker_pid",
    "workers_on_host",
]

#: Every ``ferroq_jobs`` column, in :class:`~ferroq_core.records.JobRow`'s field order: a row
#: selected in this order is the record's positional arguments (:func:`job_from_row`).
JOB_COLUMNS = (
    "id",
    "queue",
    "job_type",
    "payload",
    "status",
    "priority",
    "attempts",
    "max_attempts",
    "idempotency_key",
    "tenant_id",
    "available_at",
    "created_at",
    "claimed_at",
    "claimed_by",
    "heartbeat_at",
    "error",
    "failed_at",
    "result_ttl",
    "limit_key",
)

#: A wait that starts when a pending job is due already lasts at least this long where no
#: notification ends it: that job is one another worker is claiming right now (or a lock
#: holds), and this one must not spin on it.
DUE_FLOOR = 0.01


def job_from_row(row: Sequence[Any]) -> JobRow:
    """A row of :data:`JOB_COLUMNS` (timestamps already aware datetimes) as a record."""
    return JobRow(*row)


def claim_order(row: JobRow) -> tuple[int, Any, int]:
    """The order claimed jobs are handed out in: priority, ``available_at``, id."""
    return (row.priority, row.available_at, row.id)


def claim_in_order(
    queues: Sequence[str], limit: int, claim_one: Callable[[str, int], list[JobRow]]
) -> list[JobRow]:
    """Up to ``limit`` jobs, queue by queue in strict order: ``claim_one(queue, n)`` claims up
    to ``n`` of one queue (inside the caller's transaction) in :func:`claim_order`."""
    claimed: list[JobRow] = []
    for queue in dict.fromkeys(queues):
        left = limit - len(claimed)
        if left <= 0:
            break
        claimed.extend(claim_one(queue, left))
    return claimed


def cap_error(error: str | None) -> str | None:
    """``error`` cut to :data:`MAX_ERROR_CHARS` (so one runaway traceback cannot bloat the
    table), keeping its start and its end."""
    if error is None or len(error) <= MAX_ERROR_CHARS:
        return error
    half = MAX_ERROR_CHARS // 2
    return (
        f"{error[:half]}\n... [{len(error) - MAX_ERROR_CHARS} characters cut] ...\n{error[-half:]}"
    )


#: How the error of a job starts when its attempt ended with its worker (dead, or reaped
#: after its lease expired) rather than by the job's own doing. Such a job is *orphaned*: a
#: worker runs it next alone (nothing else claimed beside it), so a job that kills its
#: process is the only one its next crash takes down. A handler's error text starts with its
#: exception's type name, which has no space, so it never starts like this.
ORPHANED = "orphaned: "


def is_orphaned(error: str | None) -> bool:
    """Whether a row's ``error`` says its last attempt was ended by its worker process's
    death (:func:`dead_worker_error`): such a job runs next alone."""
    return error is not None and error.startswith(ORPHANED)


def lease_expired_error(visibility_timeout: float) -> str:
    """The error a reaped job gets; the backend appends the lease holder's worker id.

    Not :data:`ORPHANED`: the holder of an expired lease is usually alive (frozen, cut off
    from the database), and running each of its jobs alone would make every worker of the
    fleet run one job at a time after a network blip. A process that died is found by pid
    on its own host (:func:`reap_dead_on_host`), and its jobs are the ones that run alone.
    """
    return (
        f"lease expired: worker stopped heartbeating for more than "
        f"{visibility_timeout:g}s (killed, frozen or cut off); last held by "
    )


def dead_worker_error() -> str:
    """The error a job held by a dead worker process gets when it is taken back; the backend
    appends the worker's id.

    When the process held several claims, its crash cannot be pinned on one of them: each
    gets the attempt back and runs next alone. A process that held one claim was running that
    job alone: the attempt counts, and with none left the job fails.
    """
    return f"{ORPHANED}the worker process running it died; last held by "


class LeaseGroup(NamedTuple):
    """Leases of one owner at one attempts count: a fence can then compare ``claimed_by`` and
    ``attempts`` as plain values and find the rows by id."""

    #: The worker holding these leases.
    owner: str
    #: The attempts count every one of these leases was claimed at.
    attempts: int
    #: The jobs' ids, in the order given.
    ids: list[int]


def lease_groups(leases: Iterable[Lease]) -> list[LeaseGroup]:
    """``leases`` grouped by (owner, attempts): a worker's batch of first attempts is one."""
    groups: dict[tuple[str, int], list[int]] = {}
    for lease in leases:
        groups.setdefault((lease.claimed_by, lease.attempts), []).append(lease.id)
    return [LeaseGroup(owner, attempts, ids) for (owner, attempts), ids in groups.items()]


def lease_arrays(leases: Iterable[Lease]) -> tuple[list[int], list[str], list[int]]:
    """``leases`` as three parallel arrays: ids, owners, attempts."""
    items = list(leases)
    return (
        [lease.id for lease in items],
        [lease.claimed_by for lease in items],
        [lease.attempts for lease in items],
    )


def due_bound(due_in: float | None, timeout: float) -> tuple[float, bool]:
    """An idle wait's length: ``timeout`` cut to ``due_in`` (seconds until the earliest
    pending job of its queues is due; None when there is none) but at least
    :data:`DUE_FLOOR`, and whether it was cut: a wait that ends then may find a job."""
    if due_in is None or due_in > timeout:
        return timeout, False
    return max(DUE_FLOOR, due_in), True


def settle_key(
    req: EnqueueRequest, insert: Callable[[], Any], holder: Callable[[], Any]
) -> EnqueueResult:
    """The result of enqueueing ``req`` (which has an idempotency key): ``insert()`` returns
    the new id or None when the key is taken, ``holder()`` the id of the active job holding it.

    The holder may finish between the INSERT and the SELECT; then the key is free again and
    the next INSERT wins. A few rounds always settle it.
    """
    for _ in range(10):
        new_id = insert()
        if new_id is not None:
            return EnqueueResult(id=int(new_id))
        existing = holder()
        if existing is not None:
            return EnqueueResult(id=int(existing), duplicate=True)
    raise DatabaseError(f"could not settle idempotency key {req.idempotency_key!r}")


def result_ttls(
    requests: Sequence[EnqueueRequest], results: Sequence[EnqueueResult]
) -> tuple[list[int], list[float]]:
    """The rows an enqueue gives a ``result_ttl`` (ids and seconds, parallel), written in the
    enqueue's transaction after its inserts: each new row whose request asks for one
    (``.with_stored_result()``), and a pending holder a replacing request took over (it took
    the request's payload too). An idempotent duplicate's holder keeps its own."""
    ids: list[int] = []
    ttls: list[float] = []
    for req, res in zip(requests, results, strict=True):
        if req.result_ttl is not None and (res.replaced or not res.duplicate):
            ids.append(res.id)
            ttls.append(req.result_ttl)
    return ids, ttls


def enqueue_in_order(
    requests: Sequence[EnqueueRequest],
    insert_plain: Callable[[list[EnqueueRequest]], list[EnqueueResult]],
    insert_keyed: Callable[[EnqueueRequest], EnqueueResult],
) -> list[EnqueueResult]:
    """The results of one enqueue, in request order: the requests without an idempotency key
    go to ``insert_plain`` together (one result each, in the order given), each keyed one to
    ``insert_keyed`` (which settles its key, see :func:`settle_key`), inside the caller's
    transaction."""
    plain = [i for i, r in enumerate(requests) if r.idempotency_key is None]
    if len(plain) == len(requests):
        return insert_plain(list(requests))
    results: list[EnqueueResult | None] = [None] * len(requests)
    if plain:
        inserted = insert_plain([requests[i] for i in plain])
        for i, result in zip(plain, inserted, strict=True):
            results[i] = result
    for i, req in enumerate(requests):
        if req.idempotency_key is not None:
            results[i] = insert_keyed(req)
    return [r for r in results if r is not None]


def check_version(version: int, adoptable: Callable[[int], Sequence[str]]) -> None:
    """Raise unless a database at schema ``version`` is ready for this ferroq.

    :param adoptable: the names of the steps after a version whose tables already exist
        (:func:`ferroq_core.schema.adoptable`), asked only when the schema is behind, so the
        error can say that ``ferroq migrate`` adopts them.
    """
    if version >= SCHEMA_VERSION:
        return
    found = adoptable(version)
    if found:
        state = "records no version" if version == 0 else f"is at version {version}"
        error = SchemaMissing if version == 0 else SchemaOutdated
        raise error(
            f"the ferroq schema in this database {state}, but the tables of "
            f"{', '.join(found)} exist (made by another tool, such as Alembic): run "
            "`ferroq migrate` to adopt them; it creates nothing that exists"
        )
    if version == 0:
        raise SchemaMissing()
    raise SchemaOutdated(
        f"the ferroq schema in this database is version {version}, this ferroq needs "
        f"{SCHEMA_VERSION}: run `ferroq migrate`"
    )


def worker_pid(worker_id: str) -> int | None:
    """The process id in a ``host:pid:uuid`` worker id (None for another form)."""
    parts = worker_id.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    return int(parts[1])


def host_like_pattern(host: str) -> str:
    """A ``LIKE`` pattern (escape character ``\\``) for worker ids on ``host``. It only
    narrows the rows through the index (SQLite's ``LIKE`` ignores ASCII case):
    :func:`workers_on_host` makes the exact match."""
    escaped = host.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + ":%"


def workers_on_host(worker_ids: Iterable[object], host: str) -> list[str]:
    """The worker ids (rows found by :func:`host_like_pattern`) on exactly ``host``."""
    exact = host + ":"
    return [str(w) for w in worker_ids if str(w).startswith(exact)]


def reap_dead_on_host(store: WorkerStore, host: str, alive: Callable[[int], bool]) -> ReapResult:
    """Take back the claims of workers on ``host`` whose process is gone
    (:meth:`~ferroq_core.storage.protocol.WorkerStore.reap_worker`); the caller runs the
    ``failed()`` of the rows failed."""
    results = [
        store.reap_worker(worker_id)
        for worker_id in store.claimed_by_host(host)
        if (pid := worker_pid(worker_id)) is not None and not alive(pid)
    ]
    return merge_reaped(results)


def merge_reaped(results: Iterable[ReapResult]) -> ReapResult:
    """Several reaper results as one."""
    requeued: list[int] = []
    failed: list[JobRow] = []
    for result in results:
        requeued.extend(result.requeued)
        failed.extend(result.failed)
    return ReapResult(requeued=tuple(sorted(requeued)), failed=tuple(failed))
