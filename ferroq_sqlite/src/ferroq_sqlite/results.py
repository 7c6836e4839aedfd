"""Results on SQLite (:mod:`ferroq_core.storage.results`): stored in the acknowledgement's
write transaction, read in one statement, awaited through ``PRAGMA data_version``.

The acknowledgement runs ``store_results`` (which inserts only the results of jobs whose lease
still matches), ``history_record`` for those of them that keep history, and
``complete_stored`` (which deletes exactly those jobs) inside one ``BEGIN IMMEDIATE``
transaction: the file's write lock is held throughout, so no lease can change between them,
and a crash before the commit leaves none of them.
"""

from __future__ import annotations

import json
import threading
import time
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

from ferroq_core.clock import from_micros, to_micros, utcnow
from ferroq_core.history_records import Completion
from ferroq_core.storage.results import ResultState, StoredResult
from ferroq_sqlite.history import record_params
from ferroq_sqlite.queries import sql

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Sequence

    from ferroq_core.storage.results import ResultWrite
    from ferroq_sqlite.watch import ChangeWatcher

__all__ = ["CommitFeed", "complete_with_results", "prune", "read_state"]


def complete_with_results(db: sqlite3.Connection, writes: Sequence[ResultWrite]) -> set[int]:
    """Store the results of the writes whose lease matches (and the history records of those
    that keep history) and delete their jobs; return their ids (inside the caller's write
    transaction).

    One ``store_results`` per (owner, attempts, ttl) group, which a worker's batch of first
    attempts is: the fence and the ttl are bound once, and the JSON is an object of values by
    job id (``json_each`` gives each value as text, with no ``json_extract``). It runs without
    RETURNING: when every group stored a row per write, every lease matched and
    ``complete_stored`` deletes them all. On a shortfall (a lease lost) the acknowledgement is
    rolled back to its savepoint and the groups are stored again with RETURNING, which tells
    which matched.
    """
    now = to_micros(utcnow())
    params = [
        ((json.dumps(values), owner, attempts, now, round(ttl * 1e6)), len(values))
        for (owner, attempts, ttl), values in _groups(writes).items()
    ]
    db.execute(sql("savepoint_ack"))
    if all(db.execute(sql("store_results"), p).rowcount == count for p, count in params):
        stored = [w.lease.id for w in writes]
    else:
        db.execute(sql("rollback_to_ack"))
        stored = [
            int(r[0])
            for p, _count in params
            for r in db.execute(sql("store_results_returning"), p).fetchall()
        ]
    if stored:
        if any(w.keep_history for w in writes):
            matched = set(stored)
            kept = [Completion(w.lease, w.duration) for w in writes if w.keep_history]
            done = [c for c in kept if c.lease.id in matched]
            for record, _group in record_params(done, now):
                db.execute(sql("history_record"), record)
        db.execute(sql("complete_stored"), (json.dumps(stored),))
    return set(stored)


def _groups(writes: Sequence[ResultWrite]) -> dict[tuple[str, int, float], dict[str, str]]:
    """The writes' values by id (as JSON object keys), per (owner, attempts, ttl)."""
    first = writes[0]
    owner, attempts, ttl = first.lease.claimed_by, first.lease.attempts, first.ttl
    one: dict[str, str] = {}
    # A worker's batch is usually one group: checked in one pass, without a key per write.
    for w in writes:
        lease = w.lease
        if lease.claimed_by != owner or lease.attempts != attempts or w.ttl != ttl:
            break
        one[str(lease.id)] = w.value
    else:
        return {(owner, attempts, ttl): one}
    groups: dict[tuple[str, int, float], dict[str, str]] = {}
    for w in writes:
        key = (w.lease.claimed_by, w.lease.attempts, w.ttl)
        groups.setdefault(key, {})[str(w.lease.id)] = w.value
    return groups


def read_state(db: sqlite3.Connection, job_id: int) -> ResultState:
    """The job's unexpired result, else its row's status and error."""
    params = {"id": job_id, "now": to_micros(utcnow())}
    row = db.execute(sql("result_state"), params).fetchone()
    stored = None
    if row[0] is not None:
        stored = StoredResult(
            job_id=int(row[0]),
            job_type=row[1],
            value=row[2],
            created_at=from_micros(row[3]),
            expires_at=from_micros(row[4]),
        )
    return ResultState(job_id, stored, row[5], row[6])


def prune(db: sqlite3.Connection, limit: int | None) -> int:
    """Delete results expired now, at most ``limit`` (None: all); return how many."""
    params = {"now": to_micros(utcnow()), "limit": -1 if limit is None else limit}
    return int(db.execute(sql("prune_results"), params).rowcount)


class CommitFeed:
    """Changes for result waiters: the file's data version (any other connection's commit,
    in any process), read every ``interval`` seconds while someone waits."""

    def __init__(self, watcher: ChangeWatcher, interval: float) -> None:
        self._watcher = watcher
        self._interval = interval
        #: Ends every wait at once (the backend is closing).
        self.closed = threading.Event()

    def watching(self, job_id: int) -> AbstractContextManager[object]:
        return nullcontext()

    def mark(self, job_id: int) -> Any:
        return self._watcher.version()

    def wait(self, job_id: int, mark: object, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.closed.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.closed.wait(min(self._interval, left))
            version = self._watcher.version()
            if version is None or version != mark:
                return
