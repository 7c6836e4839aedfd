-- Every statement of ferroq's SQLite backend, as named queries (loaded once per process with
-- ferroq_core.storage.queries.load_queries("ferroq_sqlite")). Parameters are bound by sqlite3:
-- "?" in order, "?N" by position, ":name" from a mapping. Timestamps are integer microseconds
-- since the epoch (UTC), computed by the caller from the host's clock. Job rows are read in
-- ferroq_core.storage.rules.JOB_COLUMNS order; lease id lists travel as JSON arrays read with
-- json_each.

-- =============================================================================================
-- Connections and transactions
-- =============================================================================================

-- name: begin_immediate
-- Start a write transaction holding the write lock (waits for it per the busy timeout).
BEGIN IMMEDIATE

-- name: commit
-- End the open transaction.
COMMIT

-- name: rollback
-- Undo the open transaction.
ROLLBACK

-- name: savepoint_ack
-- Mark the start of an acknowledgement, to undo it alone when some lease did not match.
SAVEPOINT ack

-- name: rollback_to_ack
-- Undo the acknowledgement since savepoint_ack (the transaction stays open).
ROLLBACK TO ack

-- name: busy_timeout_off
-- Make a busy lock fail at once (the worker's fine-step wait for the write lock).
PRAGMA busy_timeout = 0

-- name: journal_mode_wal
-- Readers and the writer never block each other.
PRAGMA journal_mode = WAL

-- name: journal_size_limit
-- Truncate a checkpointed WAL file back to 64 MiB, so a burst leaves no huge -wal file.
PRAGMA journal_size_limit = 67108864

-- name: foreign_keys_on
-- Enforce foreign keys (off by default in SQLite).
PRAGMA foreign_keys = ON

-- name: synchronous_off
-- PRAGMA synchronous, one query per level SqliteOptions accepts.
PRAGMA synchronous = OFF

-- name: synchronous_normal
PRAGMA synchronous = NORMAL

-- name: synchronous_full
PRAGMA synchronous = FULL

-- name: synchronous_extra
PRAGMA synchronous = EXTRA

-- name: data_version
-- A number that changes whenever another connection commits to the file.
PRAGMA data_version

-- =============================================================================================
-- Schema
-- =============================================================================================

-- name: schema_table_exists
-- 1 when the ferroq_schema table exists (the database was migrated), else 0.
SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'ferroq_schema'

-- name: schema_version
-- The newest migration applied (NULL when none).
SELECT max(version) FROM ferroq_schema

-- =============================================================================================
-- Dispatch
-- =============================================================================================

-- name: insert_job
-- A job without an idempotency key. Params: queue, job_type, payload, priority,
-- max_attempts, tenant_id, available_at, created_at.
INSERT INTO ferroq_jobs (queue, job_type, payload, status, priority, attempts, max_attempts,
                         tenant_id, available_at, created_at)
VALUES (?, ?, ?, 'pending', ?, 0, ?, ?, ?, ?)

-- name: insert_job_returning_id
-- insert_job for a single job, returning its id. Same params.
INSERT INTO ferroq_jobs (queue, job_type, payload, status, priority, attempts, max_attempts,
                         tenant_id, available_at, created_at)
VALUES (?, ?, ?, 'pending', ?, 0, ?, ?, ?, ?)
RETURNING id

-- name: insert_jobs_json
-- A run of jobs that differ only in their payload, in array order (ORDER BY key gives them
-- their ids in that order). Params: ?1 queue, ?2 job_type, ?3 priority, ?4 max_attempts,
-- ?5 tenant_id, ?6 available_at, ?7 created_at, ?8 JSON array of payload texts.
INSERT INTO ferroq_jobs (queue, job_type, payload, status, priority, attempts, max_attempts,
                         tenant_id, available_at, created_at)
SELECT ?1, ?2, value, 'pending', ?3, 0, ?4, ?5, ?6, ?7 FROM json_each(?8) ORDER BY key

-- name: max_id
-- The largest id in use (0 for an empty table), read before a bulk insert.
SELECT coalesce(max(id), 0) FROM ferroq_jobs

-- name: new_ids
-- Bounds and count of the ids above ?1 (the max_id read before a bulk insert).
SELECT min(id), max(id), count(*) FROM ferroq_jobs WHERE id > ?

-- name: insert_keyed
-- A job with an idempotency key; no row (and no id) when an active job of its type holds the
-- key. The conflict target's predicate is the partial unique index's, as literals.
-- Params: queue, job_type, payload, priority, max_attempts, idempotency_key, tenant_id,
-- available_at, created_at.
INSERT INTO ferroq_jobs (queue, job_type, payload, status, priority, attempts, max_attempts,
                         idempotency_key, tenant_id, available_at, created_at)
VALUES (?, ?, ?, 'pending', ?, 0, ?, ?, ?, ?, ?)
ON CONFLICT (job_type, idempotency_key)
    WHERE status IN ('pending', 'claimed') AND idempotency_key IS NOT NULL
DO NOTHING
RETURNING id

-- name: key_holder
-- The id of the active job holding an idempotency key. Params: job_type, idempotency_key.
SELECT id FROM ferroq_jobs
WHERE job_type = ? AND idempotency_key = ? AND status IN ('pending', 'claimed')

-- =============================================================================================
-- The worker's store
-- =============================================================================================

-- name: claim
-- Claim up to ?4 due pending jobs of queue ?3 for worker ?1 at ?2 (epoch us), in claim order;
-- inside BEGIN IMMEDIATE this is the only writer, so selecting then updating by id cannot
-- double-claim. Returns JobRow's fields minus status, claimed_at, claimed_by and
-- heartbeat_at (the caller has their values), in no particular order.
UPDATE ferroq_jobs
SET status = 'claimed', claimed_by = ?1, claimed_at = ?2, heartbeat_at = ?2,
    attempts = attempts + 1
WHERE id IN (SELECT id FROM ferroq_jobs
             WHERE status = 'pending' AND queue = ?3 AND available_at <= ?2
             ORDER BY priority, available_at, id LIMIT ?4)
RETURNING id, queue, job_type, payload, priority, attempts, max_attempts, idempotency_key,
          tenant_id, available_at, created_at, error, failed_at

-- name: complete
-- Delete succeeded jobs under the leases of one owner at one attempts count.
-- Params: ?1 claimed_by, ?2 JSON array of ids, ?3 attempts.
DELETE FROM ferroq_jobs
WHERE id IN (SELECT value FROM json_each(?2))
  AND status = 'claimed' AND claimed_by = ?1 AND attempts = ?3

-- name: complete_returning
-- complete, returning the ids whose lease matched (after a shortfall). Same params.
DELETE FROM ferroq_jobs
WHERE id IN (SELECT value FROM json_each(?2))
  AND status = 'claimed' AND claimed_by = ?1 AND attempts = ?3
RETURNING id

-- name: release
-- Return one leased job to pending, due at :available_at, with :error; :given_back is 1 to
-- give the claim's attempt back, else 0. Fenced by :id, :owner, :attempts.
UPDATE ferroq_jobs
SET status = 'pending', claimed_by = NULL, claimed_at = NULL, heartbeat_at = NULL,
    error = :error, available_at = :available_at, attempts = attempts - :given_back
WHERE id = :id AND status = 'claimed' AND claimed_by = :owner AND attempts = :attempts

-- name: fail
-- Park one leased job as failed with :error at :now. Fenced by :id, :owner, :attempts.
UPDATE ferroq_jobs
SET status = 'failed', error = :error, failed_at = :now, heartbeat_at = NULL
WHERE id = :id AND status = 'claimed' AND claimed_by = :owner AND attempts = :attempts

-- name: heartbeat
-- Extend the leases of one owner at one attempts count to ?4; returns the ids still held.
-- Params: ?1 claimed_by, ?2 JSON array of ids, ?3 attempts, ?4 now.
UPDATE ferroq_jobs SET heartbeat_at = ?4
WHERE id IN (SELECT value FROM json_each(?2))
  AND status = 'claimed' AND claimed_by = ?1 AND attempts = ?3
RETURNING id

-- name: requeue
-- Return leased jobs of one owner at one attempts count to pending (available_at kept: they
-- keep their place in line); ?4 is 1 to give the attempt back, else 0. Returns the ids moved.
-- Params: ?1 claimed_by, ?2 JSON array of ids, ?3 attempts, ?4 given back.
UPDATE ferroq_jobs
SET status = 'pending', claimed_by = NULL, claimed_at = NULL, heartbeat_at = NULL,
    attempts = attempts - ?4
WHERE id IN (SELECT value FROM json_each(?2))
  AND status = 'claimed' AND claimed_by = ?1 AND attempts = ?3
RETURNING id

-- name: requeue_claimed_by
-- Return every job claimed by :worker to pending (available_at kept); :given_back as in
-- requeue. A job left without attempts stays claimed (the reaper fails it).
UPDATE ferroq_jobs
SET status = 'pending', claimed_by = NULL, claimed_at = NULL, heartbeat_at = NULL,
    attempts = attempts - :given_back
WHERE status = 'claimed' AND claimed_by = :worker AND attempts - :given_back < max_attempts

-- name: orphan_share
-- Give an attempt back to each claim of the dead worker :worker when it held more than one:
-- its crash cannot be pinned on one of them (rules.dead_worker_error). Only for a worker known
-- to be dead: it writes nothing more, so no late write can match the next claim's attempts.
-- Only attempts change, so the count is the same for every row. First of reap_worker's
-- statements.
UPDATE ferroq_jobs SET attempts = attempts - 1
WHERE status = 'claimed' AND claimed_by = :worker
  AND (SELECT count(*) FROM ferroq_jobs WHERE status = 'claimed' AND claimed_by = :worker) > 1

-- name: orphan_requeue
-- Return the claims of the dead worker :worker with attempts left to pending (available_at
-- kept), with :message followed by the worker's id. Returns the ids.
UPDATE ferroq_jobs
SET status = 'pending', claimed_by = NULL, claimed_at = NULL, heartbeat_at = NULL,
    error = :message || claimed_by
WHERE status = 'claimed' AND claimed_by = :worker AND attempts < max_attempts
RETURNING id

-- name: orphan_fail
-- Park the claims of the dead worker :worker left after orphan_requeue (no attempts left) as
-- failed at :now, with :message followed by the worker's id. Returns the rows (JOB_COLUMNS).
UPDATE ferroq_jobs
SET status = 'failed', error = :message || claimed_by, failed_at = :now, heartbeat_at = NULL
WHERE status = 'claimed' AND claimed_by = :worker
RETURNING id, queue, job_type, payload, status, priority, attempts, max_attempts,
          idempotency_key, tenant_id, available_at, created_at, claimed_at, claimed_by,
          heartbeat_at, error, failed_at

-- name: reap_requeue
-- Return claims whose heartbeat is older than :cutoff, with attempts left, to pending
-- (available_at kept); the error is :message followed by the lease holder. Returns the ids.
UPDATE ferroq_jobs
SET status = 'pending', claimed_by = NULL, claimed_at = NULL, heartbeat_at = NULL,
    error = :message || coalesce(claimed_by, '')
WHERE status = 'claimed' AND heartbeat_at < :cutoff AND attempts < max_attempts
RETURNING id

-- name: reap_fail
-- Park claims whose heartbeat is older than :cutoff and that have no attempts left as failed
-- at :now, with :message followed by the lease holder. Returns the rows (JOB_COLUMNS).
UPDATE ferroq_jobs
SET status = 'failed', error = :message || coalesce(claimed_by, ''), failed_at = :now,
    heartbeat_at = NULL
WHERE status = 'claimed' AND heartbeat_at < :cutoff AND attempts >= max_attempts
RETURNING id, queue, job_type, payload, status, priority, attempts, max_attempts,
          idempotency_key, tenant_id, available_at, created_at, claimed_at, claimed_by,
          heartbeat_at, error, failed_at

-- name: claimed_by_like
-- The distinct holders of claims whose worker id matches the LIKE pattern :pattern (escape
-- character backslash; it ignores ASCII case, so callers match exactly afterwards).
SELECT DISTINCT claimed_by FROM ferroq_jobs
WHERE status = 'claimed' AND claimed_by LIKE :pattern ESCAPE '\'

-- name: earliest_due
-- When the earliest pending job of :queue is due (NULL when none): steps from one distinct
-- priority to the next through the claim index, then takes the first available_at within
-- each, so it costs an index probe per priority in use, not a read of every pending row.
WITH RECURSIVE levels(priority) AS (
    SELECT (SELECT priority FROM ferroq_jobs
            WHERE status = 'pending' AND queue = :queue
            ORDER BY priority LIMIT 1)
    UNION ALL
    SELECT (SELECT above.priority FROM ferroq_jobs AS above
            WHERE above.status = 'pending' AND above.queue = :queue
              AND above.priority > levels.priority
            ORDER BY above.priority LIMIT 1)
    FROM levels WHERE levels.priority IS NOT NULL
)
SELECT min((SELECT at_level.available_at FROM ferroq_jobs AS at_level
            WHERE at_level.status = 'pending' AND at_level.queue = :queue
              AND at_level.priority = levels.priority
            ORDER BY at_level.available_at LIMIT 1))
FROM levels WHERE levels.priority IS NOT NULL

-- =============================================================================================
-- Admin: listings, counts, operator actions
-- =============================================================================================

-- name: get_job
-- One job by id (JOB_COLUMNS). Param: id.
SELECT id, queue, job_type, payload, status, priority, attempts, max_attempts,
       idempotency_key, tenant_id, available_at, created_at, claimed_at, claimed_by,
       heartbeat_at, error, failed_at
FROM ferroq_jobs WHERE id = ?

-- name: list_jobs
-- Jobs in claim order (priority, available_at, id), JOB_COLUMNS. Every filter may be NULL
-- (no filter): :state ('pending': due now; 'delayed': due after :now; 'claimed', 'failed'),
-- :queue, :job_type, :tenant_id. Paged by :limit and :offset.
SELECT id, queue, job_type, payload, status, priority, attempts, max_attempts,
       idempotency_key, tenant_id, available_at, created_at, claimed_at, claimed_by,
       heartbeat_at, error, failed_at
FROM ferroq_jobs
WHERE (:state IS NULL
       OR (:state = 'pending' AND status = 'pending' AND available_at <= :now)
       OR (:state = 'delayed' AND status = 'pending' AND available_at > :now)
       OR (:state IN ('claimed', 'failed') AND status = :state))
  AND (:queue IS NULL OR queue = :queue)
  AND (:job_type IS NULL OR job_type = :job_type)
  AND (:tenant_id IS NULL OR tenant_id = :tenant_id)
ORDER BY priority, available_at, id
LIMIT :limit OFFSET :offset

-- name: list_claimed
-- Claimed jobs by claimed_at and id, JOB_COLUMNS; :queue, :job_type, :tenant_id may be
-- NULL (no filter). Paged by :limit and :offset.
SELECT id, queue, job_type, payload, status, priority, attempts, max_attempts,
       idempotency_key, tenant_id, available_at, created_at, claimed_at, claimed_by,
       heartbeat_at, error, failed_at
FROM ferroq_jobs
WHERE status = 'claimed'
  AND (:queue IS NULL OR queue = :queue)
  AND (:job_type IS NULL OR job_type = :job_type)
  AND (:tenant_id IS NULL OR tenant_id = :tenant_id)
ORDER BY claimed_at, id
LIMIT :limit OFFSET :offset

-- name: list_failed
-- Failed jobs newest first (failed_at, id), JOB_COLUMNS; filters and paging as list_claimed.
SELECT id, queue, job_type, payload, status, priority, attempts, max_attempts,
       idempotency_key, tenant_id, available_at, created_at, claimed_at, claimed_by,
       heartbeat_at, error, failed_at
FROM ferroq_jobs
WHERE status = 'failed'
  AND (:queue IS NULL OR queue = :queue)
  AND (:job_type IS NULL OR job_type = :job_type)
  AND (:tenant_id IS NULL OR tenant_id = :tenant_id)
ORDER BY failed_at DESC, id DESC
LIMIT :limit OFFSET :offset

-- name: queue_stats
-- Per queue: due pending, delayed, claimed and failed counts and the oldest due pending job's
-- available_at (NULL when none), as of :now. The pending rows are counted from the claim
-- index alone (a third of the time of a table scan, which reads every payload: Prometheus
-- scrapes run this), the claimed and failed ones through their partial indexes.
SELECT queue, sum(pending), sum(delayed), sum(claimed), sum(failed), min(oldest)
FROM (
    SELECT queue, sum(available_at <= :now) AS pending, sum(available_at > :now) AS delayed,
           0 AS claimed, 0 AS failed,
           min(CASE WHEN available_at <= :now THEN available_at END) AS oldest
    FROM ferroq_jobs INDEXED BY ferroq_jobs_claim
    WHERE status = 'pending'
    GROUP BY queue
    UNION ALL
    SELECT queue, 0, 0, count(*), 0, NULL FROM ferroq_jobs WHERE status = 'claimed'
    GROUP BY queue
    UNION ALL
    SELECT queue, 0, 0, 0, count(*), NULL FROM ferroq_jobs WHERE status = 'failed'
    GROUP BY queue
)
GROUP BY queue
ORDER BY queue

-- name: retry_failed
-- Return failed jobs to pending, due at :now, attempts reset: those in the JSON array :ids
-- (NULL: all) of :queue and :job_type (NULL: any), except where another active job holds the
-- idempotency key. Returns the ids moved.
UPDATE ferroq_jobs
SET status = 'pending', attempts = 0, available_at = :now, claimed_by = NULL,
    claimed_at = NULL, heartbeat_at = NULL, failed_at = NULL
WHERE status = 'failed'
  AND (:ids IS NULL OR id IN (SELECT value FROM json_each(:ids)))
  AND (:queue IS NULL OR queue = :queue)
  AND (:job_type IS NULL OR job_type = :job_type)
  AND (idempotency_key IS NULL OR NOT EXISTS (
        SELECT 1 FROM ferroq_jobs AS other
        WHERE other.job_type = ferroq_jobs.job_type
          AND other.idempotency_key = ferroq_jobs.idempotency_key
          AND other.status IN ('pending', 'claimed')))
RETURNING id

-- name: delete_jobs
-- Delete the jobs in the JSON array :ids, only in :state when it is not NULL (states as in
-- list_jobs, due times against :now).
DELETE FROM ferroq_jobs
WHERE id IN (SELECT value FROM json_each(:ids))
  AND (:state IS NULL
       OR (:state = 'pending' AND status = 'pending' AND available_at <= :now)
       OR (:state = 'delayed' AND status = 'pending' AND available_at > :now)
       OR (:state IN ('claimed', 'failed') AND status = :state))

-- name: flush_failed
-- Delete failed jobs, only those failed before :before when it is not NULL.
DELETE FROM ferroq_jobs
WHERE status = 'failed' AND (:before IS NULL OR failed_at < :before)

-- name: clear_queue
-- Delete the pending (due and delayed) jobs of queue :queue.
DELETE FROM ferroq_jobs WHERE status = 'pending' AND queue = :queue

-- name: worker_heartbeats
-- Every claim holder and its latest heartbeat.
SELECT claimed_by, max(heartbeat_at) FROM ferroq_jobs
WHERE status = 'claimed'
GROUP BY claimed_by

-- name: make_due
-- Make delayed pending jobs due at :now: of the queues in the JSON array :queues (NULL:
-- every queue), due no later than :until (NULL: any time). The testing kit's clock jump.
UPDATE ferroq_jobs SET available_at = :now
WHERE status = 'pending' AND available_at > :now
  AND (:queues IS NULL OR queue IN (SELECT value FROM json_each(:queues)))
  AND (:until IS NULL OR available_at <= :until)


-- ==== flow control: limits (ferroq_core.storage.flow) ======================================
-- The limited claim runs these inside one BEGIN IMMEDIATE transaction (the write lock
-- serializes it with every other claim); the plain claim above stays as it is for queues
-- without limits. Times are epoch microseconds (:now).

-- name: limits_scopes
-- The scope and name of every limit (a worker looks every few seconds).
SELECT scope, name FROM ferroq_limits

-- name: limits_all
-- Every limit. Returns scope, name, per_tenant, concurrency, rate, per, fair.
SELECT scope, name, per_tenant, concurrency, rate, per, fair FROM ferroq_limits
ORDER BY scope, name

-- name: limits_running
-- The live leases per group. Returns queue, job_type, tenant_id, count.
SELECT queue, job_type, tenant_id, count(*) FROM ferroq_jobs WHERE status = 'claimed'
GROUP BY queue, job_type, tenant_id

-- name: limit_starts_prune
-- Starts whose window has passed. Params: now.
DELETE FROM ferroq_limit_starts WHERE expires_at <= :now

-- name: limit_starts_window
-- Starts inside their window per counter, and seconds until the oldest leaves it. Params:
-- now. Returns scope, name, key, count, frees_in.
SELECT scope, name, key, count(*), (min(expires_at) - :now) / 1e6
FROM ferroq_limit_starts WHERE expires_at > :now
GROUP BY scope, name, key

-- name: limit_starts_add
-- One rate-limited start. Params: scope, name, key, expires_at.
INSERT INTO ferroq_limit_starts (scope, name, key, expires_at)
VALUES (:scope, :name, :key, :expires_at)

-- name: limit_head
-- The first n due pending jobs of one queue in claim order. Params: queue, n, now. Returns
-- id, job_type, tenant_id, priority, available_at.
SELECT id, job_type, tenant_id, priority, available_at FROM ferroq_jobs
WHERE status = 'pending' AND queue = :queue AND available_at <= :now
ORDER BY priority, available_at, id
LIMIT :n

-- name: limit_groups
-- The (job_type, tenant_id) groups of one queue's pending jobs, one probe of
-- ferroq_jobs_groups each. Params: queue. Returns job_type, tenant_id, and the group's best
-- priority.
WITH RECURSIVE types(t) AS (
    SELECT (SELECT job_type FROM ferroq_jobs WHERE status = 'pending' AND queue = :queue
            ORDER BY job_type LIMIT 1)
    UNION ALL
    SELECT (SELECT job_type FROM ferroq_jobs
            WHERE status = 'pending' AND queue = :queue AND job_type > types.t
            ORDER BY job_type LIMIT 1)
    FROM types WHERE types.t IS NOT NULL),
tenants(t, k) AS (
    SELECT types.t, (SELECT tenant_id FROM ferroq_jobs
                     WHERE status = 'pending' AND queue = :queue AND job_type = types.t
                       AND tenant_id IS NOT NULL
                     ORDER BY tenant_id LIMIT 1)
    FROM types WHERE types.t IS NOT NULL
    UNION ALL
    SELECT tenants.t, (SELECT tenant_id FROM ferroq_jobs
                       WHERE status = 'pending' AND queue = :queue AND job_type = tenants.t
                         AND tenant_id > tenants.k
                       ORDER BY tenant_id LIMIT 1)
    FROM tenants WHERE tenants.k IS NOT NULL)
SELECT t, k, (SELECT priority FROM ferroq_jobs
              WHERE status = 'pending' AND queue = :queue AND job_type = t AND tenant_id = k
              ORDER BY priority LIMIT 1)
FROM tenants WHERE k IS NOT NULL
UNION ALL
SELECT t, NULL, p FROM (
    SELECT types.t, (SELECT priority FROM ferroq_jobs
                     WHERE status = 'pending' AND queue = :queue AND job_type = types.t
                       AND tenant_id IS NULL
                     ORDER BY priority LIMIT 1) AS p
    FROM types WHERE types.t IS NOT NULL) AS untenanted
WHERE p IS NOT NULL

-- name: limit_candidates
-- Up to n due jobs of one tenant's group, in claim order. Params: queue, job_type, tenant,
-- n, now. Returns id, job_type, tenant_id, priority, available_at.
SELECT id, job_type, tenant_id, priority, available_at FROM ferroq_jobs
WHERE status = 'pending' AND queue = :queue AND job_type = :job_type AND tenant_id = :tenant
  AND available_at <= :now
ORDER BY priority, available_at, id LIMIT :n

-- name: limit_candidates_untenanted
-- limit_candidates for the group without a tenant. Params: its own but tenant.
SELECT id, job_type, tenant_id, priority, available_at FROM ferroq_jobs
WHERE status = 'pending' AND queue = :queue AND job_type = :job_type AND tenant_id IS NULL
  AND available_at <= :now
ORDER BY priority, available_at, id LIMIT :n

-- name: limit_claim
-- Claim the chosen jobs for worker at now. Params: ids (JSON array), worker, now. Returns
-- the claim query's columns.
UPDATE ferroq_jobs
SET status = 'claimed', claimed_by = :worker, claimed_at = :now, heartbeat_at = :now,
    attempts = attempts + 1
WHERE id IN (SELECT value FROM json_each(:ids)) AND status = 'pending'
RETURNING id, queue, job_type, payload, priority, attempts, max_attempts, idempotency_key,
          tenant_id, available_at, created_at, error, failed_at

-- name: limit_set
-- Declare (or replace) one scope and name's limits. Params: scope, name, per_tenant,
-- concurrency, rate, per, fair, now.
INSERT INTO ferroq_limits (scope, name, per_tenant, concurrency, rate, per, fair, updated_at)
VALUES (:scope, :name, :per_tenant, :concurrency, :rate, :per, :fair, :now)
ON CONFLICT (scope, name) DO UPDATE
SET per_tenant = excluded.per_tenant, concurrency = excluded.concurrency, rate = excluded.rate,
    per = excluded.per, fair = excluded.fair, updated_at = excluded.updated_at
WHERE (ferroq_limits.per_tenant, ferroq_limits.concurrency, ferroq_limits.rate,
       ferroq_limits.per, ferroq_limits.fair)
      IS NOT (excluded.per_tenant, excluded.concurrency, excluded.rate,
              excluded.per, excluded.fair)

-- name: limit_delete
-- Params: scope, name.
DELETE FROM ferroq_limits WHERE scope = :scope AND name = :name

-- name: limit_waiting
-- Due pending jobs per group. Params: now. Returns queue, job_type, tenant_id, count.
SELECT queue, job_type, tenant_id, count(*) FROM ferroq_jobs
WHERE status = 'pending' AND available_at <= :now
GROUP BY queue, job_type, tenant_id
