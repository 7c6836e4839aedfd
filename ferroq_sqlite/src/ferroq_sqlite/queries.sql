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
-- A job without an idempotency key. Params: ?1 queue, ?2 job_type, ?3 payload, ?4 priority,
-- ?5 max_attempts, ?6 tenant_id, ?7 available_at, ?8 created_at, ?9 limit_key (NULL: the
-- tenant is the key).
INSERT INTO ferroq_jobs (queue, job_type, payload, status, priority, attempts, max_attempts,
                         tenant_id, available_at, created_at, limit_key)
VALUES (?1, ?2, ?3, 'pending', ?4, 0, ?5, ?6, ?7, ?8, coalesce(?9, ?6))

-- name: insert_job_returning_id
-- insert_job for a single job, returning its id. Same params.
INSERT INTO ferroq_jobs (queue, job_type, payload, status, priority, attempts, max_attempts,
                         tenant_id, available_at, created_at, limit_key)
VALUES (?1, ?2, ?3, 'pending', ?4, 0, ?5, ?6, ?7, ?8, coalesce(?9, ?6))
RETURNING id

-- name: insert_jobs_json
-- A run of jobs that differ only in their payload, in array order (ORDER BY key gives them
-- their ids in that order). Params: ?1 queue, ?2 job_type, ?3 priority, ?4 max_attempts,
-- ?5 tenant_id, ?6 available_at, ?7 created_at, ?8 limit_key (as insert_job's), ?9 JSON
-- array of payload texts.
INSERT INTO ferroq_jobs (queue, job_type, payload, status, priority, attempts, max_attempts,
                         tenant_id, available_at, created_at, limit_key)
SELECT ?1, ?2, value, 'pending', ?3, 0, ?4, ?5, ?6, ?7, coalesce(?8, ?5)
FROM json_each(?9) ORDER BY key

-- name: max_id
-- The largest id in use (0 for an empty table), read before a bulk insert.
SELECT coalesce(max(id), 0) FROM ferroq_jobs

-- name: new_ids
-- Bounds and count of the ids above ?1 (the max_id read before a bulk insert).
SELECT min(id), max(id), count(*) FROM ferroq_jobs WHERE id > ?

-- name: insert_keyed
-- A job with an idempotency key; no row (and no id) when an active job of its type holds the
-- key. The conflict target's predicate is the partial unique index's, as literals.
-- Params: ?1 queue, ?2 job_type, ?3 payload, ?4 priority, ?5 max_attempts,
-- ?6 idempotency_key, ?7 tenant_id, ?8 available_at, ?9 created_at, ?10 limit_key (NULL: the
-- tenant is the key).
INSERT INTO ferroq_jobs (queue, job_type, payload, status, priority, attempts, max_attempts,
                         idempotency_key, tenant_id, available_at, created_at, limit_key)
VALUES (?1, ?2, ?3, 'pending', ?4, 0, ?5, ?6, ?7, ?8, ?9, coalesce(?10, ?7))
ON CONFLICT (job_type, idempotency_key)
    WHERE status IN ('pending', 'claimed') AND idempotency_key IS NOT NULL
DO NOTHING
RETURNING id

-- name: set_result_ttl
-- After a dispatch's inserts, in its write transaction: the result_ttl of a new job whose
-- dispatch asked to store its result (rules.result_ttls), run once per such job. A statement
-- of its own, so the insert statements every other dispatch runs are unchanged.
-- Params: ?1 seconds, ?2 id.
UPDATE ferroq_jobs SET result_ttl = ?1 WHERE id = ?2

-- name: key_holder
-- The id of the active job holding an idempotency key. Params: job_type, idempotency_key.
SELECT id FROM ferroq_jobs
WHERE job_type = ? AND idempotency_key = ? AND status IN ('pending', 'claimed')

-- name: unique_strip
-- Take the unique key :key of type :job_type off the row that has it but no longer holds it:
-- running, failed, or (:started = 1, mode until_started) started before and waiting for a
-- retry. Such a row never gets it back (ferroq_core.storage.unique).
UPDATE ferroq_jobs SET unique_key = NULL
WHERE job_type = :job_type AND unique_key = :key
  AND NOT (status = 'pending' AND (:started = 0 OR attempts = 0))

-- name: unique_insert
-- A job with a unique key (modes while_queued, until_started); no row (and no id) when a row
-- of its type has the key. The conflict target's predicate is the unique index's. A NULL
-- :limit_key stores the tenant as the key.
INSERT INTO ferroq_jobs (queue, job_type, payload, status, priority, attempts, max_attempts,
                         unique_key, tenant_id, available_at, created_at, limit_key)
VALUES (:queue, :job_type, :payload, 'pending', :priority, 0, :max_attempts, :key, :tenant_id,
        :available_at, :created_at, coalesce(:limit_key, :tenant_id))
ON CONFLICT (job_type, unique_key) WHERE unique_key IS NOT NULL DO NOTHING
RETURNING id

-- name: unique_holder
-- The pending row holding unique key :key of :job_type (:started as in unique_strip).
SELECT id FROM ferroq_jobs
WHERE job_type = :job_type AND unique_key = :key
  AND status = 'pending' AND (:started = 0 OR attempts = 0)

-- name: unique_replace
-- Debounce: the pending job :id takes the newest dispatch's payload and run time (:started
-- as in unique_strip). Returns its id, or nothing when it is no longer pending.
UPDATE ferroq_jobs SET payload = :payload, available_at = :available_at
WHERE id = :id AND status = 'pending' AND (:started = 0 OR attempts = 0)
RETURNING id

