"""The hot statements as constant SQL texts, run on the pooled sqlite3 connection itself.

Building a SQLAlchemy construct per call (and its cache key, and expanding an ``IN`` list into
one bound parameter per lease) cost more client CPU than SQLite spent running the statement: a
profile of a no-op drain showed claim and complete construction at about a third of the
worker's time. Then SQLAlchemy's result processing of the claimed rows cost as much again
(see :mod:`ferroq_sqlite.rows`), and its transaction and execute layers more than a one-job
INSERT (see ``SqliteBackend._raw_write``). The leases of a fenced write travel as JSON array
parameters read with ``json_each``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ferroq_sqlite.rows import CLAIMED_COLUMNS

if TYPE_CHECKING:
    from collections.abc import Collection

    from ferroq_core.records import Lease

__all__ = [
    "BULK_INSERT",
    "BULK_INSERT_JSON",
    "CLAIM_SQL",
    "COMPLETE_RETURNING_SQL",
    "COMPLETE_SQL",
    "INSERT_ONE",
    "MAX_ID",
    "NEW_IDS",
    "complete_params",
]

# Enqueue of many jobs: SQLAlchemy cannot trust the order of a multi-row INSERT ... RETURNING on
# SQLite, so it sent one INSERT per row (20,000 statements for 20,000 jobs). Instead one
# executemany without RETURNING, then the new ids: under the write lock every row above the
# previous largest id is ours, in insertion order, and with AUTOINCREMENT they are consecutive,
# so NEW_IDS reads their bounds and count (one row, not one per job; the count checks it).
# Params: see SqliteBackend._insert_rows.
BULK_INSERT = (
    "INSERT INTO ferroq_jobs (queue, job_type, payload, status, priority, attempts,"
    " max_attempts, tenant_id, available_at, created_at)"
    " VALUES (?, ?, ?, 'pending', ?, 0, ?, ?, ?, ?)"
)
# A run of jobs that differ only in their payload, given as one JSON array of payload texts
# (see ferroq_sqlite.bulk). ORDER BY key: the rows go in, and get their ids, in array order.
# Params: queue, job_type, priority, max_attempts, tenant_id, available_at, created_at, array.
BULK_INSERT_JSON = (
    "INSERT INTO ferroq_jobs (queue, job_type, payload, status, priority, attempts,"
    " max_attempts, tenant_id, available_at, created_at)"
    " SELECT ?1, ?2, value, 'pending', ?3, 0, ?4, ?5, ?6, ?7 FROM json_each(?8) ORDER BY key"
)
INSERT_ONE = BULK_INSERT + " RETURNING id"
MAX_ID = "SELECT coalesce(max(id), 0) FROM ferroq_jobs"
NEW_IDS = "SELECT min(id), max(id), count(*) FROM ferroq_jobs WHERE id > ?"


# The worker's claim returns the fields it does not set itself (see ferroq_sqlite.rows).
# Inside BEGIN IMMEDIATE the claiming transaction is the only writer, so selecting then
# updating by id cannot double-claim. Params: worker, now, now, queue, now, limit (now in
# epoch microseconds).
CLAIM_SQL = (
    "UPDATE ferroq_jobs SET status = 'claimed', claimed_by = ?, claimed_at = ?,"
    " heartbeat_at = ?, attempts = attempts + 1"
    " WHERE id IN (SELECT id FROM ferroq_jobs WHERE status = 'pending' AND queue = ?"
    " AND available_at <= ? ORDER BY priority, available_at, id LIMIT ?)"
    " RETURNING " + CLAIMED_COLUMNS
)

# Fenced by (id, claimed_by, attempts) for the leases of one worker at one attempts count: the
# ids find the rows by primary key, owner and attempts are plain comparisons. A drain's
# batch is one group (every job on its first attempt); retried jobs add a group per attempts
# value. (The previous fence compared "id:attempts" text keys against a second JSON array:
# 2.2 against 1.8 us per job for the statement, and its parameters cost 0.8 more to build.)
# Params: claimed_by, ids as a JSON array, attempts. Without RETURNING: when the count of
# deleted rows is the count of leases every lease matched, and returning the ids cost 0.3 us
# per job; on a shortfall the caller rolls back and runs COMPLETE_RETURNING_SQL to learn
# which matched.
COMPLETE_SQL = (
    "DELETE FROM ferroq_jobs WHERE id IN (SELECT value FROM json_each(?2))"
    " AND status = 'claimed' AND claimed_by = ?1 AND attempts = ?3"
)
COMPLETE_RETURNING_SQL = COMPLETE_SQL + " RETURNING id"


def complete_params(leases: Collection[Lease]) -> list[tuple[tuple[str, str, int], int]]:
    """:data:`COMPLETE_SQL`'s parameters, and how many leases they carry: one set per
    (worker, attempts) pair among ``leases``."""
    groups: dict[tuple[str, int], list[int]] = {}
    for lease in leases:
        groups.setdefault((lease.claimed_by, lease.attempts), []).append(lease.id)
    return [
        ((owner, json.dumps(ids), attempts), len(ids)) for (owner, attempts), ids in groups.items()
    ]
