"""Jobs with a unique rule into SQLite, inside the open write transaction: the statements of
:class:`~ferroq_core.storage.unique.UniqueStatements`, settled by
:func:`~ferroq_core.storage.unique.settle_unique`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ferroq_core.clock import from_micros
from ferroq_core.storage.unique import PRUNE_EVERY, settle_unique
from ferroq_core.unique import UniqueKey
from ferroq_sqlite.queries import sql

if TYPE_CHECKING:
    import sqlite3

    from ferroq_core.records import EnqueueRequest, EnqueueResult

__all__ = ["SqliteUnique", "insert_unique", "unique_keys"]


def insert_unique(db: sqlite3.Connection, req: EnqueueRequest, now: int) -> EnqueueResult:
    """Insert ``req`` (which has a unique rule) at ``now`` (epoch microseconds)."""
    return settle_unique(req, SqliteUnique(db, now))


def unique_keys(db: sqlite3.Connection, job_id: int) -> list[UniqueKey]:
    """The unique keys of a job (:meth:`~ferroq_core.storage.unique.UniqueKeys.unique_keys`)."""
    found = [
        UniqueKey(str(key), "pending")
        for (key,) in db.execute(sql("unique_key_of"), {"id": job_id})
        if key is not None
    ]
    found += [
        UniqueKey(str(key), "period", from_micros(expires))
        for key, expires in db.execute(sql("period_keys_of"), {"id": job_id})
    ]
    return found


def _available_at(now: int, delay: float) -> int:
    return now + round(delay * 1_000_000) if delay else now


def _first(row: Any) -> int | None:
    return None if row is None else int(row[0])


class SqliteUnique:
    """:class:`~ferroq_core.storage.unique.UniqueStatements` on one SQLite connection."""

    def __init__(self, db: sqlite3.Connection, now: int) -> None:
        self.db = db
        self.now = now

    def _key(self, req: EnqueueRequest, **more: Any) -> dict[str, Any]:
        return {"job_type": req.job_type, "key": req.idempotency_key, **more}

    def _row(self, req: EnqueueRequest) -> tuple[Any, ...]:
        return (
            req.queue,
            req.job_type,
            req.payload,
            req.priority,
            req.max_attempts,
            req.idempotency_key,
            req.tenant_id,
            _available_at(self.now, req.delay),
            self.now,
            req.limit_key,
        )

    def insert_keyed(self, req: EnqueueRequest) -> int | None:
        return _first(self.db.execute(sql("insert_keyed"), self._row(req)).fetchone())

    def key_holder(self, req: EnqueueRequest) -> int | None:
        row = self.db.execute(sql("key_holder"), (req.job_type, req.idempotency_key)).fetchone()
        return _first(row)

    def strip(self, req: EnqueueRequest, started: bool) -> None:
        self.db.execute(sql("unique_strip"), self._key(req, started=int(started)))

    def insert_unique(self, req: EnqueueRequest) -> int | None:
        params = self._key(
            req,
            queue=req.queue,
            payload=req.payload,
            priority=req.priority,
            max_attempts=req.max_attempts,
            tenant_id=req.tenant_id,
            available_at=_available_at(self.now, req.delay),
            created_at=self.now,
            limit_key=req.limit_key,
        )
        return _first(self.db.execute(sql("unique_insert"), params).fetchone())

    def unique_holder(self, req: EnqueueRequest, started: bool) -> int | None:
        params = self._key(req, started=int(started))
        return _first(self.db.execute(sql("unique_holder"), params).fetchone())

    def take_period(self, req: EnqueueRequest) -> int | None:
        assert req.unique is not None
        assert req.unique.period is not None
        expires = self.now + round(req.unique.period * 1_000_000)
        params = self._key(req, expires_at=expires, now=self.now)
        if self.db.execute(sql("period_take"), params).fetchone() is None:
            return None
        row = self._row(req)
        job = (*row[:5], *row[6:])  # insert_job's: no idempotency key
        job_id = int(self.db.execute(sql("insert_job_returning_id"), job).fetchone()[0])
        self.db.execute(sql("period_job"), self._key(req, job_id=job_id))
        if job_id % PRUNE_EVERY == 0:
            self.db.execute(sql("period_prune"), {"now": self.now})
        return job_id

    def period_holder(self, req: EnqueueRequest) -> int | None:
        return _first(self.db.execute(sql("period_holder"), self._key(req)).fetchone())

    def replace(self, job_id: int, req: EnqueueRequest, started: bool) -> bool:
        params = {
            "id": job_id,
            "payload": req.payload,
            "available_at": _available_at(self.now, req.delay),
            "started": int(started),
        }
        return self.db.execute(sql("unique_replace"), params).fetchone() is not None
