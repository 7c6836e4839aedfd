"""The control plane's tables (``ferroq_pauses``, ``ferroq_cancellations``) and the migration
step that creates them.

Both stay tiny (a row per pause in force, a row per running job asked to stop) and are read by
statements the worker already sends: the claim skips what a pause covers and jobs with a cancel
request; the heartbeat returns which held jobs have one. No foreign key: a cascade would cost
every completion a lookup, so a request whose job is gone is swept by the worker's reaper.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
import sqlalchemy as sa

from ferroq_core.tables.base import ID, TIMESTAMP, Migration, metadata, table_differences

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

__all__ = ["CreateControlsTables", "cancellations", "pauses"]

pauses = sa.Table(
    "ferroq_pauses",
    metadata,
    sa.Column("scope", sa.Text(), primary_key=True),
    sa.Column("name", sa.Text(), primary_key=True),
    sa.Column("paused_at", TIMESTAMP, nullable=False),
    sa.Column("reason", sa.Text(), nullable=True),
    sa.CheckConstraint("scope IN ('queue', 'job_type', 'tenant')", name="ferroq_pauses_scope"),
)

cancellations = sa.Table(
    "ferroq_cancellations",
    metadata,
    sa.Column("job_id", ID, primary_key=True, autoincrement=False),
    sa.Column("requested_at", TIMESTAMP, nullable=False),
)


@attrs.frozen
class CreateControlsTables(Migration):
    """The pauses and cancel requests tables."""

    version: int = 5
    name: str = "create_controls_tables"

    def apply(self, conn: Connection) -> None:
        pauses.create(conn)
        cancellations.create(conn)

    def differences(self, conn: Connection) -> list[str] | None:
        return table_differences(conn, [pauses, cancellations])