-- name: period_take
-- Take the period key :key of :job_type until :expires_at: insert it, or overwrite it when its
-- period ended by :now. Returns a row only when taken; job_id is set once the job is in.
INSERT INTO ferroq_unique_keys (job_type, unique_key, job_id, expires_at)
VALUES (:job_type, :key, NULL, :expires_at)
ON CONFLICT (job_type, unique_key) DO UPDATE
SET job_id = NULL, expires_at = excluded.expires_at
WHERE ferroq_unique_keys.expires_at <= :now
RETURNING 1

-- name: period_job
-- The job that took the period key :key of :job_type.
UPDATE ferroq_unique_keys SET job_id = :job_id WHERE job_type = :job_type AND unique_key = :key

-- name: period_holder
-- The job that holds the period key :key of :job_type (no row: none).
SELECT job_id FROM ferroq_unique_keys WHERE job_type = :job_type AND unique_key = :key

-- name: unique_key_of
-- The unique key on the row of job :id (NULL: none).
SELECT unique_key FROM ferroq_jobs WHERE id = :id

-- name: period_keys_of
-- The period keys job :id took, newest first (a scan of the keys table: for `ferroq show`).
SELECT unique_key, expires_at FROM ferroq_unique_keys WHERE job_id = :id
ORDER BY expires_at DESC

-- name: period_prune
-- Delete up to 64 keys whose period ended before :now, oldest first; run for one key taken in
-- 16 (storage.unique.PRUNE_EVERY), so expired keys never pile up and no sweep is needed.
DELETE FROM ferroq_unique_keys
WHERE rowid IN (SELECT rowid FROM ferroq_unique_keys WHERE expires_at < :now
                ORDER BY expires_at LIMIT 64)

-- =============================================================================================
-- The worker's store
-- =============================================================================================

-- name: claim
-- Claim up to ?4 due pending jobs of queue ?3 for worker ?1 at ?2 (epoch us), in claim order,
-- none of the job types of the JSON array ?5 (those with limits, in a queue that held none of
-- their jobs at the last look; usually empty); inside BEGIN IMMEDIATE this is the only
-- writer, so selecting then updating by id cannot double-claim. Returns JobRow's fields minus status, claimed_at, claimed_by and
-- heartbeat_at (the caller has their values), in no particular order.
UPDATE ferroq_jobs
SET status = 'claimed', claimed_by = ?1, claimed_at = ?2, heartbeat_at = ?2,
    attempts = attempts + 1
WHERE id IN (SELECT id FROM ferroq_jobs
             WHERE status = 'pending' AND queue = ?3 AND available_at <= ?2
               AND job_type NOT IN (SELECT value FROM json_each(?5))
               -- controls (see below): nothing of a paused queue; while any job type or
               -- tenant is paused or any job has a cancel request, those rows are skipped
               AND NOT EXISTS (SELECT 1 FROM ferroq_pauses WHERE scope = 'queue' AND name = ?3)
               AND (NOT EXISTS (SELECT 1 FROM ferroq_pauses WHERE scope <> 'queue')
                    AND NOT EXISTS (SELECT 1 FROM ferroq_cancellations)
                    OR NOT EXISTS (SELECT 1 FROM ferroq_pauses AS p
                                   WHERE p.scope = 'job_type' AND p.name = ferroq_jobs.job_type
                                      OR p.scope = 'tenant' AND p.name = ferroq_jobs.tenant_id)
                       AND NOT EXISTS (SELECT 1 FROM ferroq_cancellations AS c
                                       WHERE c.job_id = ferroq_jobs.id))
             ORDER BY priority, available_at, id LIMIT ?4)
RETURNING id, queue, job_type, payload, priority, attempts, max_attempts, idempotency_key,
          tenant_id, available_at, created_at, error, failed_at, result_ttl, limit_key

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
          heartbeat_at, error, failed_at, result_ttl, limit_key

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
          heartbeat_at, error, failed_at, result_ttl, limit_key

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
              -- the claim's controls: what it would skip is not waited for
              AND (NOT EXISTS (SELECT 1 FROM ferroq_pauses WHERE scope <> 'queue')
                   AND NOT EXISTS (SELECT 1 FROM ferroq_cancellations)
                   OR NOT EXISTS (SELECT 1 FROM ferroq_pauses AS p
                                  WHERE p.scope = 'job_type' AND p.name = at_level.job_type
                                     OR p.scope = 'tenant' AND p.name = at_level.tenant_id)
                      AND NOT EXISTS (SELECT 1 FROM ferroq_cancellations AS c
                                      WHERE c.job_id = at_level.id))
            ORDER BY at_level.available_at LIMIT 1))
FROM levels WHERE levels.priority IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM ferroq_pauses WHERE scope = 'queue' AND name = :queue)

-- =============================================================================================
-- Admin: listings, counts, operator actions
-- =============================================================================================

