"""The Postgres backend's hot statements, built once with bound parameters.

Building a SQLAlchemy construct costs more Python time than the claim's round trip on a local
server (measured: ~0.7 ms of a 2.5 ms claim), and a fixed SQL text lets psycopg prepare it
server-side after a few runs. The fences take their leases as three arrays through ``unnest``,
so one text serves every batch size (an expanded ``IN`` list is a new text per size).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

from ferroq_core.schema import Timestamp, jobs
from ferroq_core.storage.sql import cap_error

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ferroq_core.records import EnqueueRequest, Lease

__all__ = [
    "BULK_INSERT_SQL",
    "CLAIM_COLUMNS",
    "CLAIM_SQL",
    "COMPLETE_SQL",
    "DUE_SQL",
    "ENQUEUE_ONE",
    "ENQUEUE_ONE_KEYED",
    "HEARTBEAT_SQL",
    "INSERT",
    "KEY_HOLDER",
    "NOTIFY",
    "RELEASE_NOTIFY",
    "bulk_params",
    "lease_params",
    "one_params",
    "release_params",
]

#: The database clock, not skewed by a long caller transaction (unlike ``now()``).
NOW = sa.func.statement_timestamp(type_=Timestamp())

#: Params: one dict of column values per job, plus ``enqueue_delay`` (seconds). Both times come
#: from the server clock in the INSERT itself, saving the round trip that reads it first.
INSERT = (
    sa.insert(jobs)
    .values(
        available_at=sa.cast(
            NOW
            + sa.func.make_interval(
                0, 0, 0, 0, 0, 0, sa.bindparam("enqueue_delay", type_=sa.Float())
            ),
            Timestamp(),
        ),
        created_at=NOW,
    )
    .returning(jobs.c.id, sort_by_parameter_order=True)
)

#: Params: :func:`bulk_params`. A large batch as one statement with one array per column: the
#: multi-row VALUES that SQLAlchemy builds instead is a new, 11,000-placeholder text per 1,000
#: rows, and psycopg spent more time parsing it than the server spent inserting (profile:
#: ~55% of ``dispatch_many``). A psycopg-level text whose arrays travel in the binary format
#: (``%b``): in the text format psycopg quotes every element with a regular expression, 40%
#: of a 10,000-job ``dispatch_many`` in a later profile. The casts fix each array's type
#: whatever psycopg infers from the values (a list of only None, ints that fit a smaller
#: type). Rows are inserted in ``ord`` order, so the serial ids come out ascending in
#: request order; the caller sorts the returned ids anyway.
BULK_INSERT_SQL = (
    "INSERT INTO ferroq_jobs (queue, job_type, payload, status, priority, attempts,"
    " max_attempts, tenant_id, available_at, created_at)"
    " SELECT r.queue, r.job_type, r.payload, 'pending', r.priority, 0, r.max_attempts,"
    " r.tenant_id, statement_timestamp() + make_interval(secs => r.delay),"
    " statement_timestamp()"
    " FROM unnest(%(queues)b::text[], %(job_types)b::text[], %(payloads)b::text[],"
    " %(priorities)b::int[], %(max_attempts)b::int[], %(tenants)b::text[],"
    " %(delays)b::float8[]) WITH ORDINALITY"
    " AS r(queue, job_type, payload, priority, max_attempts, tenant_id, delay, ord)"
    " ORDER BY r.ord RETURNING id"
)


def bulk_params(reqs: Sequence[EnqueueRequest]) -> dict[str, list[Any]]:
    """The arrays :data:`BULK_INSERT_SQL` takes (requests without idempotency keys)."""
    return {
        "queues": [r.queue for r in reqs],
        "job_types": [r.job_type for r in reqs],
        "payloads": [r.payload for r in reqs],
        "priorities": [r.priority for r in reqs],
        "max_attempts": [r.max_attempts for r in reqs],
        "tenants": [r.tenant_id for r in reqs],
        "delays": [float(r.delay) for r in reqs],
    }


# One round trip whatever the number of queues; Postgres folds duplicate notifications of one
# transaction into one, and delivers them only if the transaction commits.
NOTIFY = sa.text("SELECT pg_notify(:channel, q) FROM unnest(:queues) AS q").bindparams(
    sa.bindparam("channel", type_=sa.Text()), sa.bindparam("queues", type_=ARRAY(sa.Text()))
)


def lease_params(leases: list[tuple[int, str, int]]) -> dict[str, Any]:
    """The three arrays the fenced statements take, from ``(id, claimed_by, attempts)``, and
    the status they must still have."""
    return {
        "lease_ids": [lease[0] for lease in leases],
        "lease_owners": [lease[1] for lease in leases],
        "lease_attempts": [lease[2] for lease in leases],
        "claimed": "claimed",
    }


# The one-statement writes below are run on the pooled psycopg connection directly (placeholders
# in psycopg's ``%(name)s`` style): SQLAlchemy's execute path and its autocommit toggles cost
# ~150 µs of client CPU per call, as much as the rest of the call (measured: 300 -> 150 µs).

# One job, no caller transaction: INSERT and NOTIFY as one autocommit statement, one round trip
# instead of four (BEGIN, INSERT, NOTIFY, COMMIT). The NOTIFY is still transactional: it is sent
# when the statement's implicit transaction commits. ``LATERAL pg_notify`` runs once per
# inserted row, so a conflicting (duplicate) insert notifies nobody.
_INSERT_ONE = (
    "WITH ins AS (INSERT INTO ferroq_jobs (queue, job_type, payload, status, priority, attempts,"
    " max_attempts, idempotency_key, tenant_id, available_at, created_at)"
    " VALUES (%(queue)s, %(job_type)s, %(payload)s, 'pending', %(priority)s, 0,"
    " %(max_attempts)s, %(idempotency_key)s, %(tenant_id)s,"
    " statement_timestamp() + make_interval(secs => %(delay)s), statement_timestamp())"
)
_NOTIFY_ONE = (
    " RETURNING id, queue) SELECT ins.id FROM ins, LATERAL pg_notify(%(channel)s, ins.queue)"
)
#: Params: :func:`one_params`. Returns the new job's id.
ENQUEUE_ONE = _INSERT_ONE + _NOTIFY_ONE
#: Params: :func:`one_params`. Returns the new job's id, or no row when an active job holds the
#: key. The conflict target's predicate is written with literals, exactly as the partial
#: index's: with bound parameters a prepared (generic) plan cannot match the index (0fdde4f).
ENQUEUE_ONE_KEYED = (
    _INSERT_ONE + " ON CONFLICT (job_type, idempotency_key)"
    " WHERE status IN ('pending', 'claimed') AND idempotency_key IS NOT NULL DO NOTHING"
    + _NOTIFY_ONE
)
#: Params: ``job_type``, ``idempotency_key``. The active job holding a key.
KEY_HOLDER = sa.text(
    "SELECT id FROM ferroq_jobs WHERE job_type = :job_type AND idempotency_key = :idempotency_key"
    " AND status IN ('pending', 'claimed')"
).bindparams(
    sa.bindparam("job_type", type_=sa.Text()), sa.bindparam("idempotency_key", type_=sa.Text())
)


def one_params(req: EnqueueRequest, channel: str) -> dict[str, Any]:
    """The parameters of :data:`ENQUEUE_ONE` / :data:`ENQUEUE_ONE_KEYED`."""
    return {
        "queue": req.queue,
        "job_type": req.job_type,
        "payload": req.payload,
        "priority": req.priority,
        "max_attempts": req.max_attempts,
        "idempotency_key": req.idempotency_key,
        "tenant_id": req.tenant_id,
        "delay": float(req.delay),
        "channel": channel,
    }


# A lease handed back: the shared ``SqlBackend.release`` values, fenced like COMPLETE. With
# ``count_attempt=False`` the claim's attempt is given back (``uncount`` = 1).
_RELEASE = (
    "WITH rel AS (UPDATE ferroq_jobs SET status = 'pending', claimed_by = NULL,"
    " claimed_at = NULL, heartbeat_at = NULL, error = %(error)s,"
    " available_at = statement_timestamp() + make_interval(secs => %(delay)s),"
    " attempts = attempts - %(uncount)s"
    " WHERE status = 'claimed' AND id = %(id)s AND claimed_by = %(owner)s"
    " AND attempts = %(attempts)s RETURNING id, queue)"
)
#: The fenced release, and a notification of the job's queue when it commits: due now or
#: later, idle workers look again at when their next job is due. Params: :func:`release_params`
#: and ``channel``. Returns the id if the lease still held.
RELEASE_NOTIFY = _RELEASE + " SELECT rel.id FROM rel, LATERAL pg_notify(%(channel)s, rel.queue)"


def release_params(
    lease: Lease, delay: float, error: str | None, count_attempt: bool
) -> dict[str, Any]:
    """The parameters of :data:`RELEASE_NOTIFY`, but its ``channel``."""
    return {
        "error": cap_error(error),
        "delay": float(delay),
        "uncount": 0 if count_attempt else 1,
        "id": lease.id,
        "owner": lease.claimed_by,
        "attempts": lease.attempts,
    }


# The worker's hot statements as psycopg-level texts too, run prepared on the pooled connection:
# through SQLAlchemy, psycopg converted the claim's query text on every call (py-spy: 12% of a
# drain). The status predicates are literals, as in the partial indexes' predicates, so a
# prepared (generic) plan can still use those indexes.

#: Params: ``queue``, ``limit``, ``worker``; returns :data:`CLAIM_COLUMNS`. The same claim fields
#: as the shared ``SqlBackend._claim_values``. Lock exactly ``limit`` rows in a CTE and update
#: those: UPDATE ... WHERE id IN (SELECT ... LIMIT n) may re-evaluate the subquery and claim
#: more than n rows. ``= ANY(ARRAY(...))``, not a join with the CTE: the prepared (generic)
#: plan guesses 10% of the table for ``LIMIT $n`` and joined it by hashing a sequential scan of
#: the whole table (measured: 2 workers draining 0.73x as fast); this plan is a primary-key
#: lookup whatever the guess.
CLAIM_SQL = (
    "WITH picked AS (SELECT id FROM ferroq_jobs WHERE status = 'pending'"
    " AND queue = %(queue)s AND available_at <= statement_timestamp()"
    " ORDER BY priority, available_at, id LIMIT %(limit)s FOR UPDATE SKIP LOCKED)"
    " UPDATE ferroq_jobs SET status = 'claimed', claimed_by = %(worker)s,"
    " claimed_at = statement_timestamp(), heartbeat_at = statement_timestamp(),"
    " attempts = ferroq_jobs.attempts + 1 WHERE ferroq_jobs.id = ANY(ARRAY(SELECT id FROM picked))"
    " RETURNING ferroq_jobs.id, queue, job_type, payload, status, priority, attempts,"
    " max_attempts, idempotency_key, tenant_id, available_at, created_at, claimed_at,"
    " claimed_by, heartbeat_at, error, failed_at"
)
#: The column order of :data:`CLAIM_SQL`'s rows: :class:`~ferroq_core.records.JobRow`'s field
#: order, so a row is the record's positional arguments (tests/postgres checks this).
CLAIM_COLUMNS = (
    "id",
    "queue",
    "job_type",
    "payload",
    "status",
    "priority",
    "attempts",
    "max_attempts",
    "idempotency_key",
    "tenant_id",
    "available_at",
    "created_at",
    "claimed_at",
    "claimed_by",
    "heartbeat_at",
    "error",
    "failed_at",
)

# The arrays travel in the binary format: psycopg's text dumper ran a regex per element (a
# tenth of a draining worker's main thread; 273 -> 210 us of client CPU per 100 leases).
_LEASES = (
    " unnest(%(lease_ids)b::bigint[], %(lease_owners)b::text[], %(lease_attempts)b::integer[])"
    " AS lease(id, claimed_by, attempts) WHERE ferroq_jobs.status = %(claimed)s"
    " AND ferroq_jobs.id = lease.id AND ferroq_jobs.claimed_by = lease.claimed_by"
    " AND ferroq_jobs.attempts = lease.attempts RETURNING ferroq_jobs.id"
)
# The status is a parameter (``claimed``), not a literal: matched to the partial index of
# claimed rows, the planner (trusting stale statistics of ~1 claimed row) scanned every claimed
# row once per lease, instead of one primary-key lookup per lease (measured: 2 workers draining
# ~0.8x as fast).
#: Params: :func:`lease_params`. Deletes the leases that still match; returns their ids.
COMPLETE_SQL = "DELETE FROM ferroq_jobs USING" + _LEASES
#: Params: :func:`lease_params`. Extends the leases that still match; returns their ids.
HEARTBEAT_SQL = "UPDATE ferroq_jobs SET heartbeat_at = statement_timestamp() FROM" + _LEASES


# Seconds on the database clock until the earliest pending job of one queue is due (NULL when
# none is pending): the recursive walk over its priority levels that
# ferroq_core.storage.sql_wait explains, as one prepared text (the SQLAlchemy statement cost
# an idle worker 0.25 ms of client CPU before each wait). Params: queue.
_PENDING = " FROM ferroq_jobs WHERE status = 'pending' AND queue = %(queue)s"
DUE_SQL = (
    "WITH RECURSIVE levels(priority) AS (SELECT (SELECT priority"
    + _PENDING
    + " ORDER BY priority LIMIT 1) UNION ALL SELECT (SELECT priority"
    + _PENDING
    + " AND priority > levels.priority ORDER BY priority LIMIT 1)"
    " FROM levels WHERE levels.priority IS NOT NULL)"
    " SELECT extract(epoch FROM min((SELECT available_at"
    + _PENDING
    + " AND priority = levels.priority ORDER BY available_at LIMIT 1)) - statement_timestamp())"
    " FROM levels WHERE levels.priority IS NOT NULL"
)
