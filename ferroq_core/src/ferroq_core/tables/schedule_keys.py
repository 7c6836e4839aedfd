"""Schedules' limit keys: the nullable ``limit_key`` column of ``ferroq_schedules`` and
migration step 11 that adds it.

A schedule stores a payload, not a dispatch, so the limit key its job would get at dispatch
(the key given with ``.with_limit_key()``, else its type's declared payload field) is computed
when the schedule is saved and kept here; every tick's job is inserted with it (NULL: none,
and a schedule has no tenant to fall back on). The column is declared on the schedules table,
so a new database gets it from step 3 and an application's Alembic from ``metadata``; this
step adds it to a database made before it. Schedules already stored keep NULL: a declared one
is saved again, with its key, when a worker of this release starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import attrs
import sqlalchemy as sa

from ferroq_core.tables.base import Migration
from ferroq_core.tables.schedules import schedules

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

__all__ = ["AddScheduleLimitKeys", "schedule_limit_key_column"]

#: The limit key of every job the schedule enqueues; NULL: none.
schedule_limit_key_column = sa.Column("limit_key", sa.Text(), nullable=True)
schedules.append_column(schedule_limit_key_column)


@attrs.frozen
class AddScheduleLimitKeys(Migration):
    """The schedules' limit-keys step: ``ferroq_schedules.limit_key``."""

    version: int = 11
    name: str = "add_schedule_limit_keys"
    #: Only adds to ``ferroq_schedules``, whose definition carries it: a schedules table step 3
    #: created in the same run already has it (see :func:`ferroq_core.schema.migrate`).
    adds_to: ClassVar[str | None] = schedules.name

    def apply(self, conn: Connection) -> None:
        if _column(conn) is None:
            # Nullable without a default: instant on both databases, whatever the table holds.
            conn.execute(sa.text("ALTER TABLE ferroq_schedules ADD COLUMN limit_key TEXT"))

    def differences(self, conn: Connection) -> list[str] | None:
        column = _column(conn)
        if column is None:
            return None
        found = []
        have = column["type"].compile(dialect=conn.dialect)
        if have != "TEXT":
            found.append(f"column ferroq_schedules.limit_key is {have}, not TEXT")
        if not column["nullable"]:
            found.append("column ferroq_schedules.limit_key is NOT NULL, not NULL")
        return found


def _column(conn: Connection) -> sa.engine.interfaces.ReflectedColumn | None:
    inspector = sa.inspect(conn)
    if not inspector.has_table(schedules.name):
        return None
    for column in inspector.get_columns(schedules.name):
        if column["name"] == "limit_key":
            return column
    return None