-- name: get_job
-- One job by id (JOB_COLUMNS). Param: id.
SELECT id, queue, job_type, payload, status, priority, attempts, max_attempts,
       idempotency_key, tenant_id, available_at, created_at, claimed_at, claimed_by,
       heartbeat_at, error, failed_at, result_ttl, limit_key
FROM ferroq_jobs WHERE id = ?

-- name: list_jobs
-- Jobs in claim order (priority, available_at, id), JOB_COLUMNS. Every filter may be NULL
-- (no filter): :state ('pending': due now; 'delayed': due after :now; 'claimed', 'failed'),
-- :queue, :job_type, :tenant_id, :limit_key. Paged by :limit and :offset.
SELECT id, queue, job_type, payload, status, priority, attempts, max_attempts,
       idempotency_key, tenant_id, available_at, created_at, claimed_at, claimed_by,
       heartbeat_at, error, failed_at, result_ttl, limit_key
FROM ferroq_jobs
WHERE (:state IS NULL
       OR (:state = 'pending' AND status = 'pending' AND available_at <= :now)
       OR (:state = 'delayed' AND status = 'pending' AND available_at > :now)
       OR (:state IN ('claimed', 'failed') AND status = :state))
  AND (:queue IS NULL OR queue = :queue)
  AND (:job_type IS NULL OR job_type = :job_type)
  AND (:tenant_id IS NULL OR tenant_id = :tenant_id)
  AND (:limit_key IS NULL OR limit_key = :limit_key)
ORDER BY priority, available_at, id
LIMIT :limit OFFSET :offset

-- name: list_claimed
-- Claimed jobs by claimed_at and id, JOB_COLUMNS; :queue, :job_type, :tenant_id, :limit_key
-- may be NULL (no filter). Paged by :limit and :offset.
SELECT id, queue, job_type, payload, status, priority, attempts, max_attempts,
       idempotency_key, tenant_id, available_at, created_at, claimed_at, claimed_by,
       heartbeat_at, error, failed_at, result_ttl, limit_key
FROM ferroq_jobs
WHERE status = 'claimed'
  AND (:queue IS NULL OR queue = :queue)
  AND (:job_type IS NULL OR job_type = :job_type)
  AND (:tenant_id IS NULL OR tenant_id = :tenant_id)
  AND (:limit_key IS NULL OR limit_key = :limit_key)
ORDER BY claimed_at, id
LIMIT :limit OFFSET :offset

-- name: list_failed
-- Failed jobs newest first (failed_at, id), JOB_COLUMNS; filters and paging as list_claimed.
SELECT id, queue, job_type, payload, status, priority, attempts, max_attempts,
       idempotency_key, tenant_id, available_at, created_at, claimed_at, claimed_by,
       heartbeat_at, error, failed_at, result_ttl, limit_key
FROM ferroq_jobs
WHERE status = 'failed'
  AND (:queue IS NULL OR queue = :queue)
  AND (:job_type IS NULL OR job_type = :job_type)
  AND (:tenant_id IS NULL OR tenant_id = :tenant_id)
  AND (:limit_key IS NULL OR limit_key = :limit_key)
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


-- =============================================================================================
-- Results (ferroq_core.storage.results)
-- =============================================================================================

-- name: store_results
-- Store the results of the leased jobs of one owner at one attempts count that still match,
-- kept one ttl, inside the acknowledgement's write transaction (complete_stored then deletes
-- exactly these jobs). ?1: JSON object {"<id>": value}; ?2 owner; ?3 attempts; ?4 now
-- (epoch us); ?5 ttl (us). json_each gives each value as text (no json_extract per row).
-- CROSS JOIN keeps the batch as the outer loop (SQLite does not reorder it): each job is one
-- primary-key lookup, whatever the planner would guess for the claimed rows' indexes.
INSERT INTO ferroq_results (job_id, job_type, value, created_at, expires_at)
SELECT j.id, j.job_type, w.value, ?4, ?4 + ?5
FROM json_each(?1) AS w
CROSS JOIN ferroq_jobs AS j ON j.id = CAST(w.key AS INTEGER)
WHERE j.status = 'claimed' AND j.claimed_by = ?2 AND j.attempts = ?3
-- Ids are never reused (AUTOINCREMENT); a file whose sequence was reset gets the new result.
ON CONFLICT (job_id) DO UPDATE SET job_type = excluded.job_type, value = excluded.value,
    created_at = excluded.created_at, expires_at = excluded.expires_at

-- name: store_results_returning
-- store_results, returning the ids stored (after a shortfall). Same params.
INSERT INTO ferroq_results (job_id, job_type, value, created_at, expires_at)
SELECT j.id, j.job_type, w.value, ?4, ?4 + ?5
FROM json_each(?1) AS w
CROSS JOIN ferroq_jobs AS j ON j.id = CAST(w.key AS INTEGER)
WHERE j.status = 'claimed' AND j.claimed_by = ?2 AND j.attempts = ?3
ON CONFLICT (job_id) DO UPDATE SET job_type = excluded.job_type, value = excluded.value,
    created_at = excluded.created_at, expires_at = excluded.expires_at
RETURNING job_id

-- name: complete_stored
-- Delete the jobs whose results store_results just stored (same transaction). ?1: JSON array
-- of ids.
DELETE FROM ferroq_jobs WHERE id IN (SELECT value FROM json_each(?1))

