"""Stored results: the storage role that writes them with the acknowledgement, reads them,
waits for them and prunes them, and the rules both backends share.

A result is written by :meth:`ResultStore.complete_with_results`, which deletes the jobs whose
lease still matches and stores the results of exactly those, in one fenced statement
(PostgreSQL) or one write transaction (SQLite): a zombie attempt whose lease was taken stores
nothing, and a result exists if and only if its job was acknowledged. A job that also keeps
history gets its history record from the same statement or transaction. Jobs that store no
result keep the plain batch ``complete`` (no second table is touched for them).

A waiter hears of every end of its job: the backends wake result waiters when a job succeeds
with its result, and also when one is parked failed or removed as cancelled.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import attrs

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from contextlib import AbstractContextManager
    from datetime import datetime

    from ferroq_core.records import Lease

__all__ = [
    "PRUNE_BATCH",
    "PRUNE_STATEMENTS",
    "ChangeFeed",
    "ResultState",
    "ResultStore",
    "ResultWrite",
    "StoredResult",
    "await_state",
    "prune_expired",
]

#: Expired results one pruning statement deletes at most.
PRUNE_BATCH = 500
#: Pruning statements one reaper pass runs at most (a bounded cost per pass): more only while
#: each deleted a full batch.
PRUNE_STATEMENTS = 8


@attrs.frozen
class ResultWrite:
    """One successful attempt whose return value is to be stored with its acknowledgement."""

    #: The attempt's lease: the result is stored only if it still matches.
    lease: Lease
    #: The return value, encoded by the serializer.
    value: str
    #: Seconds the result is kept.
    ttl: float
    #: Write the job's history record too, in the same statement or transaction (its type
    #: keeps history, see :meth:`~ferroq_core.storage.history.HistoryStore.complete_with_history`).
    keep_history: bool = False
    #: Seconds the handler ran (the history record's ``duration``).
    duration: float = 0.0


@attrs.frozen
class StoredResult:
    """A row of ``ferroq_results``."""

    #: The job's id.
    job_id: int
    #: The job's type name.
    job_type: str
    #: The encoded return value.
    value: str
    #: When the job was acknowledged.
    created_at: datetime
    #: When the result may be pruned.
    expires_at: datetime


@attrs.frozen
class ResultState:
    """What the database says about one job id, read in one statement."""

    #: The job's id.
    job_id: int
    #: Its stored result (not expired), or None.
    result: StoredResult | None = None
    #: The status of its row in ``ferroq_jobs`` (``pending``, ``claimed``, ``failed``), or None
    #: when there is no row (acknowledged, deleted, or never dispatched).
    status: str | None = None
    #: The row's error (the last failed attempt's), or None.
    error: str | None = None

    @property
    def finished(self) -> bool:
        """Succeeded with a result, failed, or gone without one: waiting changes nothing."""
        return self.result is not None or self.status in (None, "failed")


@runtime_checkable
class ResultStore(Protocol):
    """The storage of results (:mod:`ferroq_core.storage.results`)."""

    def complete_with_results(self, writes: Sequence[ResultWrite]) -> set[int]:
        """Delete the succeeded jobs whose lease still matches and store their results, and
        the history records of those whose write has ``keep_history``, in one fenced
        statement or transaction; return those ids (the others store and record nothing).
        Wakes the waiters of those ids, in any process."""

    def read_result(self, job_id: int) -> ResultState:
        """The state of ``job_id``: its unexpired result, else its row's status and error."""

    def wait_result(self, job_id: int, timeout: float) -> ResultState:
        """Wait up to ``timeout`` seconds until ``job_id`` is finished
        (:attr:`ResultState.finished`); return its last state (unfinished on timeout)."""

    def prune_results(self, *, limit: int | None = None) -> int:
        """Delete expired results (at most ``limit``, None: all); return how many."""


class ChangeFeed(Protocol):
    """Something that changes when a result may have been stored (a notification heard, a
    commit seen), for :func:`await_state`."""

    def watching(self, job_id: int) -> AbstractContextManager[object]:
        """While inside, changes for ``job_id`` are kept for :meth:`wait`."""

    def mark(self, job_id: int) -> object:
        """A mark of now, taken before a read."""

    def wait(self, job_id: int, mark: object, timeout: float) -> None:
        """Return once something changed since ``mark`` for ``job_id``, or after ``timeout``
        seconds (early returns are allowed: the caller reads again)."""


def await_state(
    read: Callable[[], ResultState], feed: ChangeFeed, job_id: int, timeout: float
) -> ResultState:
    """Read until the state is finished or ``timeout`` seconds passed. The feed's mark is taken
    before each read, so a change that lands during the read is not slept through."""
    deadline = time.monotonic() + max(0.0, timeout)
    with feed.watching(job_id):
        while True:
            mark = feed.mark(job_id)
            state = read()
            left = deadline - time.monotonic()
            if state.finished or left <= 0:
                return state
            feed.wait(job_id, mark, left)


def prune_expired(store: ResultStore) -> int:
    """A worker's pruning of expired results in one reaper pass: batches of
    :data:`PRUNE_BATCH`, at most :data:`PRUNE_STATEMENTS` of them; returns how many went
    (``ferroq prune`` deletes any backlog at once)."""
    total = 0
    for _ in range(PRUNE_STATEMENTS):
        deleted = store.prune_results(limit=PRUNE_BATCH)
        total += deleted
        if deleted < PRUNE_BATCH:
            break
    return total
