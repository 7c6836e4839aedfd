"""The worker registry's tables and the migration step that creates them.

``ferroq_workers`` holds one row per running worker, supervisor and supervised child: who and
where it is, what it serves, and its heartbeat. ``ferroq_worker_signals`` holds signals for
every worker as named timestamps (``restart``: ``ferroq restart``), read in the heartbeat.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
import sqlalchemy as sa

from ferroq_core.tables.base import TIMESTAMP, Migration, metadata, table_differences

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

__all__ = ["CreateWorkerTables", "worker_signals", "workers"]

workers = sa.Table(
    "ferroq_workers",
    metadata,
    sa.Column("id", sa.Text(), primary_key=True),
    sa.Column("role", sa.Text(), nullable=False),
    sa.Column("host", sa.Text(), nullable=False),
    sa.Column("pid", sa.Integer(), nullable=False),
    # A JSON array of the queue names, in priority order.
    sa.Column("queues", sa.Text(), nullable=False),
    sa.Column("concurrency", sa.Integer(), nullable=False),
    sa.Column("visibility_timeout", sa.Double(), nullable=False),
    sa.Column("version", sa.Text(), nullable=False),
    sa.Column("supervisor", sa.Text(), nullable=True),
    sa.Column("started_at", TIMESTAMP, nullable=False),
    sa.Column("heartbeat_at", TIMESTAMP, nullable=False),
    sa.CheckConstraint("role IN ('worker', 'child', 'supervisor')", name="ferroq_workers_role"),
)

worker_signals = sa.Table(
    "ferroq_worker_signals",
    metadata,
    sa.Column("name", sa.Text(), primary_key=True),
    sa.Column("sent_at", TIMESTAMP, nullable=False),
)


@attrs.frozen
class CreateWorkerTables(Migration):
    """The worker registry (``ferroq_workers``) and the workers' signals
    (``ferroq_worker_signals``)."""

    version: int = 7
    name: str = "create_worker_tables"

    def apply(self, conn: Connection) -> None:
        workers.create(conn)
        worker_signals.create(conn)

    def differences(self, conn: Connection) -> list[str] | None:
        return table_differences(conn, [workers, worker_signals])
