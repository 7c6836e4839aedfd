"""Enqueue, shared by every SQL backend (see :mod:`.sql`): bulk inserts, idempotency keys
through the partial unique index, and transactional dispatch on a caller's connection."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa

from ferroq_core.errors import DatabaseError
from ferroq_core.records import EnqueueRequest, EnqueueResult
from ferroq_core.schema import jobs

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Sequence
    from contextlib import AbstractContextManager

    from sqlalchemy.engine import Connection

__all__ = ["EnqueueMixin", "settle_key"]

T = TypeVar("T")

_ACTIVE = jobs.c.status.in_(("pending", "claimed"))
# The ON CONFLICT target's predicate, written with literals exactly as the partial index's
# (schema.py): with bound parameters Postgres can only match the index while it plans with the
# values, and fails ("no unique or exclusion constraint matching the ON CONFLICT
# specification") once psycopg prepares the statement and a generic plan is used.
_ACTIVE_KEYED = sa.text("status IN ('pending', 'claimed') AND idempotency_key IS NOT NULL")


class EnqueueMixin:
    """Writing new jobs; needs ``_write``, ``_errors``, ``_at``, ``_insert``, ``_notify`` and
    ``wake`` from :class:`~ferroq_core.storage.sql.SqlBackend`."""

    if TYPE_CHECKING:

        def _write(self, fn: Callable[[Connection], T]) -> T: ...
        def _errors(self) -> AbstractContextManager[None]: ...
        def _at(self, offset: float = 0.0) -> sa.ColumnElement[Any]: ...
        def _insert(self) -> Any: ...
        def _notify(self, conn: Connection, queues: Collection[str]) -> None: ...
        def wake(self) -> None: ...

    @staticmethod
    def _values(req: EnqueueRequest) -> dict[str, Any]:
        return {
            "queue": req.queue,
            "job_type": req.job_type,
            "payload": req.payload,
            "status": "pending",
            "priority": req.priority,
            "attempts": 0,
            "max_attempts": req.max_attempts,
            "idempotency_key": req.idempotency_key,
            "tenant_id": req.tenant_id,
        }

    def _enqueue_in(
        self, conn: Connection, requests: Sequence[EnqueueRequest]
    ) -> list[EnqueueResult]:
        results: list[EnqueueResult | None] = [None] * len(requests)
        plain = [i for i, r in enumerate(requests) if r.idempotency_key is None]
        keyed = [i for i, r in enumerate(requests) if r.idempotency_key is not None]
        if plain:
            # Delays differ per job, so available_at is a per-row parameter; created_at and the
            # base clock are evaluated once for the batch.
            for i, req in zip(
                plain, self._insert_plain(conn, [requests[i] for i in plain]), strict=True
            ):
                results[i] = req
        for i in keyed:
            results[i] = self._insert_keyed(conn, requests[i])
        if requests:
            self._notify(conn, {r.queue for r in requests})
        return [r for r in results if r is not None]

    def _insert_plain(
        self, conn: Connection, reqs: Sequence[EnqueueRequest]
    ) -> list[EnqueueResult]:
        base = self._clock_value(conn)
        rows = [
            dict(self._values(r), available_at=self._shift(base, r.delay), created_at=base)
            for r in reqs
        ]
        stmt = sa.insert(jobs).returning(jobs.c.id, sort_by_parameter_order=True)
        ids = [int(row[0]) for row in conn.execute(stmt, rows)]
        return [EnqueueResult(id=i) for i in ids]

    def _insert_keyed(self, conn: Connection, req: EnqueueRequest) -> EnqueueResult:
        base = self._clock_value(conn)
        values = dict(self._values(req), available_at=self._shift(base, req.delay), created_at=base)
        stmt = (
            self._insert()
            .values(**values)
            .on_conflict_do_nothing(
                index_elements=[jobs.c.job_type, jobs.c.idempotency_key],
                index_where=_ACTIVE_KEYED,
            )
            .returning(jobs.c.id)
        )
        holder = sa.select(jobs.c.id).where(
            jobs.c.job_type == req.job_type,
            jobs.c.idempotency_key == req.idempotency_key,
            _ACTIVE,
        )
        return settle_key(
            req, lambda: conn.execute(stmt).scalar(), lambda: conn.execute(holder).scalar()
        )

    def _clock_value(self, conn: Connection) -> datetime:
        """The clock read once (so a batch shares one created_at)."""
        value = conn.execute(sa.select(self._at(0.0))).scalar_one()
        assert isinstance(value, datetime)
        return value

    @staticmethod
    def _shift(base: datetime, delay: float) -> datetime:
        return base + timedelta(seconds=delay) if delay else base

    def enqueue(
        self, requests: Sequence[EnqueueRequest], *, connection: Any = None
    ) -> list[EnqueueResult]:
        if not requests:
            return []
        if connection is None:
            results = self._write(lambda conn: self._enqueue_in(conn, requests))
        else:
            conn = _as_connection(connection)
            with self._errors():
                results = self._enqueue_in(conn, requests)
        self.wake()
        return results


def settle_key(
    req: EnqueueRequest, insert: Callable[[], Any], holder: Callable[[], Any]
) -> EnqueueResult:
    """The result of enqueueing ``req`` (which has an idempotency key): ``insert()`` returns
    the new id or None when the key is taken, ``holder()`` the id of the job holding it.

    The existing job may finish between our INSERT and SELECT; then the key is free again and
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


def _as_connection(connection: Any) -> Connection:
    """Accept a SQLAlchemy ``Connection`` or ``Session`` for transactional dispatch."""
    if isinstance(connection, sa.engine.Connection):
        return connection
    get = getattr(connection, "connection", None)
    if callable(get):
        conn = get()
        if isinstance(conn, sa.engine.Connection):
            return conn
    raise TypeError(
        "dispatch(connection=...) takes a SQLAlchemy Connection or Session, "
        f"not {type(connection).__name__}"
    )