-- name: result_state
-- One job id's unexpired result and its row's status and error, in one read. Params: id, now.
SELECT r.job_id, r.job_type, r.value, r.created_at, r.expires_at, j.status, j.error
FROM (SELECT :id AS id) AS k
LEFT JOIN ferroq_results AS r ON r.job_id = k.id AND r.expires_at > :now
LEFT JOIN ferroq_jobs AS j ON j.id = k.id

-- name: prune_results
-- Delete up to :limit results expired at :now (-1: every one), oldest first.
DELETE FROM ferroq_results
WHERE job_id IN (SELECT job_id FROM ferroq_results WHERE expires_at <= :now
                 ORDER BY expires_at LIMIT :limit)

-- =============================================================================================
-- Schedules (periodic jobs): rows in ferroq_core.storage.schedules.SCHEDULE_COLUMNS order
-- =============================================================================================

-- name: schedule_earliest
-- The earliest next run of the active schedules (NULL when none): one probe of
-- ferroq_schedules_due.
SELECT min(next_run_at) FROM ferroq_schedules WHERE paused = 0

-- name: schedules_due
-- Active schedules due at :now, the earliest first, at most :limit.
SELECT name, job_type, payload, queue, priority, max_attempts, cron, timezone, catch_up,
       catch_up_window, source, paused, next_run_at, last_run_at, last_job_id, revision,
       updated_at, limit_key
FROM ferroq_schedules
WHERE paused = 0 AND next_run_at <= :now
ORDER BY next_run_at
LIMIT :limit

-- name: schedule_advance
-- A worker's compare-and-set: move the next run on only while the row is as it read it.
-- Params: :new_next_run_at, :last_run_at (NULL: keep), :name, :revision, :next_run_at.
UPDATE ferroq_schedules
SET next_run_at = :new_next_run_at, last_run_at = coalesce(:last_run_at, last_run_at)
WHERE name = :name AND revision = :revision AND next_run_at = :next_run_at AND paused = 0

-- name: schedule_last_job
-- Record the job of the last run. Params: :name, :job_id, :at.
UPDATE ferroq_schedules SET last_job_id = :job_id, last_run_at = :at WHERE name = :name

-- name: schedule_get
-- One schedule by :name.
SELECT name, job_type, payload, queue, priority, max_attempts, cron, timezone, catch_up,
       catch_up_window, source, paused, next_run_at, last_run_at, last_job_id, revision,
       updated_at, limit_key
FROM ferroq_schedules WHERE name = :name

-- name: schedules_all
-- Every schedule, by name.
SELECT name, job_type, payload, queue, priority, max_attempts, cron, timezone, catch_up,
       catch_up_window, source, paused, next_run_at, last_run_at, last_job_id, revision,
       updated_at, limit_key
FROM ferroq_schedules ORDER BY name

-- name: schedule_insert
-- A new schedule (active). Params: the definition, :next_run_at, :now.
INSERT INTO ferroq_schedules (name, job_type, payload, queue, priority, max_attempts, cron,
                              timezone, catch_up, catch_up_window, source, limit_key,
                              paused, next_run_at, revision, created_at, updated_at)
VALUES (:name, :job_type, :payload, :queue, :priority, :max_attempts, :cron, :timezone,
        :catch_up, :catch_up_window, :source, :limit_key, 0, :next_run_at, 1, :now, :now)

-- name: schedule_replace
-- A new definition for an existing schedule: revision + 1; the next run is :next_run_at
-- unless the schedule is paused. Params: the definition, :next_run_at, :now.
UPDATE ferroq_schedules
SET job_type = :job_type, payload = :payload, queue = :queue, priority = :priority,
    max_attempts = :max_attempts, cron = :cron, timezone = :timezone, catch_up = :catch_up,
    catch_up_window = :catch_up_window, source = :source, limit_key = :limit_key,
    next_run_at = CASE WHEN paused = 1 THEN NULL ELSE :next_run_at END,
    revision = revision + 1, updated_at = :now
WHERE name = :name

-- name: schedule_pause
-- Pause (:paused = 1, next run NULL) or resume (:paused = 0, next run :next_run_at) a
-- schedule that is not in that state already. Params: :name, :paused, :next_run_at, :now.
UPDATE ferroq_schedules
SET paused = :paused, next_run_at = :next_run_at, revision = revision + 1, updated_at = :now
WHERE name = :name AND paused <> :paused

-- name: schedule_exists
-- 1 when a schedule named :name exists.
SELECT count(*) FROM ferroq_schedules WHERE name = :name

-- name: schedule_delete
-- Delete the schedule :name.
DELETE FROM ferroq_schedules WHERE name = :name
-- =============================================================================================
-- Controls: pauses and cancel requests (ferroq_core.tables.controls). The claim and
-- earliest_due above skip what they cover; the heartbeat_cancels reply carries cancel requests.
-- =============================================================================================

-- name: pause
-- Record a pause (:scope, :name) at :now with :reason; returns it when it is new.
INSERT INTO ferroq_pauses (scope, name, paused_at, reason) VALUES (:scope, :name, :now, :reason)
ON CONFLICT (scope, name) DO NOTHING
RETURNING scope, name, paused_at, reason

-- name: resume
-- Remove the pause (:scope, :name); returns it when there was one.
DELETE FROM ferroq_pauses WHERE scope = :scope AND name = :name
RETURNING scope, name, paused_at, reason

