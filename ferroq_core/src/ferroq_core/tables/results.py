"""The ``ferroq_results`` table (the return values of jobs whose type stores them) and the
migration step that creates it.

A row is written by the same fenced statement (Postgres) or transaction (SQLite) that deletes
its job's row on success, so a result exists exactly when its job was acknowledged. It has no
foreign key to ``ferroq_jobs``: the job's row is gone by then.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
import sqlalchemy as sa

from ferroq_core.tables.base import ID, TIMESTAMP, Migration, metadata, table_differences

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

__all__ = ["CreateResultsTable", "results"]

results = sa.Table(
    "ferroq_results",
    metadata,
    # The job's id (its row in ferroq_jobs is deleted in the same transaction).
    sa.Column("job_id", ID, primary_key=True, autoincrement=False),
    sa.Column("job_type", sa.Text(), nullable=False),
    # The return value, as the job's serializer encoded it.
    sa.Column("value", sa.Text(), nullable=False),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.Column("expires_at", TIMESTAMP, nullable=False),
)

# Serves the pruning of expired results (a bounded DELETE in each reaper pass).
sa.Index("ferroq_results_expires", results.c.expires_at)


@attrs.frozen
class CreateResultsTable(Migration):
    """The results table and its index."""

    version: int = 2
    name: str = "create_results_table"

    def apply(self, conn: Connection) -> None:
        results.create(conn)

    def differences(self, conn: Connection) -> list[str] | None:
        return table_differences(conn, [results])
