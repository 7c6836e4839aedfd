"""Limit keys' storage: the ``limit_key`` column of ``ferroq_jobs`` (the key a job's limits
and fair turns count it under: the key given at dispatch, else its type's declared payload
field, else its tenant), the limited claim's groups index, and migration step 10.

The column is declared on the jobs table, so a new database gets it from step 1 and an
application's Alembic from ``metadata``; step 10 adds it to a database made before it.

The groups index (``ferroq_jobs_groups``: a queue's pending jobs by job type and limit key,
each group in claim order) is *not* in ``metadata``: only the limited claim reads it, and
every insert and claim pays for it, so it exists only where limits do. Postgres makes it when
a limit is set (:meth:`~ferroq_core.storage.flow.FlowStore.set_limit`: an operator's ``ferroq
limits set``, a worker declaring its job types' limits), concurrently, which a claim's
transaction cannot do; SQLite in the first limited claim that reads a queue's groups (its head
held jobs back, or the queue is fair), so a limit that never binds at the head costs no index.
Step 10 remakes it on the new columns where limits exist and drops the step-8 one elsewhere.
Schema checks accept it present or absent (:func:`~ferroq_core.tables.base.table_differences`
compares only declared indexes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import attrs
import sqlalchemy as sa

from ferroq_core.tables.base import Migration
from ferroq_core.tables.jobs import jobs
from ferroq_core.tables.limits import limits

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

__all__ = [
    "GROUPS_COLUMNS",
    "GROUPS_INDEX",
    "AddLimitKeys",
    "groups_index",
    "limit_key_column",
]

#: The limit key of a job; NULL: none (its limits count it under the key '').
limit_key_column = sa.Column("limit_key", sa.Text(), nullable=True)
jobs.append_column(limit_key_column)

#: The groups index's name and columns; the backends' own statement that makes it
#: (``groups_index_create`` in each queries.sql) has the same (checked by the contract suite).
GROUPS_INDEX = "ferroq_jobs_groups"
GROUPS_COLUMNS = ("queue", "job_type", "limit_key", "priority", "available_at", "id")

_pending = sa.text("status = 'pending'")
# On a table of its own metadata: an index built on ``jobs``' columns would join ``jobs`` and
# so ``metadata``, where Alembic would make it for every database.
_jobs_shape = sa.Table(
    jobs.name, sa.MetaData(), *(sa.Column(name, sa.Text()) for name in GROUPS_COLUMNS)
)
#: The groups index as step 10 makes it (inside the migration's transaction).
groups_index = sa.Index(
    GROUPS_INDEX,
    *(_jobs_shape.c[name] for name in GROUPS_COLUMNS),
    postgresql_where=_pending,
    sqlite_where=_pending,
)


@attrs.frozen
class AddLimitKeys(Migration):
    """The limit-keys step: ``ferroq_jobs.limit_key``, filled with the tenant of the jobs
    already there, and the groups index on it where limits exist (dropped elsewhere)."""

    version: int = 10
    name: str = "add_limit_keys"
    #: Only adds to ``ferroq_jobs``, whose definition carries it: a jobs table step 1 created
    #: in the same run already has it (see :func:`ferroq_core.schema.migrate`).
    adds_to: ClassVar[str | None] = jobs.name

    def apply(self, conn: Connection) -> None:
        if _column(conn) is None:
            # Nullable without a default: instant on both databases, whatever the table holds.
            conn.execute(sa.text("ALTER TABLE ferroq_jobs ADD COLUMN limit_key TEXT"))

    def settle(self, conn: Connection) -> None:
        # On adoption too: a database whose column Alembic added still needs these.
        # Until now a job's key was its tenant. Failed jobs too: one retried later must be
        # counted as it would have been.
        conn.execute(
            sa.update(jobs)
            .where(jobs.c.limit_key.is_(None), jobs.c.tenant_id.is_not(None))
            .values(limit_key=jobs.c.tenant_id)
        )
        # Step 8 made the index on (queue, job_type, tenant_id, ...) for every database.
        groups_index.drop(conn, checkfirst=True)
        if conn.execute(sa.select(sa.func.count()).select_from(limits)).scalar():
            groups_index.create(conn)

    def differences(self, conn: Connection) -> list[str] | None:
        column = _column(conn)
        if column is None:
            return None
        found = []
        if column["type"].compile(dialect=conn.dialect) != "TEXT":
            found.append(f"column ferroq_jobs.limit_key is {column['type']}, not TEXT")
        if not column["nullable"]:
            found.append("column ferroq_jobs.limit_key is NOT NULL, not NULL")
        return found


def _column(conn: Connection) -> sa.engine.interfaces.ReflectedColumn | None:
    inspector = sa.inspect(conn)
    if not inspector.has_table(jobs.name):
        return None
    for column in inspector.get_columns(jobs.name):
        if column["name"] == "limit_key":
            return column
    return None
