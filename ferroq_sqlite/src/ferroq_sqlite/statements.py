"""The worker's hot statements, built once.

Building a SQLAlchemy construct per call (and its cache key, and expanding an ``IN`` list into
one bound parameter per lease) cost more client CPU than SQLite spent running the statement: a
profile of a no-op drain showed claim and complete construction at about a third of the
worker's time. These statements are constant, so SQLAlchemy compiles each once; the leases of a
fenced write travel as one JSON array parameter read with ``json_each``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import sqlalchemy as sa

from ferroq_core.schema import Timestamp, jobs
from ferroq_core.storage.sql import JOB_COLUMNS

if TYPE_CHECKING:
    from collections.abc import Collection

    from ferroq_core.records import Lease

__all__ = ["BULK_INSERT", "CLAIM", "COMPLETE", "INSERT_ONE", "MAX_ID", "NEW_IDS", "lease_array"]

_now = sa.bindparam("claim_now", type_=Timestamp())

# Inside BEGIN IMMEDIATE the claiming transaction is the only writer, so selecting then
# updating by id cannot double-claim.
CLAIM = (
    sa.update(jobs)
    .where(
        jobs.c.id.in_(
            sa.select(jobs.c.id)
            .where(
                jobs.c.status == "pending",
                jobs.c.queue == sa.bindparam("claim_queue"),
                jobs.c.available_at <= _now,
            )
            .order_by(jobs.c.priority, jobs.c.available_at, jobs.c.id)
            .limit(sa.bindparam("claim_limit", type_=sa.Integer()))
            .scalar_subquery()
        )
    )
    .values(
        status="claimed",
        claimed_by=sa.bindparam("claim_worker"),
        claimed_at=_now,
        heartbeat_at=_now,
        attempts=jobs.c.attempts + 1,
    )
    .returning(*JOB_COLUMNS)
)

# Fenced by (id, claimed_by, attempts): a row value IN over the lease array; SQLite looks each
# one up by primary key.
COMPLETE = sa.text(
    "DELETE FROM ferroq_jobs WHERE status = 'claimed' AND (id, claimed_by, attempts) IN"
    " (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'),"
    " json_extract(value, '$[2]') FROM json_each(:leases)) RETURNING id"
)


# Enqueue of many jobs: SQLAlchemy cannot trust the order of a multi-row INSERT ... RETURNING on
# SQLite, so it sent one INSERT per row (20,000 statements for 20,000 jobs). Instead one
# executemany without RETURNING, then the new ids: under the write lock every row above the
# previous largest id is ours, in insertion order. Params: see SqliteBackend._insert_plain.
BULK_INSERT = (
    "INSERT INTO ferroq_jobs (queue, job_type, payload, status, priority, attempts,"
    " max_attempts, tenant_id, available_at, created_at)"
    " VALUES (?, ?, ?, 'pending', ?, 0, ?, ?, ?, ?)"
)
INSERT_ONE = BULK_INSERT + " RETURNING id"
MAX_ID = "SELECT coalesce(max(id), 0) FROM ferroq_jobs"
NEW_IDS = "SELECT id FROM ferroq_jobs WHERE id > ? ORDER BY id"


def lease_array(leases: Collection[Lease]) -> dict[str, str]:
    """The ``:leases`` parameter: ``[[id, claimed_by, attempts], ...]`` as JSON text."""
    return {"leases": json.dumps([[x.id, x.claimed_by, x.attempts] for x in leases])}
