"""The worker's writes inside an open write transaction: the claim, and every finishing
write fenced by its lease (see :mod:`ferroq_core.storage.rules`).

Leases travel grouped by (owner, attempts) (:func:`~ferroq_core.storage.rules.lease_groups`):
each group is one statement whose ids are a JSON array found by primary key, its owner and
attempts plain comparisons. A drain's batch is one group (every job on its first attempt);
retried jobs add a group per attempts value.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ferroq_core.clock import to_micros, utcnow
from ferroq_core.records import ReapResult
from ferroq_core.storage.rules import (
    cap_error,
    dead_worker_error,
    lease_expired_error,
    lease_groups,
)
from ferroq_sqlite.queries import sql
from ferroq_sqlite.rows import CLAIM_COLUMNS, claimed_rows, stored_row
from ferroq_sqlite.text import lenient_text, not_utf8_error, undecodable_columns

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Collection

    from ferroq_core.records import JobRow, Lease

__all__ = [
    "claim_queue",
    "claim_queue_lenient",
    "complete",
    "fail",
    "heartbeat",
    "reap",
    "reap_worker",
    "release",
    "requeue",
    "requeue_claimed_by",
]


def claim_queue(
    db: sqlite3.Connection, queue: str, worker_id: str, limit: int, now: int, excluded: str
) -> list[JobRow]:
    """Claim up to ``limit`` due jobs of ``queue`` at ``now`` (epoch microseconds), in claim
    order (priority, available_at, id), none of the job types of ``excluded`` (a JSON array:
    those with limits, which only the limited claim takes)."""
    rows = db.execute(sql("claim"), (worker_id, now, queue, limit, excluded)).fetchall()
    return claimed_rows(rows, worker_id, now)


def claim_queue_lenient(
    db: sqlite3.Connection, queue: str, worker_id: str, limit: int, now: int, excluded: str
) -> list[JobRow]:
    """:func:`claim_queue` for a queue where a claimed row holds text that is not valid
    UTF-8: each such row is parked as failed at once with an error naming its columns (it
    could never be decoded), and only the others are returned."""
    with lenient_text(db, escape=True):
        rows = db.execute(sql("claim"), (worker_id, now, queue, limit, excluded)).fetchall()
    good = []
    for row in rows:
        bad = undecodable_columns(row, CLAIM_COLUMNS)
        if not bad:
            good.append(row)
            continue
        params = {
            "error": not_utf8_error(row[0], bad),
            "now": now,
            "id": row[0],
            "owner": worker_id,
            "attempts": row[5],
        }
        db.execute(sql("fail"), params)
    return claimed_rows(good, worker_id, now)


def _group_params(leases: Collection[Lease]) -> list[tuple[tuple[str, str, int], int]]:
    """Per (owner, attempts) group: ``(owner, ids as JSON, attempts)`` and how many leases."""
    return [((g.owner, json.dumps(g.ids), g.attempts), len(g.ids)) for g in lease_groups(leases)]


def complete(db: sqlite3.Connection, leases: Collection[Lease]) -> set[int]:
    """Delete the jobs whose lease still matches; return their ids.

    Each group's ``complete`` deletes without RETURNING: when it deleted as many rows as the
    group has leases, every lease matched. On a shortfall (a lease lost, or one given twice)
    the acknowledgement is rolled back to its savepoint and ``complete_returning`` tells which
    matched.
    """
    groups = _group_params(leases)
    db.execute(sql("savepoint_ack"))
    for params, count in groups:
        if db.execute(sql("complete"), params).rowcount != count:
            db.execute(sql("rollback_to_ack"))
            done: set[int] = set()
            for again, _count in groups:
                rows = db.execute(sql("complete_returning"), again).fetchall()
                done.update(r[0] for r in rows)
            return done
    return {lease.id for lease in leases}


def release(
    db: sqlite3.Connection, lease: Lease, *, delay: float, error: str | None, count_attempt: bool
) -> bool:
    """Return a leased job to pending, due after ``delay`` seconds; True if it matched."""
    params = {
        "error": cap_error(error),
        "available_at": to_micros(utcnow() + timedelta(seconds=delay)),
        "given_back": 0 if count_attempt else 1,
        "id": lease.id,
        "owner": lease.claimed_by,
        "attempts": lease.attempts,
    }
    return db.execute(sql("release"), params).rowcount == 1


def fail(db: sqlite3.Connection, lease: Lease, *, error: str) -> bool:
    """Park a leased job as failed; True if it matched."""
    params = {
        "error": cap_error(error),
        "now": to_micros(utcnow()),
        "id": lease.id,
        "owner": lease.claimed_by,
        "attempts": lease.attempts,
    }
    return db.execute(sql("fail"), params).rowcount == 1


def heartbeat(db: sqlite3.Connection, leases: Collection[Lease]) -> set[int]:
    """Extend the leases; return the ids still held."""
    now = to_micros(utcnow())
    held: set[int] = set()
    for (owner, ids, attempts), _count in _group_params(leases):
        rows = db.execute(sql("heartbeat"), (owner, ids, attempts, now)).fetchall()
        held.update(r[0] for r in rows)
    return held


def requeue(db: sqlite3.Connection, leases: Collection[Lease], *, count_attempt: bool) -> set[int]:
    """Return leased jobs to pending (``available_at`` kept); return the ids that matched."""
    given_back = 0 if count_attempt else 1
    moved: set[int] = set()
    for (owner, ids, attempts), _count in _group_params(leases):
        rows = db.execute(sql("requeue"), (owner, ids, attempts, given_back)).fetchall()
        moved.update(r[0] for r in rows)
    return moved


def requeue_claimed_by(db: sqlite3.Connection, worker_id: str, *, count_attempt: bool) -> int:
    """Return every job claimed by ``worker_id`` to pending; return how many."""
    params = {"worker": worker_id, "given_back": 0 if count_attempt else 1}
    return int(db.execute(sql("requeue_claimed_by"), params).rowcount)


def reap(db: sqlite3.Connection, visibility_timeout: float) -> ReapResult:
    """Requeue (or, with no attempts left, fail) the claims whose heartbeat is older than
    ``visibility_timeout`` seconds."""
    now = utcnow()
    params = {
        "message": lease_expired_error(visibility_timeout),
        "cutoff": to_micros(now - timedelta(seconds=visibility_timeout)),
        "now": to_micros(now),
    }
    requeued = db.execute(sql("reap_requeue"), params).fetchall()
    failed = db.execute(sql("reap_fail"), params).fetchall()
    return _reaped(requeued, failed)


def reap_worker(db: sqlite3.Connection, worker_id: str) -> ReapResult:
    """Take back the claims of a dead worker (see ``WorkerStore.reap_worker``)."""
    params = {"worker": worker_id, "message": dead_worker_error(), "now": to_micros(utcnow())}
    db.execute(sql("orphan_share"), params)
    requeued = db.execute(sql("orphan_requeue"), params).fetchall()
    failed = db.execute(sql("orphan_fail"), params).fetchall()
    return _reaped(requeued, failed)


def _reaped(requeued: list[Any], failed: list[Any]) -> ReapResult:
    return ReapResult(
        requeued=tuple(sorted(int(r[0]) for r in requeued)),
        failed=tuple(stored_row(r) for r in failed),
    )