-- name: list_pauses
-- Every pause in force.
SELECT scope, name, paused_at, reason FROM ferroq_pauses ORDER BY scope, name

-- name: cancel_pending
-- Delete the pending (due and delayed) jobs among the JSON array :ids (NULL: any) of :queue
-- and :job_type (NULL: any). Returns the rows (JOB_COLUMNS).
DELETE FROM ferroq_jobs
WHERE status = 'pending'
  AND (:ids IS NULL OR id IN (SELECT value FROM json_each(:ids)))
  AND (:queue IS NULL OR queue = :queue)
  AND (:job_type IS NULL OR job_type = :job_type)
RETURNING id, queue, job_type, payload, status, priority, attempts, max_attempts,
          idempotency_key, tenant_id, available_at, created_at, claimed_at, claimed_by,
          heartbeat_at, error, failed_at, result_ttl, limit_key

-- name: cancel_running
-- After cancel_pending: a cancel request at :now for each claimed job among :ids of :queue and
-- :job_type (filters as cancel_pending; no pending one is left in the write transaction); an
-- earlier request is kept. Returns the ids requested.
INSERT INTO ferroq_cancellations (job_id, requested_at)
SELECT id, :now FROM ferroq_jobs
WHERE status IN ('pending', 'claimed')
  AND (:ids IS NULL OR id IN (SELECT value FROM json_each(:ids)))
  AND (:queue IS NULL OR queue = :queue)
  AND (:job_type IS NULL OR job_type = :job_type)
ON CONFLICT (job_id) DO UPDATE SET requested_at = ferroq_cancellations.requested_at
RETURNING job_id

-- name: heartbeat_cancels
-- heartbeat, returning with each id held 1 when its job has a cancel request, else 0.
-- Params: heartbeat's.
UPDATE ferroq_jobs SET heartbeat_at = ?4
WHERE id IN (SELECT value FROM json_each(?2))
  AND status = 'claimed' AND claimed_by = ?1 AND attempts = ?3
RETURNING id, EXISTS (SELECT 1 FROM ferroq_cancellations WHERE job_id = ferroq_jobs.id)

-- name: finish_cancelled
-- Delete a claimed job that stopped for its cancel request. Fenced by :id, :owner, :attempts.
DELETE FROM ferroq_jobs
WHERE id = :id AND status = 'claimed' AND claimed_by = :owner AND attempts = :attempts

-- name: drop_cancellation
-- The cancel request of job :id, once acted on.
DELETE FROM ferroq_cancellations WHERE job_id = :id

-- name: sweep_cancelled
-- Delete the jobs that have a cancel request and are pending (given back before their worker
-- acted on it) or claimed by one of the dead workers in :holders (JSON array; their claims are
-- about to be taken back). Returns the rows (JOB_COLUMNS).
DELETE FROM ferroq_jobs
WHERE (status = 'pending'
       OR status = 'claimed' AND claimed_by IN (SELECT value FROM json_each(:holders)))
  AND id IN (SELECT job_id FROM ferroq_cancellations)
RETURNING id, queue, job_type, payload, status, priority, attempts, max_attempts,
          idempotency_key, tenant_id, available_at, created_at, claimed_at, claimed_by,
          heartbeat_at, error, failed_at, result_ttl, limit_key

-- name: sweep_cancellations
-- Drop the cancel requests whose job is no longer claimed (finished, failed, or swept).
DELETE FROM ferroq_cancellations
WHERE NOT EXISTS (SELECT 1 FROM ferroq_jobs
                  WHERE ferroq_jobs.id = ferroq_cancellations.job_id
                    AND ferroq_jobs.status = 'claimed')
-- =============================================================================================
-- History, attempt errors, progress (ferroq_core.storage.history; the attempt errors are
-- written by the trigger of ferroq_core.tables.history)
-- =============================================================================================

-- name: history_record
-- Before complete (or complete_stored, for jobs that also store a result), in its
-- transaction: a history record of each job whose lease matches, at
-- :now, for the leases of one owner at one attempts count. :done is a JSON array of
-- [id, duration] pairs. A record already there (never, ids are not reused) is kept. CROSS JOIN
-- keeps json_each the outer loop (each job found by primary key): otherwise the planner may
-- walk every claim of the owner through ferroq_jobs_claimed_by for each pair.
INSERT INTO ferroq_job_history (job_id, queue, job_type, tenant_id, priority, attempts,
                                max_attempts, created_at, claimed_at, finished_at, duration,
                                worker)
SELECT j.id, j.queue, j.job_type, j.tenant_id, j.priority, j.attempts, j.max_attempts,
       j.created_at, j.claimed_at, :now, json_extract(d.value, '$[1]'), j.claimed_by
FROM json_each(:done) AS d
CROSS JOIN ferroq_jobs AS j ON j.id = json_extract(d.value, '$[0]')
WHERE j.status = 'claimed' AND j.claimed_by = :owner AND j.attempts = :attempts
ON CONFLICT (job_id) DO NOTHING

-- name: write_progress
-- A job's latest progress. Params: job_id, fraction, message, now.
INSERT INTO ferroq_job_progress (job_id, fraction, message, updated_at)
VALUES (:job_id, :fraction, :message, :now)
ON CONFLICT (job_id) DO UPDATE
SET fraction = excluded.fraction, message = excluded.message, updated_at = excluded.updated_at

