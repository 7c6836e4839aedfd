"""The worker's store: claims, the fenced finishing writes, lease upkeep and the reaper.

A single-queue claim and every fenced write are one prepared autocommit statement, never sent
twice once they may have reached the server: a claim that may have committed and ran again
would strand its first rows as claimed (the reaper returns them); a finish that ran twice would
report a held lease as lost. Several statements that belong together (a claim over several
queues, the reaper, a worker's requeue and its notification) are one transaction.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ferroq_core.errors import BackendBusy
from ferroq_core.records import ReapResult
from ferroq_core.storage.rules import (
    cap_error,
    claim_in_order,
    claim_order,
    dead_worker_error,
    host_like_pattern,
    job_from_row,
    lease_expired_error,
    workers_on_host,
)
from ferroq_postgres.connections import fetch, rowcount
from ferroq_postgres.errors import is_cancelled
from ferroq_postgres.params import RESULTS_CHANNEL, fence_params, lease_params, release_params
from ferroq_postgres.wait import notify_ended, notify_queues

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

    import psycopg

    from ferroq_core.records import JobRow, Lease
    from ferroq_postgres.connections import Connections, Row

__all__ = [
    "ClaimSize",
    "claim",
    "claimed_by_host",
    "fail",
    "fenced",
    "reap",
    "reap_worker",
    "release",
    "requeue_claimed_by",
]


log = logging.getLogger("ferroq.postgres")


class ClaimSize:
    """How many jobs one claim may ask for, once the server cancelled bigger claims.

    A claim the server cancelled (``statement_timeout``: SQLSTATE 57014) was rolled back, so it
    is sent again at once for half as many jobs, down to one. The smaller size is kept for the
    next claims and doubles after each claim that filled it: claims that outgrew the server's
    limit settle around it, and a lock that cancelled every claim for a while costs a few
    claims to recover from. Shared by the threads of a backend; a lost update between two
    claims only changes one claim's size.
    """

    def __init__(self) -> None:
        #: The most jobs a claim asks for (None: as many as the worker has room for).
        self.cap: int | None = None

    def limit(self, wanted: int) -> int:
        return wanted if self.cap is None else min(wanted, self.cap)

    def claimed(self, limit: int, got: int) -> None:
        if self.cap is not None and got >= limit == self.cap:
            self.cap *= 2

    def cancelled(self, limit: int, exc: BackendBusy) -> int:
        """The size to try next after a claim of ``limit`` jobs was cancelled; re-raises
        ``exc`` when it was not a cancel, or a claim of one job was."""
        if limit <= 1 or not is_cancelled(exc.__cause__):
            raise exc
        if self.cap is None:
            log.warning(
                "ferroq: Postgres cancelled a claim of %d jobs (statement_timeout?): "
                "claiming fewer at a time",
                limit,
            )
        self.cap = limit // 2
        return self.cap


#: The reaper's statements, and those taking back a dead worker's claims (see ``_take_back``).
#: Only a worker known to be dead gets attempts back: a reaped one may be alive, and a late
#: write of its must never match the claim that follows (the fence compares ``attempts``).
REAP = (None, "reap_requeue", "reap_fail")
ORPHAN = ("orphan_share", "orphan_requeue", "orphan_fail")


def _claimed(rows: list[Row]) -> list[JobRow]:
    """Claimed rows as records in claim order (RETURNING has no defined order)."""
    jobs = [job_from_row(row) for row in rows]
    jobs.sort(key=claim_order)
    return jobs


def claim(
    connections: Connections,
    size: ClaimSize,
    queues: Sequence[str],
    worker: str,
    wanted: int,
    excluded: Sequence[str] = (),
) -> list[JobRow]:
    """Up to ``wanted`` due jobs of ``queues``, in strict queue order, in a claim no bigger
    than ``size`` allows, none of the ``excluded`` job types."""
    if wanted <= 0 or not queues:
        return []
    limit = size.limit(wanted)
    while True:
        try:
            rows = _claim(connections, queues, worker, limit, list(excluded))
        except BackendBusy as exc:
            limit = size.cancelled(limit, exc)
            continue
        size.claimed(limit, len(rows))
        return rows


def _claim(
    connections: Connections, queues: Sequence[str], worker: str, limit: int, excluded: list[str]
) -> list[JobRow]:
    if len(queues) == 1:
        params = {"queue": queues[0], "limit": limit, "worker": worker, "excluded": excluded}
        return _claimed(connections.rows_once("claim", params))

    def several(conn: psycopg.Connection[Any]) -> list[JobRow]:
        def one(queue: str, n: int) -> list[JobRow]:
            params = {"queue": queue, "limit": n, "worker": worker, "excluded": excluded}
            return _claimed(fetch(conn, "claim", params))

        return claim_in_order(queues, limit, one)

    return connections.transaction(several)


def fenced(
    connections: Connections, name: str, leases: Collection[Lease], **extra: Any
) -> set[int]:
    """Run the lease-fenced batch statement ``name`` (complete, heartbeat, requeue); return the
    ids whose lease still matched."""
    if not leases:
        return set()
    params = lease_params(leases)
    params.update(extra)
    return {int(row[0]) for row in connections.rows_once(name, params)}


def release(
    connections: Connections, lease: Lease, delay: float, error: str | None, count_attempt: bool
) -> bool:
    """Hand a lease back (pending after ``delay`` seconds) and notify its queue, one statement."""
    params = release_params(lease, delay, error, count_attempt)
    return bool(connections.rows_once("release", params))


def fail(connections: Connections, lease: Lease, error: str) -> bool:
    """Park a claimed job as failed. At least once: a retry after a broken connection that had
    committed it finds the lease gone and reports False."""
    params = fence_params(lease)
    params["error"] = cap_error(error)
    params["results"] = RESULTS_CHANNEL
    return bool(connections.rows("fail", params))


def reap(connections: Connections, visibility_timeout: float) -> ReapResult:
    """Expired leases back to pending, or failed when no attempts are left."""
    params = {
        "timeout": float(visibility_timeout),
        "message": lease_expired_error(visibility_timeout),
    }

    return connections.transaction(lambda conn: _take_back(conn, REAP, params))


def requeue_claimed_by(connections: Connections, worker: str, count_attempt: bool) -> int:
    """Every claim of ``worker`` back to pending; returns how many."""
    params = {"worker": worker, "uncount": 0 if count_attempt else 1}

    def run(conn: psycopg.Connection[Any]) -> int:
        rows = fetch(conn, "requeue_worker", params)
        notify_queues(conn, {str(row[1]) for row in rows})
        return len(rows)

    return connections.transaction(run)


def reap_worker(connections: Connections, worker: str) -> ReapResult:
    """Take back the claims of a dead worker (see ``WorkerStore.reap_worker``)."""
    params = {"worker": worker, "message": dead_worker_error()}

    return connections.transaction(lambda conn: _take_back(conn, ORPHAN, params))


def _take_back(
    conn: psycopg.Connection[Any], queries: tuple[str | None, str, str], params: dict[str, Any]
) -> ReapResult:
    """Run a take-back's statements (:data:`REAP` or :data:`ORPHAN`) in ``conn``'s
    transaction: attempts given back (a dead worker's only), rows requeued, rows failed."""
    share, requeue, fail_ = queries
    if share is not None:
        rowcount(conn, share, params)
    requeued = fetch(conn, requeue, params)
    failed = fetch(conn, fail_, params)
    notify_queues(conn, {str(row[1]) for row in requeued})
    notify_ended(conn, (int(row[0]) for row in failed))
    return ReapResult(
        requeued=tuple(sorted(int(row[0]) for row in requeued)),
        failed=tuple(job_from_row(row) for row in failed),
    )


def claimed_by_host(connections: Connections, host: str) -> list[str]:
    """Worker ids on exactly ``host`` holding claims (``LIKE`` narrows, the prefix decides)."""
    rows = connections.rows("claimed_by_host", {"pattern": host_like_pattern(host)})
    return workers_on_host((row[0] for row in rows), host)
