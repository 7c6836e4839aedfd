"""The ``ferroq_jobs`` table as SQLAlchemy Core metadata, and its migrations.

``metadata`` can be included in an application's Alembic environment
(``target_metadata = [app_metadata, ferroq_core.schema.metadata]``); ``ferroq migrate`` applies
the same migrations without Alembic and records the version in ``ferroq_schema``.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator

from ferroq_core.clock import from_micros, to_micros

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.engine import Connection, Dialect

__all__ = [
    "SCHEMA_VERSION",
    "CreateJobsTable",
    "Migration",
    "Timestamp",
    "current_version",
    "jobs",
    "metadata",
    "migrate",
    "schema_table",
]


class Timestamp(TypeDecorator[datetime]):
    """Aware UTC datetimes: ``timestamptz`` on PostgreSQL, integer microseconds on SQLite."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.BigInteger())
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return to_micros(value)
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: ferroq needs timezone-aware datetimes")
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return from_micros(value)
        assert isinstance(value, datetime)
        return value


metadata = sa.MetaData()

# SQLite only makes INTEGER PRIMARY KEY an alias of the rowid (and so autoincrementing).
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

jobs = sa.Table(
    "ferroq_jobs",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("queue", sa.Text(), nullable=False),
    sa.Column("job_type", sa.Text(), nullable=False),
    sa.Column("payload", sa.Text(), nullable=False),
    sa.Column("status", sa.Text(), nullable=False, server_default="pending"),
    sa.Column("priority", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("max_attempts", sa.Integer(), nullable=False, server_default="3"),
    sa.Column("idempotency_key", sa.Text(), nullable=True),
    sa.Column("tenant_id", sa.Text(), nullable=True),
    sa.Column("available_at", Timestamp(), nullable=False),
    sa.Column("claimed_at", Timestamp(), nullable=True),
    sa.Column("claimed_by", sa.Text(), nullable=True),
    sa.Column("heartbeat_at", Timestamp(), nullable=True),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("failed_at", Timestamp(), nullable=True),
    sa.Column("created_at", Timestamp(), nullable=False),
    sa.CheckConstraint("status IN ('pending', 'claimed', 'failed')", name="ferroq_jobs_status"),
    sa.CheckConstraint("max_attempts >= 1", name="ferroq_jobs_max_attempts"),
    # Without AUTOINCREMENT SQLite hands the id of a deleted newest row to the next insert, so
    # a finished job's id (in logs, ledgers, `ferroq show`) would name a different job.
    sqlite_autoincrement=True,
)

_active = sa.text("status IN ('pending', 'claimed') AND idempotency_key IS NOT NULL")
_pending = sa.text("status = 'pending'")
_claimed = sa.text("status = 'claimed'")
_failed = sa.text("status = 'failed'")

# Idempotency holds under concurrency because the database enforces it, on both dialects.
sa.Index(
    "ferroq_jobs_idempotency",
    jobs.c.job_type,
    jobs.c.idempotency_key,
    unique=True,
    postgresql_where=_active,
    sqlite_where=_active,
)
# Serves the claim: eligible rows of one queue in (priority, available_at, id) order.
sa.Index(
    "ferroq_jobs_claim",
    jobs.c.queue,
    jobs.c.priority,
    jobs.c.available_at,
    jobs.c.id,
    postgresql_where=_pending,
    sqlite_where=_pending,
)
# Serves the reaper and heartbeats: claimed rows by lease age and by owner.
sa.Index(
    "ferroq_jobs_leases",
    jobs.c.heartbeat_at,
    postgresql_where=_claimed,
    sqlite_where=_claimed,
)
sa.Index(
    "ferroq_jobs_claimed_by",
    jobs.c.claimed_by,
    postgresql_where=_claimed,
    sqlite_where=_claimed,
)
# Serves `ferroq failed` (newest first) and `prune-failed`.
sa.Index(
    "ferroq_jobs_failed",
    jobs.c.failed_at,
    postgresql_where=_failed,
    sqlite_where=_failed,
)

schema_table = sa.Table(
    "ferroq_schema",
    metadata,
    sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("name", sa.Text(), nullable=False),
    sa.Column("applied_at", Timestamp(), nullable=False),
)


@attrs.frozen
class Migration:
    """One step of the schema's history."""

    #: Strictly increasing version number.
    version: int
    #: Short stable name.
    name: str

    def apply(self, conn: Connection) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


# Postgres: a queue table is a high-churn table. Vacuuming it after 1% of its rows are dead,
# instead of the default 20%, keeps the claim index small so throughput does not decay.
_PG_AUTOVACUUM = sa.text(
    "ALTER TABLE ferroq_jobs SET (autovacuum_vacuum_scale_factor = 0.01, "
    "autovacuum_vacuum_threshold = 1000, autovacuum_analyze_scale_factor = 0.02, "
    "autovacuum_vacuum_cost_delay = 0, fillfactor = 80)"
)


@attrs.frozen
class CreateJobsTable(Migration):
    """Migration 1: the jobs table and its indexes."""

    version: int = 1
    name: str = "create_jobs_table"

    def apply(self, conn: Connection) -> None:
        jobs.create(conn, checkfirst=True)
        for index in jobs.indexes:
            index.create(conn, checkfirst=True)
        if conn.dialect.name == "postgresql":
            conn.execute(_PG_AUTOVACUUM)


MIGRATIONS: Sequence[Migration] = (CreateJobsTable(),)
SCHEMA_VERSION = MIGRATIONS[-1].version

# Any constant works; it only has to be the same for every ferroq process.
_PG_MIGRATION_LOCK = sa.text("SELECT pg_advisory_xact_lock(7203391851)")


def current_version(conn: Connection) -> int:
    """The schema version recorded in this database (0 when ferroq was never migrated)."""
    if not sa.inspect(conn).has_table(schema_table.name):
        return 0
    version = conn.execute(sa.select(sa.func.max(schema_table.c.version))).scalar()
    return int(version or 0)


def migrate(conn: Connection, *, now: datetime) -> list[Migration]:
    """Apply every migration newer than the database's version; return those applied.

    Runs inside the caller's transaction; on PostgreSQL it takes an advisory lock so that two
    processes migrating at once apply each step once.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(_PG_MIGRATION_LOCK)
    schema_table.create(conn, checkfirst=True)
    have = current_version(conn)
    applied: list[Migration] = []
    for migration in MIGRATIONS:
        if migration.version <= have:
            continue
        migration.apply(conn)
        conn.execute(
            sa.insert(schema_table).values(
                version=migration.version, name=migration.name, applied_at=now
            )
        )
        applied.append(migration)
    return applied
