"""The ``ferroq_jobs`` table, its indexes, and migration step 1 that creates them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
import sqlalchemy as sa

from ferroq_core.tables.base import ID, TIMESTAMP, Migration, metadata, table_differences

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

__all__ = ["CreateJobsTable", "jobs"]

jobs = sa.Table(
    "ferroq_jobs",
    metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("queue", sa.Text(), nullable=False),
    sa.Column("job_type", sa.Text(), nullable=False),
    sa.Column("payload", sa.Text(), nullable=False),
    sa.Column("status", sa.Text(), nullable=False, server_default="pending"),
    sa.Column("priority", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("max_attempts", sa.Integer(), nullable=False, server_default="3"),
    sa.Column("idempotency_key", sa.Text(), nullable=True),
    sa.Column("tenant_id", sa.Text(), nullable=True),
    sa.Column("available_at", TIMESTAMP, nullable=False),
    sa.Column("claimed_at", TIMESTAMP, nullable=True),
    sa.Column("claimed_by", sa.Text(), nullable=True),
    sa.Column("heartbeat_at", TIMESTAMP, nullable=True),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("failed_at", TIMESTAMP, nullable=True),
    sa.Column("created_at", TIMESTAMP, nullable=False),
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

# Postgres: a queue table is a high-churn table. Vacuuming it after 1% of its rows are dead,
# instead of the default 20%, keeps the claim index small so throughput does not decay.
# Storage parameters are not in ``metadata`` (``postgresql_with`` needs SQLAlchemy 2.1, and
# Alembic does not compare them), so adopting the table applies them too.
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
        jobs.create(conn)

    def differences(self, conn: Connection) -> list[str] | None:
        return table_differences(conn, [jobs])

    def settle(self, conn: Connection) -> None:
        if conn.dialect.name == "postgresql":
            conn.execute(_PG_AUTOVACUUM)
