"""ferroq's tables as SQLAlchemy Core metadata, and their migrations in order.

``metadata`` can be included in an application's Alembic environment
(``target_metadata = [app_metadata, ferroq_core.schema.metadata]``); ``ferroq migrate`` applies
the same migrations without Alembic and records the version in ``ferroq_schema``. A step whose
tables another tool (Alembic, from ``metadata``) already made is *adopted*: ``ferroq migrate``
checks that they have the shape the step gives them, applies what DDL from ``metadata`` does
not carry (Postgres storage parameters) and records the step, creating nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa

from ferroq_core.clock import to_micros
from ferroq_core.errors import SchemaMismatch
from ferroq_core.tables.base import (
    TIMESTAMP,
    Applied,
    Migration,
    metadata,
    schema_table,
    table_differences,
)
from ferroq_core.tables.controls import CreateControlsTables
from ferroq_core.tables.history import CreateHistoryTables
from ferroq_core.tables.jobs import CreateJobsTable, jobs
from ferroq_core.tables.limitkeys import GROUPS_INDEX, AddLimitKeys
from ferroq_core.tables.limits import AddFlowLimits
from ferroq_core.tables.result_ttl import AddResultTtl
from ferroq_core.tables.results import CreateResultsTable
from ferroq_core.tables.schedule_keys import AddScheduleLimitKeys
from ferroq_core.tables.schedules import CreateSchedulesTable
from ferroq_core.tables.unique import AddUniqueKeys
from ferroq_core.tables.workers import CreateWorkerTables

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from sqlalchemy.engine import Connection

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "TIMESTAMP",
    "Applied",
    "CreateJobsTable",
    "Migration",
    "adoptable",
    "current_version",
    "include_object",
    "jobs",
    "metadata",
    "migrate",
    "schema_table",
    "table_differences",
]

#: Every step of the schema's history, in order. A feature that adds tables appends one step
#: (its module in :mod:`ferroq_core.tables`); versions are consecutive from 1.
MIGRATIONS: Sequence[Migration] = (
    CreateJobsTable(),
    CreateResultsTable(),
    CreateSchedulesTable(),
    AddUniqueKeys(),
    CreateControlsTables(),
    CreateHistoryTables(),
    CreateWorkerTables(),
    AddFlowLimits(),
    AddResultTtl(),
    AddLimitKeys(),
    AddScheduleLimitKeys(),
)
SCHEMA_VERSION = MIGRATIONS[-1].version

# Any constant works; it only has to be the same for every ferroq process.
_PG_MIGRATION_LOCK = sa.text("SELECT pg_advisory_xact_lock(7203391851)")


def current_version(conn: Connection) -> int:
    """The schema version recorded in this database (0 when ferroq was never migrated)."""
    if not sa.inspect(conn).has_table(schema_table.name):
        return 0
    version = conn.execute(sa.select(sa.func.max(schema_table.c.version))).scalar()
    return int(version or 0)


def migrate(
    conn: Connection, *, now: datetime, migrations: Sequence[Migration] = MIGRATIONS
) -> list[Applied]:
    """Apply or adopt every migration newer than the database's version; return those
    recorded.

    Runs inside the caller's transaction; on PostgreSQL it takes an advisory lock so that two
    processes migrating at once apply each step once. Raises :class:`SchemaMismatch`, having
    recorded nothing of that step, when a step's objects exist in another shape.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(_PG_MIGRATION_LOCK)
    schema_table.create(conn, checkfirst=True)
    have = current_version(conn)
    # The column is BIGINT on SQLite: the ferroq backends store microseconds there.
    applied_at = to_micros(now) if conn.dialect.name == "sqlite" else now
    recorded: list[Applied] = []
    # A table absent now and present at a later step was made by a step of this run.
    existed = set(sa.inspect(conn).get_table_names())
    for migration in migrations:
        if migration.version <= have:
            continue
        found = migration.differences(conn)
        if found == [] and migration.adds_to is not None and migration.adds_to not in existed:
            found = None  # its column came with the table this run made: applied
        if found:
            raise SchemaMismatch(
                f"ferroq schema step {migration.version} ({migration.name}) finds its tables "
                f"in another shape: {'; '.join(found)}. Make them match "
                "ferroq_core.schema.metadata (e.g. regenerate the Alembic migration), then run "
                "`ferroq migrate` again"
            )
        if found is None:
            migration.apply(conn)
        migration.settle(conn)
        conn.execute(
            sa.insert(schema_table).values(
                version=migration.version, name=migration.name, applied_at=applied_at
            )
        )
        recorded.append(Applied(migration.version, migration.name, adopted=found is not None))
    return recorded


def adoptable(
    conn: Connection, version: int, migrations: Sequence[Migration] = MIGRATIONS
) -> list[str]:
    """The names of the steps after ``version`` whose objects already exist with their
    shape: what ``ferroq migrate`` would adopt."""
    return [m.name for m in migrations if m.version > version and m.differences(conn) == []]


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """For an application's Alembic ``env.py``:
    ``context.configure(..., include_object=ferroq_core.schema.include_object)``. It leaves
    out of autogenerate what ferroq makes outside ``metadata`` where it is needed: the
    limited claim's index ``ferroq_jobs_groups``, made when the first limit is set
    (:mod:`ferroq_core.tables.limitkeys`), which autogenerate would otherwise propose to
    drop. Everything else is compared as usual (an application with an ``include_object``
    of its own calls this one from it)."""
    return not (type_ == "index" and name == GROUPS_INDEX and reflected and compare_to is None)