-- name: get_progress
-- The progress of the jobs in the JSON array :ids.
SELECT job_id, fraction, message, updated_at FROM ferroq_job_progress
WHERE job_id IN (SELECT value FROM json_each(:ids))

-- name: get_history
-- One history record by job id.
SELECT job_id, queue, job_type, tenant_id, priority, attempts, max_attempts, created_at,
       claimed_at, finished_at, duration, worker
FROM ferroq_job_history WHERE job_id = :job_id

-- name: list_history
-- History records newest first; :queue, :job_type, :tenant_id may be NULL (no filter).
SELECT job_id, queue, job_type, tenant_id, priority, attempts, max_attempts, created_at,
       claimed_at, finished_at, duration, worker
FROM ferroq_job_history
WHERE (:queue IS NULL OR queue = :queue)
  AND (:job_type IS NULL OR job_type = :job_type)
  AND (:tenant_id IS NULL OR tenant_id = :tenant_id)
ORDER BY finished_at DESC, job_id DESC
LIMIT :limit OFFSET :offset

-- name: attempt_errors
-- The failed attempts of job :job_id, oldest first.
SELECT job_id, attempt, error, worker, failed_at FROM ferroq_job_errors
WHERE job_id = :job_id ORDER BY id

-- name: prune_history
-- Up to :limit history records finished before :cutoff.
DELETE FROM ferroq_job_history
WHERE job_id IN (SELECT job_id FROM ferroq_job_history WHERE finished_at < :cutoff
                 ORDER BY finished_at LIMIT :limit)

-- name: prune_errors
-- Up to :limit attempt errors written before :cutoff whose job no longer exists (a failed
-- job keeps its errors as long as it is kept).
DELETE FROM ferroq_job_errors
WHERE id IN (SELECT e.id FROM ferroq_job_errors AS e
             WHERE e.failed_at < :cutoff
               AND NOT EXISTS (SELECT 1 FROM ferroq_jobs AS j WHERE j.id = e.job_id)
             ORDER BY e.failed_at LIMIT :limit)

-- name: prune_progress
-- Up to :limit progress rows written before :cutoff whose job is not running.
DELETE FROM ferroq_job_progress
WHERE job_id IN (SELECT p.job_id FROM ferroq_job_progress AS p
                 WHERE p.updated_at < :cutoff
                   AND NOT EXISTS (SELECT 1 FROM ferroq_jobs AS j
                                   WHERE j.id = p.job_id AND j.status = 'claimed')
                 ORDER BY p.updated_at LIMIT :limit)
-- =============================================================================================
-- Worker registry and signals (ferroq_sqlite/workers.py)
-- =============================================================================================

-- name: register_worker
-- Write a worker's row, replacing one with its id. Params: id, role, host, pid, queues (JSON
-- array), concurrency, visibility_timeout, version, supervisor, started_at, now.
INSERT OR REPLACE INTO ferroq_workers (id, role, host, pid, queues, concurrency,
                                       visibility_timeout, version, supervisor, started_at,
                                       heartbeat_at)
VALUES (:id, :role, :host, :pid, :queues, :concurrency, :visibility_timeout, :version,
        :supervisor, :started_at, :now)

-- name: beat_worker
-- A worker's heartbeat at :now; no row changed means it was removed as dead. Params: id, now.
UPDATE ferroq_workers SET heartbeat_at = :now WHERE id = :id

-- name: deregister_worker
-- Remove a worker's row. Params: id.
DELETE FROM ferroq_workers WHERE id = :id

-- name: live_workers
-- Workers whose heartbeat is within their own visibility timeout of :now.
SELECT id, role, host, pid, queues, concurrency, visibility_timeout, version, supervisor,
       started_at, heartbeat_at
FROM ferroq_workers
WHERE heartbeat_at >= :now - CAST(visibility_timeout * 1000000 AS INTEGER)
ORDER BY host, started_at, id

-- name: registered_beats
-- Every registered worker (dead ones too, until reaped) and its last heartbeat.
SELECT id, heartbeat_at FROM ferroq_workers

-- name: reap_workers
-- Remove the workers silent for longer than their own visibility timeout at :now.
DELETE FROM ferroq_workers
WHERE heartbeat_at < :now - CAST(visibility_timeout * 1000000 AS INTEGER)
RETURNING id, role, host, pid, queues, concurrency, visibility_timeout, version, supervisor,
          started_at, heartbeat_at

-- name: held_jobs
-- Every claimed job's id, type, queue, holder and claim time (the listing of workers).
SELECT id, job_type, queue, claimed_by, claimed_at FROM ferroq_jobs
WHERE status = 'claimed'
ORDER BY id

-- name: send_signal
-- Set the signal :name (restart) to :now.
INSERT INTO ferroq_worker_signals (name, sent_at) VALUES (:name, :now)
ON CONFLICT (name) DO UPDATE SET sent_at = excluded.sent_at

