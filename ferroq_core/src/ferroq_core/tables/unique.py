"""Unique jobs' storage: the ``unique_key`` column of ``ferroq_jobs`` with its unique index
(the keys of modes ``while_queued`` and ``until_started``), the ``ferroq_unique_keys`` table
(the keys of mode ``for_period``, with their expiry), and the migration step that adds them.

The column and its index are declared on the jobs table, so a new database gets them from
step 1 and an application's Alembic from ``metadata``; this step adds them to a database
made before them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
import sqlalchemy as sa

from ferroq_core.tables.base import TIMESTAMP, Migration, metadata, table_differences
from ferroq_core.tables.jobs import jobs

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

__all__ = ["AddUniqueKeys", "unique_key_column", "unique_key_index", "unique_keys"]

#: The key of a job of mode ``while_queued`` or ``until_started``; a dispatch takes it off a
#: row that no longer holds it (running, failed, or started for ``until_started``), so at
#: most one row of a job type has each key.
unique_key_column = sa.Column("unique_key", sa.Text(), nullable=True)
jobs.append_column(unique_key_column)

_keyed = sa.text("unique_key IS NOT NULL")
unique_key_index = sa.Index(
    "ferroq_jobs_unique",
    jobs.c.job_type,
    jobs.c.unique_key,
    unique=True,
    postgresql_where=_keyed,
    sqlite_where=_keyed,
)

#: Keys held for a period (mode ``for_period``), whatever becomes of their job.
unique_keys = sa.Table(
    "ferroq_unique_keys",
    metadata,
    sa.Column("job_type", sa.Text(), primary_key=True),
    sa.Column("unique_key", sa.Text(), primary_key=True),
    #: The job that took the key (it may have finished since).
    sa.Column("job_id", sa.BigInteger(), nullable=True),
    sa.Column("expires_at", TIMESTAMP, nullable=False),
)
# Serves the pruning of expired keys, oldest first.
sa.Index("ferroq_unique_keys_expiry", unique_keys.c.expires_at)


@attrs.frozen
class AddUniqueKeys(Migration):
    """The unique-jobs step: ``ferroq_jobs.unique_key`` and its index, and
    ``ferroq_unique_keys``."""

    version: int = 4
    name: str = "add_unique_keys"

    def apply(self, conn: Connection) -> None:
        unique_keys.create(conn, checkfirst=True)
        if not _has_column(conn):
            # Nullable without a default: instant on both databases, whatever the table holds.
            conn.execute(sa.text("ALTER TABLE ferroq_jobs ADD COLUMN unique_key TEXT"))
        unique_key_index.create(conn, checkfirst=True)

    def differences(self, conn: Connection) -> list[str] | None:
        # A database made at step 1 by this ferroq has the column and its index already
        # (they are declared on the jobs table): only the keys table tells the step apart.
        if not sa.inspect(conn).has_table(unique_keys.name):
            return None
        found = table_differences(conn, [unique_keys]) or []
        if not _has_column(conn):
            found.append("column ferroq_jobs.unique_key is missing")
        return found


def _has_column(conn: Connection) -> bool:
    return any(c["name"] == "unique_key" for c in sa.inspect(conn).get_columns(jobs.name))
