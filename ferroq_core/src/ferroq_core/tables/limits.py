"""Flow control's tables (concurrency limits, rate limits, fair queues) and their migration.

``ferroq_limits`` holds every declared limit, one row per scope and name: a job type's (written
by each worker for the types it knows, from the class attributes) or a queue's (written by an
operator, ``ferroq limits set``). Every worker reads it in the claim, so all agree on the same
numbers. ``ferroq_limit_starts`` is the sliding window of rate-limited starts: one row per start
until its window has passed. The limited claim's index over ``ferroq_jobs`` and the jobs' limit
keys are in :mod:`~ferroq_core.tables.limitkeys` (step 10).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
import sqlalchemy as sa

from ferroq_core.tables.base import ID, TIMESTAMP, Migration, metadata, table_differences

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

__all__ = ["AddFlowLimits", "limit_starts", "limits"]

limits = sa.Table(
    "ferroq_limits",
    metadata,
    #: 'type' (name is a job type name) or 'queue' (name is a queue name).
    sa.Column("scope", sa.Text(), primary_key=True),
    sa.Column("name", sa.Text(), primary_key=True),
    #: Counted per limit key (1) or over the whole scope (0). Named when the key was always
    #: the tenant; it is LimitRule.per_key.
    sa.Column("per_tenant", sa.Integer(), nullable=False, server_default="0"),
    #: At most this many claimed (running) jobs at once; NULL: no concurrency limit.
    sa.Column("concurrency", sa.Integer(), nullable=True),
    #: At most ``rate`` starts per ``per`` seconds; NULL: no rate limit.
    sa.Column("rate", sa.Integer(), nullable=True),
    sa.Column("per", sa.Double(), nullable=True),
    #: Round-robin by limit key within a priority level (queues only).
    sa.Column("fair", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("updated_at", TIMESTAMP, nullable=False),
    sa.CheckConstraint("scope IN ('type', 'queue')", name="ferroq_limits_scope"),
    sa.CheckConstraint("concurrency IS NULL OR concurrency >= 1", name="ferroq_limits_k"),
    sa.CheckConstraint("rate IS NULL OR (rate >= 1 AND per > 0)", name="ferroq_limits_rate"),
)

limit_starts = sa.Table(
    "ferroq_limit_starts",
    metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("scope", sa.Text(), nullable=False),
    sa.Column("name", sa.Text(), nullable=False),
    #: The limit key for a per-key limit, '' otherwise.
    sa.Column("key", sa.Text(), nullable=False),
    #: When this start leaves the window (claim time + ``per``).
    sa.Column("expires_at", TIMESTAMP, nullable=False),
)
sa.Index("ferroq_limit_starts_expiry", limit_starts.c.expires_at)


@attrs.frozen
class AddFlowLimits(Migration):
    """Migration: the limits and rate-window tables. (It made the jobs table's groups index
    too, on the tenant, before limit keys: step 10 drops it, and makes the index on the key
    where limits exist.)"""

    version: int = 8
    name: str = "add_flow_limits"

    def apply(self, conn: Connection) -> None:
        limits.create(conn)
        limit_starts.create(conn)

    def differences(self, conn: Connection) -> list[str] | None:
        return table_differences(conn, [limits, limit_starts])