-- name: read_signal
-- When the signal :name was last sent (no row: never).
SELECT sent_at FROM ferroq_worker_signals WHERE name = :name
-- ==== flow control: limits (ferroq_core.storage.flow) ======================================
-- The limited claim runs these inside one BEGIN IMMEDIATE transaction (the write lock
-- serializes it with every other claim); the plain claim above stays as it is for queues
-- without limits. Times are epoch microseconds (:now).

-- name: limits_scopes
-- The scope and name of every limit (a worker looks every few seconds).
SELECT scope, name FROM ferroq_limits

-- name: limits_typed_queues
-- Which of the queues of the JSON array :queues hold pending jobs of the (limited) job types
-- of the JSON array :types. Returns queue.
SELECT q.value FROM json_each(:queues) AS q
WHERE EXISTS (SELECT 1 FROM ferroq_jobs
              WHERE status = 'pending' AND queue = q.value
                AND job_type IN (SELECT value FROM json_each(:types)))

-- name: limits_all
-- Every limit. Returns scope, name, per_tenant, concurrency, rate, per, fair.
SELECT scope, name, per_tenant, concurrency, rate, per, fair FROM ferroq_limits
ORDER BY scope, name

-- name: limits_running
-- The live leases per group. Returns queue, job_type, limit_key, count.
SELECT queue, job_type, limit_key, count(*) FROM ferroq_jobs WHERE status = 'claimed'
GROUP BY queue, job_type, limit_key

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
-- id, job_type, limit_key, priority, available_at.
SELECT id, job_type, limit_key, priority, available_at FROM ferroq_jobs
WHERE status = 'pending' AND queue = :queue AND available_at <= :now
ORDER BY priority, available_at, id
LIMIT :n

-- name: limit_groups
-- The (job_type, limit_key) groups of one queue's pending jobs, one probe of
-- ferroq_jobs_groups each. Params: queue. Returns job_type, limit_key, and the group's best
-- priority.
WITH RECURSIVE types(t) AS (
    SELECT (SELECT job_type FROM ferroq_jobs WHERE status = 'pending' AND queue = :queue
            ORDER BY job_type LIMIT 1)
    UNION ALL
    SELECT (SELECT job_type FROM ferroq_jobs
            WHERE status = 'pending' AND queue = :queue AND job_type > types.t
            ORDER BY job_type LIMIT 1)
    FROM types WHERE types.t IS NOT NULL),
keys(t, k) AS (
    SELECT types.t, (SELECT limit_key FROM ferroq_jobs
                     WHERE status = 'pending' AND queue = :queue AND job_type = types.t
                       AND limit_key IS NOT NULL
                     ORDER BY limit_key LIMIT 1)
    FROM types WHERE types.t IS NOT NULL
    UNION ALL
    SELECT keys.t, (SELECT limit_key FROM ferroq_jobs
                    WHERE status = 'pending' AND queue = :queue AND job_type = keys.t
                      AND limit_key > keys.k
                    ORDER BY limit_key LIMIT 1)
    FROM keys WHERE keys.k IS NOT NULL)
SELECT t, k, (SELECT priority FROM ferroq_jobs
              WHERE status = 'pending' AND queue = :queue AND job_type = t AND limit_key = k
              ORDER BY priority LIMIT 1)
FROM keys WHERE k IS NOT NULL
UNION ALL
SELECT t, NULL, p FROM (
    SELECT types.t, (SELECT priority FROM ferroq_jobs
                     WHERE status = 'pending' AND queue = :queue AND job_type = types.t
                       AND limit_key IS NULL
                     ORDER BY priority LIMIT 1) AS p
    FROM types WHERE types.t IS NOT NULL) AS unkeyed
WHERE p IS NOT NULL

-- name: limit_candidates
-- Up to n due jobs of one limit key's group, in claim order. Params: queue, job_type,
-- limit_key, n, now. Returns id, job_type, limit_key, priority, available_at.
SELECT id, job_type, limit_key, priority, available_at FROM ferroq_jobs
WHERE status = 'pending' AND queue = :queue AND job_type = :job_type
  AND limit_key = :limit_key AND available_at <= :now
ORDER BY priority, available_at, id LIMIT :n

-- name: limit_candidates_unkeyed
-- limit_candidates for the group without a limit key. Params: its own but limit_key.
SELECT id, job_type, limit_key, priority, available_at FROM ferroq_jobs
WHERE status = 'pending' AND queue = :queue AND job_type = :job_type AND limit_key IS NULL
  AND available_at <= :now
ORDER BY priority, available_at, id LIMIT :n

-- name: limit_claim
-- Claim the chosen jobs for worker at now. Params: ids (JSON array), worker, now. Returns
-- the claim query's columns.
UPDATE ferroq_jobs
SET status = 'claimed', claimed_by = :worker, claimed_at = :now, heartbeat_at = :now,
    attempts = attempts + 1
WHERE id IN (SELECT value FROM json_each(:ids)) AND status = 'pending'
  -- controls: what a pause covers or a cancel request names is never claimed, here too
  -- (the candidates were chosen without looking; see claim)
  AND NOT EXISTS (SELECT 1 FROM ferroq_pauses AS p
                  WHERE p.scope = 'queue' AND p.name = ferroq_jobs.queue
                     OR p.scope = 'job_type' AND p.name = ferroq_jobs.job_type
                     OR p.scope = 'tenant' AND p.name = ferroq_jobs.tenant_id)
  AND NOT EXISTS (SELECT 1 FROM ferroq_cancellations AS c WHERE c.job_id = ferroq_jobs.id)
