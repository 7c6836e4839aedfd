"""The ``ferroq_jobs`` table as SQLAlchemy Core metadata, and its migrations.

``metadata`` can be included in an application's Alembic environment
(``target_metadata = [app_metadata, ferroq_core.schema.metadata]``); ``ferroq migrate`` applies
the same migrations without Alembic and records the version in ``ferroq_schema``. A step whose
tables another tool (Alembic, from ``metadata``) already made is *adopted*: ``ferroq migrate``
checks that they have the shape the step gives them, applies what DDL from ``metadata`` does
not carry (Postgres storage parameters) and records the step, creating nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
import sqlalchemy as sa

from ferroq_core.clock import to_micros
from ferroq_core.errors import SchemaMismatch

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
    "jobs",
    "metadata",
    "migrate",
    "schema_table",
    "table_differences",
]


#: Aware UTC datetimes: ``timestamptz`` on PostgreSQL, integer microseconds since the epoch on
#: SQLite (the backends convert). A plain SQLAlchemy type, not a ``TypeDecorator``, so that an
#: Alembic migration generated from ``metadata`` renders it as
#: ``sa.DateTime(timezone=True).with_variant(sa.BigInteger(), 'sqlite')``, which needs no import.
TIMESTAMP = sa.DateTime(timezone=True).with_variant(sa.BigInteger(), "sqlite")

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

schema_table = sa.Table(
    "ferroq_schema",
    metadata,
    sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("name", sa.Text(), nullable=False),
    sa.Column("applied_at", TIMESTAMP, nullable=False),
)


@attrs.frozen
class Migration:
    """One step of the schema's history."""

    #: Strictly increasing version number.
    version: int
    #: Short stable name.
    name: str

    def apply(self, conn: Connection) -> None:  # pragma: no cover - overridden
        """Create this step's objects."""
        raise NotImplementedError

    def differences(self, conn: Connection) -> list[str] | None:  # pragma: no cover
        """How this step's objects stand before it is recorded: None when none of them exists
        (apply the step), an empty list when all exist with the shape the step gives them
        (made by another tool, such as Alembic from ``metadata``: adopt it), else what
        differs. A step with nothing to inspect (a data change) returns None."""
        raise NotImplementedError

    def settle(self, conn: Connection) -> None:
        """What DDL from ``metadata`` does not carry, after :meth:`apply` and on adoption
        (so it must be idempotent). Nothing by default."""


@attrs.frozen
class Applied:
    """A step that :func:`migrate` recorded."""

    version: int
    name: str
    #: Its objects already existed with its shape (made by another tool, such as Alembic):
    #: recorded and settled, not created.
    adopted: bool


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
    for migration in migrations:
        if migration.version <= have:
            continue
        found = migration.differences(conn)
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


def table_differences(conn: Connection, tables: Sequence[sa.Table]) -> list[str] | None:
    """How ``tables`` in the database differ from their definition: None when none of them
    exists, else one line per missing table, column or index and per column or index of
    another type, nullability, column list or uniqueness (columns and indexes the database has
    beyond the definition, and index predicates, are not compared)."""
    inspector = sa.inspect(conn)
    present = [t for t in tables if inspector.has_table(t.name)]
    if not present:
        return None
    found = [f"table {t.name} is missing" for t in tables if t not in present]
    for table in present:
        found += _column_differences(conn, inspector, table)
        found += _index_differences(inspector, table)
        if conn.dialect.name == "sqlite" and table.dialect_options["sqlite"]["autoincrement"]:
            # Without AUTOINCREMENT SQLite reuses the id of a deleted newest row.
            made = conn.execute(
                sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :name"),
                {"name": table.name},
            ).scalar()
            if "AUTOINCREMENT" not in str(made).upper():
                found.append(f"table {table.name} is not AUTOINCREMENT")
    return found


def _column_differences(conn: Connection, inspector: sa.Inspector, table: sa.Table) -> list[str]:
    dialect = conn.dialect
    have = {c["name"]: c for c in inspector.get_columns(table.name)}
    found: list[str] = []
    for column in table.columns:
        name = f"{table.name}.{column.name}"
        if column.name not in have:
            found.append(f"column {name} is missing")
            continue
        want_type = column.type.compile(dialect=dialect)
        have_type = have[column.name]["type"].compile(dialect=dialect)
        if want_type != have_type:
            found.append(f"column {name} is {have_type}, not {want_type}")
        nulls = {True: "NULL", False: "NOT NULL"}
        if bool(have[column.name]["nullable"]) != bool(column.nullable):
            found.append(
                f"column {name} is {nulls[bool(have[column.name]['nullable'])]}, "
                f"not {nulls[bool(column.nullable)]}"
            )
    return found


def _index_differences(inspector: sa.Inspector, table: sa.Table) -> list[str]:
    have = {i["name"]: i for i in inspector.get_indexes(table.name)}
    found: list[str] = []
    for index in table.indexes:
        name = str(index.name)
        if name not in have:
            found.append(f"index {name} is missing")
            continue
        want = ([c.name for c in index.columns], bool(index.unique))
        if (list(have[name]["column_names"]), bool(have[name]["unique"])) != want:
            found.append(f"index {name} differs (columns or uniqueness)")
    return found
