"""What ran: the history of succeeded jobs, the error of every failed attempt, and the
latest progress a running job reported; and the migration step that creates them.

- ``ferroq_job_history``: one compact row per succeeded job whose type keeps history
  (``keep_history``), written in the same transaction as its acknowledgement.
- ``ferroq_job_errors``: one row per failed attempt of any job, written by a trigger on
  ``ferroq_jobs`` in the same statement as the fenced write that records the failure
  (a retry's release, ``fail``, the reaper, a dead worker's take-back), so no write path can
  forget it and a success costs nothing. An attempt given back (``ctx.release()``, shutdown)
  is no failure and leaves no row.
- ``ferroq_job_progress``: a running job's latest ``ctx.progress()``, written by its
  worker's heartbeat thread.

Workers prune all three past the retention window, in small batches (see
:mod:`ferroq_core.storage.history`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
import sqlalchemy as sa

from ferroq_core.tables.base import ID, TIMESTAMP, Migration, metadata, table_differences

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

__all__ = ["CreateHistoryTables", "job_errors", "job_history", "job_progress"]

job_history = sa.Table(
    "ferroq_job_history",
    metadata,
    sa.Column("job_id", ID, primary_key=True, autoincrement=False),
    sa.Column("queue", sa.Text(), nullable=False),
    sa.Column("job_type", sa.Text(), nullable=False),
    sa.Column("tenant_id", sa.Text(), nullable=True),
    sa.Column("priority", sa.Integer(), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("max_attempts", sa.Integer(), nullable=False),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.Column("claimed_at", TIMESTAMP, nullable=True),
    sa.Column("finished_at", TIMESTAMP, nullable=False),
    #: Seconds the handler ran (the worker's clock).
    sa.Column("duration", sa.Double(), nullable=False),
    sa.Column("worker", sa.Text(), nullable=True),
)
# Serves the listing (newest first) and the pruning (oldest first).
sa.Index("ferroq_job_history_finished", job_history.c.finished_at)

job_errors = sa.Table(
    "ferroq_job_errors",
    metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("job_id", ID, nullable=False),
    sa.Column("attempt", sa.Integer(), nullable=False),
    sa.Column("error", sa.Text(), nullable=False),
    sa.Column("worker", sa.Text(), nullable=True),
    sa.Column("failed_at", TIMESTAMP, nullable=False),
)
sa.Index("ferroq_job_errors_job", job_errors.c.job_id, job_errors.c.id)
sa.Index("ferroq_job_errors_failed", job_errors.c.failed_at)

job_progress = sa.Table(
    "ferroq_job_progress",
    metadata,
    sa.Column("job_id", ID, primary_key=True, autoincrement=False),
    sa.Column("fraction", sa.Double(), nullable=True),
    sa.Column("message", sa.Text(), nullable=True),
    sa.Column("updated_at", TIMESTAMP, nullable=False),
)
sa.Index("ferroq_job_progress_updated", job_progress.c.updated_at)

# The attempt-error trigger. An attempt failed when a write takes a claimed row's attempt as
# counted (attempts unchanged) and sets an error: release with a count, fail, the reaper, a
# dead worker's take-back. A given-back attempt (attempts - 1) or a write without an error is
# none. Trigger DDL is not in ``metadata`` (SQLAlchemy has no construct for it), so it is made
# by ``settle``, on adoption too, and replaced idempotently.
_SQLITE_TRIGGER = (
    sa.text("DROP TRIGGER IF EXISTS ferroq_jobs_attempt_error"),
    sa.text(
        "CREATE TRIGGER ferroq_jobs_attempt_error AFTER UPDATE OF error ON ferroq_jobs "
        "WHEN NEW.error IS NOT NULL AND OLD.status = 'claimed' "
        "AND NEW.attempts = OLD.attempts "
        "BEGIN "
        "INSERT INTO ferroq_job_errors (job_id, attempt, error, worker, failed_at) "
        "VALUES (NEW.id, NEW.attempts, NEW.error, OLD.claimed_by, "
        "CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)); "
        "END"
    ),
)
_PG_TRIGGER = (
    sa.text(
        "CREATE OR REPLACE FUNCTION ferroq_record_attempt_error() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN "
        "INSERT INTO ferroq_job_errors (job_id, attempt, error, worker, failed_at) "
        "VALUES (NEW.id, NEW.attempts, NEW.error, OLD.claimed_by, statement_timestamp()); "
        "RETURN NULL; END $$"
    ),
    sa.text("DROP TRIGGER IF EXISTS ferroq_jobs_attempt_error ON ferroq_jobs"),
    sa.text(
        "CREATE TRIGGER ferroq_jobs_attempt_error AFTER UPDATE OF error ON ferroq_jobs "
        "FOR EACH ROW WHEN (NEW.error IS NOT NULL AND OLD.status = 'claimed' "
        "AND NEW.attempts = OLD.attempts) EXECUTE FUNCTION ferroq_record_attempt_error()"
    ),
)

TABLES = (job_history, job_errors, job_progress)


@attrs.frozen
class CreateHistoryTables(Migration):
    """The history, attempt-error and progress tables, and the attempt-error trigger."""

    version: int = 6
    name: str = "create_history_tables"

    def apply(self, conn: Connection) -> None:
        for table in TABLES:
            table.create(conn)

    def differences(self, conn: Connection) -> list[str] | None:
        return table_differences(conn, list(TABLES))

    def settle(self, conn: Connection) -> None:
        statements = _PG_TRIGGER if conn.dialect.name == "postgresql" else _SQLITE_TRIGGER
        for statement in statements:
            conn.execute(statement)