RETURNING id, queue, job_type, payload, priority, attempts, max_attempts, idempotency_key,
          tenant_id, available_at, created_at, error, failed_at, result_ttl, limit_key

-- name: limit_head_verdict
-- The head claim's look (ferroq_core.storage.headclaim): the first :limit due jobs of :queue
-- in claim order, picked as the plain claim picks them (the controls included), and whether
-- every concurrency limit over them still holds with them added to the live leases (counted
-- per limit and key, as the limited claim counts) with no rate limit or fair turn governing
-- them. Params: queue, limit, now. Returns one row: the verdict ('fits', 'binds', 'other')
-- and the head's ids as a JSON array (limit_claim's :ids).
WITH picked AS MATERIALIZED (
    SELECT id, job_type, limit_key FROM ferroq_jobs
    WHERE status = 'pending' AND queue = :queue AND available_at <= :now
      AND NOT EXISTS (SELECT 1 FROM ferroq_pauses WHERE scope = 'queue' AND name = :queue)
      AND (NOT EXISTS (SELECT 1 FROM ferroq_pauses WHERE scope <> 'queue')
           AND NOT EXISTS (SELECT 1 FROM ferroq_cancellations)
           OR NOT EXISTS (SELECT 1 FROM ferroq_pauses AS p
                          WHERE p.scope = 'job_type' AND p.name = ferroq_jobs.job_type
                             OR p.scope = 'tenant' AND p.name = ferroq_jobs.tenant_id)
              AND NOT EXISTS (SELECT 1 FROM ferroq_cancellations AS c
                              WHERE c.job_id = ferroq_jobs.id))
    ORDER BY priority, available_at, id
    LIMIT :limit),
rules AS MATERIALIZED (
    SELECT scope, name, per_tenant, concurrency, rate, fair FROM ferroq_limits
    WHERE scope = 'queue' AND name = :queue
       OR scope = 'type' AND name IN (SELECT job_type FROM picked)),
counted AS (
    SELECT l.concurrency, count(*) AS n
    FROM rules AS l
    JOIN (SELECT queue, job_type, limit_key FROM ferroq_jobs WHERE status = 'claimed'
          UNION ALL
          SELECT :queue, job_type, limit_key FROM picked) AS j
      ON l.scope = 'queue' AND j.queue = l.name OR l.scope = 'type' AND j.job_type = l.name
    WHERE l.concurrency IS NOT NULL
    GROUP BY l.scope, l.name, l.concurrency,
             CASE WHEN l.per_tenant <> 0 THEN coalesce(j.limit_key, '') END)
SELECT CASE WHEN EXISTS (SELECT 1 FROM rules WHERE rate IS NOT NULL OR fair <> 0) THEN 'other'
            WHEN EXISTS (SELECT 1 FROM counted WHERE n > concurrency) THEN 'binds'
            ELSE 'fits' END,
       (SELECT json_group_array(id) FROM picked)

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

-- name: limits_any
-- A row when any limit exists.
SELECT 1 FROM ferroq_limits LIMIT 1

-- name: groups_index_drop
-- The limited claim's index goes with the last limit (ferroq_sqlite.flow.delete_limit).
DROP INDEX IF EXISTS ferroq_jobs_groups

-- name: limit_waiting
-- Due pending jobs per group. Params: now. Returns queue, job_type, limit_key, count.
SELECT queue, job_type, limit_key, count(*) FROM ferroq_jobs
WHERE status = 'pending' AND available_at <= :now
GROUP BY queue, job_type, limit_key

-- name: groups_index_exists
-- A row when the limited claim's index exists.
SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'ferroq_jobs_groups'

-- name: pending_beyond
-- How many pending jobs :queue holds, counted up to :limit (ferroq_sqlite.groups_index: a
-- queue too large to read its groups without the index).
SELECT count(*) FROM (SELECT 1 FROM ferroq_jobs
                      WHERE status = 'pending' AND queue = :queue LIMIT :limit)

-- name: limit_groups_scan
-- limit_groups without the index (ferroq_sqlite.groups_index): one pass over the queue's
-- pending rows. Params: queue. Returns job_type, limit_key, and the group's best priority.
SELECT job_type, limit_key, min(priority) FROM ferroq_jobs
WHERE status = 'pending' AND queue = :queue
GROUP BY job_type, limit_key

-- name: limit_candidates_scan
-- The due pending jobs of one queue in claim order (read until the groups' candidates are
-- found: ferroq_sqlite.groups_index). Params: queue, now. Returns id, job_type, limit_key,
-- priority, available_at.
SELECT id, job_type, limit_key, priority, available_at FROM ferroq_jobs
WHERE status = 'pending' AND queue = :queue AND available_at <= :now
ORDER BY priority, available_at, id

-- name: groups_index_create
-- The limited claim's index (ferroq_core.tables.limitkeys: the same name and columns), made
-- by the second limited claim within a minute that must read a queue's groups
-- (ferroq_sqlite.groups_index); in that claim's write transaction, so it is made once.
CREATE INDEX IF NOT EXISTS ferroq_jobs_groups
ON ferroq_jobs (queue, job_type, limit_key, priority, available_at, id)
WHERE status = 'pending'

