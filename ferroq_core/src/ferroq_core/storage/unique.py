"""How a backend settles a request with a unique rule (:class:`~ferroq_core.unique.Unique`),
written once over the statements each backend phrases in its own SQL
(:class:`UniqueStatements`), all run inside the caller's transaction.

A unique index decides every race; Python only reads what the last statement said:

- ``until_finished``: the idempotency index (``ferroq_jobs_idempotency``, pending and claimed
  rows), as for a plain idempotency key.
- ``while_queued`` and ``until_started``: ``ferroq_jobs.unique_key`` under the unique index
  ``ferroq_jobs_unique``, so at most one row of a type has a key. A dispatch inserts; when
  the row with the key no longer holds it (running or failed; for ``until_started`` also one
  started before and waiting for a retry), it takes the key off that row and inserts again;
  else that row is the holder. A row whose key was taken never gets it back, so no later
  state change of it (a retry, a requeue, ``ferroq retry``) can collide with the new holder.
- ``for_period``: the primary key of ``ferroq_unique_keys``; a dispatch takes a key whose
  period ended by overwriting it, and now and then prunes a few expired ones.

Each round either inserts, or finds the holder; a holder that stopped holding between the
two statements (it was claimed, or pruned) sends the dispatch round again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ferroq_core.errors import DatabaseError, DuplicateJob
from ferroq_core.records import EnqueueResult
from ferroq_core.unique import OnConflict, UniqueMode

if TYPE_CHECKING:
    from ferroq_core.records import EnqueueRequest
    from ferroq_core.unique import UniqueKey

__all__ = ["PRUNE_EVERY", "ROUNDS", "UniqueKeys", "UniqueStatements", "settle_unique"]

#: Rounds before giving up (each needs the holder to change state between two statements).
ROUNDS = 20
#: A period key taken for a job whose id is a multiple of this prunes up to four times as
#: many expired keys: more than are added, at a sixteenth of the statements.
PRUNE_EVERY = 16


@runtime_checkable
class UniqueKeys(Protocol):
    """The storage role of unique jobs beyond dispatch: what ``ferroq show`` lists."""

    def unique_keys(self, job_id: int) -> list[UniqueKey]:
        """The unique keys of job ``job_id``: the one on its row (modes ``while_queued``,
        ``until_started``), then the period keys it took, newest first. Its idempotency key
        (mode ``until_finished``) is on its :class:`~ferroq_core.records.JobRow`."""


class UniqueStatements(Protocol):
    """One backend's statements for :func:`settle_unique`, inside an open transaction.

    ``started`` is True for mode ``until_started``: a pending row that started before (its
    ``attempts`` above 0) does not hold its key.
    """

    def insert_keyed(self, req: EnqueueRequest) -> int | None:
        """Insert under the idempotency index; the new id, or None when the key is held."""

    def key_holder(self, req: EnqueueRequest) -> int | None:
        """The pending or claimed job holding the idempotency key, or None."""

    def strip(self, req: EnqueueRequest, started: bool) -> None:
        """Take the unique key off the row of its type that has it but no longer holds it."""

    def insert_unique(self, req: EnqueueRequest) -> int | None:
        """Insert with ``unique_key``; the new id, or None when a row has the key."""

    def unique_holder(self, req: EnqueueRequest, started: bool) -> int | None:
        """The pending row holding the unique key, or None."""

    def take_period(self, req: EnqueueRequest) -> int | None:
        """Take the period key (insert it, or overwrite it once expired) and insert the job
        under it; the new id, or None when the key is held. Prunes a few expired keys now and
        then (:data:`PRUNE_EVERY`)."""

    def period_holder(self, req: EnqueueRequest) -> int | None:
        """The id of the job whose period key is held, or None when there is no key row."""

    def replace(self, job_id: int, req: EnqueueRequest, started: bool) -> bool:
        """Give the pending job ``job_id`` the request's payload and run time; False when it
        is not pending (or, with ``started``, it started before)."""


def settle_unique(req: EnqueueRequest, stmts: UniqueStatements) -> EnqueueResult:
    """The result of enqueueing ``req`` (which has a key and a unique rule)."""
    unique = req.unique
    assert unique is not None, "settle_unique needs a request with a unique rule"
    mode = unique.mode
    started = mode is UniqueMode.UNTIL_STARTED
    pending_modes = mode in (UniqueMode.WHILE_QUEUED, UniqueMode.UNTIL_STARTED)
    for _ in range(ROUNDS):
        holder: int | None
        if mode is UniqueMode.FOR_PERIOD:
            new = stmts.take_period(req)
            if new is not None:
                return EnqueueResult(int(new))
            holder = stmts.period_holder(req)
        elif mode is UniqueMode.UNTIL_FINISHED:
            new = stmts.insert_keyed(req)
            if new is not None:
                return EnqueueResult(int(new))
            holder = stmts.key_holder(req)
        else:
            new = stmts.insert_unique(req)
            if new is not None:
                return EnqueueResult(int(new))
            holder = stmts.unique_holder(req, started)
            if holder is None:
                # The row with the key no longer holds it: take it off, insert again.
                stmts.strip(req, started)
                continue
        if holder is None:
            continue
        if unique.on_conflict is OnConflict.RAISE:
            raise DuplicateJob(
                f"job {req.job_type} with key {req.idempotency_key!r} is held by job {holder} "
                f"(unique mode {mode.value}): nothing was stored; dispatch it later or choose "
                "on_conflict='skip' or 'replace'",
                job_id=holder,
            )
        if unique.on_conflict is OnConflict.REPLACE:
            if stmts.replace(holder, req, started):
                return EnqueueResult(holder, duplicate=True, replaced=True)
            if pending_modes:
                continue  # it was claimed meanwhile: it holds nothing now
        return EnqueueResult(holder, duplicate=True)
    raise DatabaseError(f"could not settle unique key {req.idempotency_key!r} of {req.job_type}")
