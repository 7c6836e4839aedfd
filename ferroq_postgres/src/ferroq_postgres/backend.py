"""PostgreSQL backend: ``FOR UPDATE SKIP LOCKED`` claims on the database clock."""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from ferroq_core.records import JobRow
from ferroq_core.schema import Timestamp, jobs
from ferroq_core.storage.sql import JOB_COLUMNS, SqlBackend, row_to_job

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

__all__ = ["PostgresBackend", "normalize_url"]

#: The LISTEN/NOTIFY channel; the payload is the queue name, never job data.
CHANNEL = "ferroq_jobs"


def normalize_url(url: str | sa.engine.URL) -> sa.engine.URL:
    """Any postgres URL as a ``postgresql+psycopg`` URL (psycopg 3 is the only driver)."""
    parsed = sa.engine.make_url(url)
    return parsed.set(drivername="postgresql+psycopg")


class PostgresBackend(SqlBackend):
    """Share one instance per process; it is thread-safe."""

    name = "postgres"

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)

    @classmethod
    def from_url(cls, url_or_engine: Any, **options: Any) -> PostgresBackend:
        if isinstance(url_or_engine, sa.engine.Engine):
            return cls(url_or_engine)
        engine = sa.create_engine(
            normalize_url(url_or_engine),
            pool_size=int(options.pop("pool_size", 10)),
            max_overflow=int(options.pop("max_overflow", 10)),
            pool_pre_ping=True,
        )
        return cls(engine, **options)

    def _at(self, offset: float = 0.0) -> sa.ColumnElement[Any]:
        # statement_timestamp(): the database clock, not skewed by a long caller transaction.
        now = sa.func.statement_timestamp(type_=Timestamp())
        if not offset:
            return now
        return sa.cast(
            now + sa.func.make_interval(0, 0, 0, 0, 0, 0, sa.literal(float(offset))),
            Timestamp(),
        )

    def _insert(self) -> Any:
        return pg_insert(jobs)

    def _claim_one(self, conn: Connection, queue: str, worker_id: str, limit: int) -> list[JobRow]:
        # Lock exactly `limit` rows in a CTE and update those: UPDATE ... WHERE id IN (SELECT
        # ... LIMIT n) may re-evaluate the subquery and claim more than n rows.
        picked = (
            sa.select(jobs.c.id)
            .where(
                jobs.c.status == "pending",
                jobs.c.queue == queue,
                jobs.c.available_at <= self._at(0.0),
            )
            .order_by(jobs.c.priority, jobs.c.available_at, jobs.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .cte("picked")
        )
        stmt = (
            sa.update(jobs)
            .where(jobs.c.id == picked.c.id)
            .values(**self._claim_values(worker_id))
            .returning(*JOB_COLUMNS)
        )
        rows = [row_to_job(r) for r in conn.execute(stmt)]
        rows.sort(key=lambda r: (r.priority, r.available_at, r.id))
        return rows

    def _notify(self, conn: Connection, queues: Collection[str]) -> None:
        for queue in sorted(queues):
            conn.execute(sa.select(sa.func.pg_notify(CHANNEL, queue)))
