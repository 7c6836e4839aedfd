"""The ``ferroq_schedules`` table (periodic jobs) and the migration step that creates it.

One row per schedule, read by every worker and the CLI, so an edit takes effect at the next
tick without a restart. ``next_run_at`` is the next tick not yet enqueued: a worker enqueues
due ticks in the same transaction as it moves it on, with a compare-and-set on
(``next_run_at``, ``revision``), so each tick is enqueued once whatever the number of
workers (docs/schedules.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
import sqlalchemy as sa

from ferroq_core.tables.base import ID, TIMESTAMP, Migration, metadata, table_differences

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

__all__ = ["CreateSchedulesTable", "schedules"]

schedules = sa.Table(
    "ferroq_schedules",
    metadata,
    sa.Column("name", sa.Text(), primary_key=True),
    sa.Column("job_type", sa.Text(), nullable=False),
    sa.Column("payload", sa.Text(), nullable=False),
    sa.Column("queue", sa.Text(), nullable=False),
    sa.Column("priority", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("max_attempts", sa.Integer(), nullable=False, server_default="3"),
    sa.Column("cron", sa.Text(), nullable=False),
    sa.Column("timezone", sa.Text(), nullable=False, server_default="UTC"),
    sa.Column("catch_up", sa.Text(), nullable=False, server_default="latest"),
    sa.Column("catch_up_window", sa.Double(), nullable=False, server_default="3600"),
    sa.Column("source", sa.Text(), nullable=False, server_default="api"),
    # 0 or 1 (an integer on both databases: one statement text per backend stays simple).
    sa.Column("paused", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("next_run_at", TIMESTAMP, nullable=True),
    sa.Column("last_run_at", TIMESTAMP, nullable=True),
    sa.Column("last_job_id", ID, nullable=True),
    sa.Column("revision", sa.Integer(), nullable=False, server_default="1"),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.Column("updated_at", TIMESTAMP, nullable=False),
    sa.CheckConstraint("catch_up IN ('latest', 'all', 'none')", name="ferroq_schedules_catch_up"),
    sa.CheckConstraint("paused IN (0, 1)", name="ferroq_schedules_paused"),
)

# Serves the worker's one look per turn: the earliest next run of the active schedules.
sa.Index("ferroq_schedules_due", schedules.c.paused, schedules.c.next_run_at)


@attrs.frozen
class CreateSchedulesTable(Migration):
    """The schedules table of periodic jobs."""

    version: int = 3
    name: str = "create_schedules_table"

    def apply(self, conn: Connection) -> None:
        schedules.create(conn)

    def differences(self, conn: Connection) -> list[str] | None:
        return table_differences(conn, [schedules])
