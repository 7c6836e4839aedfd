"""What every ferroq table is made with: the shared ``metadata``, the timestamp and id types,
the ``ferroq_schema`` version table, and :class:`Migration`, one step of the schema's history.

Each feature keeps its tables and its migration step in a module of this package
(:mod:`~ferroq_core.tables.jobs`, ...); :mod:`ferroq_core.schema` lists the steps in order and
applies them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import attrs
import sqlalchemy as sa

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.engine import Connection

__all__ = [
    "ID",
    "TIMESTAMP",
    "Applied",
    "Migration",
    "metadata",
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
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


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
    #: The name of the one table to which the step only adds columns (or indexes), declared
    #: on that table in ``metadata``; None for any other step. A table that an earlier step
    #: created in the same run (from the whole metadata) already has them, and the step then
    #: counts as applied, not adopted.
    adds_to: ClassVar[str | None] = None

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
