"""One dispatch's stored result (``.with_stored_result()``): the nullable ``result_ttl`` column
of ``ferroq_jobs`` and migration step 9 that adds it.

The worker acknowledges a job from the row it claimed, so a dispatch's wish to keep the result
of a type without ``store_result`` travels in the row: ``result_ttl`` is the seconds to keep
it, NULL (every other job) meaning "as the job type says". The column is declared on the jobs
table, so a new database gets it from step 1 and an application's Alembic from ``metadata``;
this step adds it to a database made before it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import attrs
import sqlalchemy as sa

from ferroq_core.tables.base import Migration
from ferroq_core.tables.jobs import jobs

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

__all__ = ["AddResultTtl", "result_ttl_column"]

#: Seconds to keep the job's result, asked by its dispatch; NULL: as its type says.
result_ttl_column: sa.Column[float] = sa.Column("result_ttl", sa.Double(), nullable=True)
jobs.append_column(result_ttl_column)

# Nullable without a default: instant on both databases, whatever the table holds (no rewrite;
# PostgreSQL records it in the catalog, SQLite in the table's schema text).
_ADD = {
    "postgresql": sa.text("ALTER TABLE ferroq_jobs ADD COLUMN result_ttl DOUBLE PRECISION"),
    "sqlite": sa.text("ALTER TABLE ferroq_jobs ADD COLUMN result_ttl DOUBLE"),
}


@attrs.frozen
class AddResultTtl(Migration):
    """The per-dispatch results step: ``ferroq_jobs.result_ttl``."""

    version: int = 9
    name: str = "add_result_ttl"
    #: Only adds to ``ferroq_jobs``, whose definition carries it: a jobs table step 1 created
    #: in the same run already has it (see :func:`ferroq_core.schema.migrate`).
    adds_to: ClassVar[str | None] = jobs.name

    def apply(self, conn: Connection) -> None:
        if _column(conn) is None:
            conn.execute(_ADD[conn.dialect.name])

    def differences(self, conn: Connection) -> list[str] | None:
        found = _column(conn)
        if found is None:
            return None
        want = result_ttl_column.type.compile(dialect=conn.dialect)
        have = found["type"].compile(dialect=conn.dialect)
        problems = [] if have == want else [f"column ferroq_jobs.result_ttl is {have}, not {want}"]
        if not found["nullable"]:
            problems.append("column ferroq_jobs.result_ttl is NOT NULL, not NULL")
        return problems


def _column(conn: Connection) -> sa.engine.interfaces.ReflectedColumn | None:
    inspector = sa.inspect(conn)
    if not inspector.has_table(jobs.name):
        return None
    for column in inspector.get_columns(jobs.name):
        if column["name"] == "result_ttl":
            return column
    return None
