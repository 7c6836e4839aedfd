-- Every statement of the Postgres backend, as named queries (ferroq_core.storage.queries).
--
-- Placeholders are psycopg's: %(name)s, and %(name)b for an array sent in the binary format.
-- Every time is the database clock: statement_timestamp(), which a long caller transaction
-- does not skew (unlike now()). Status predicates are literals wherever a partial index has
-- the same predicate: a prepared statement's generic plan can only use such an index when the
-- predicate is written exactly as the index's (the lease fences are the one deliberate
-- exception, see _fence below). Rows of jobs always come in ferroq_core.storage.rules'
-- JOB_COLUMNS order, so a row is a JobRow's positional arguments.


-- ==== sessions ============================================================================

-- name: set_utc
-- Run on each new connection of an engine ferroq created: psycopg reads timestamptz fastest
-- in the zone named UTC. A SET, not the options startup parameter, which PgBouncer refuses.
SET TIME ZONE 'UTC'

-- name: now
-- The database clock.
SELECT statement_timestamp()

-- name: ping
-- The LISTEN connection's health check after a long silence.
SELECT 1


-- ==== dispatch ============================================================================

-- name: enqueue_one
-- One job, outside a caller's transaction: INSERT and NOTIFY as one autocommit statement, one
-- round trip instead of four (BEGIN, INSERT, NOTIFY, COMMIT); the NOTIFY still goes out only
-- when the statement's implicit transaction commits. Params: queue, job_type, payload,
-- priority, max_attempts, idempotency_key (None), tenant_id, limit_key (None: the tenant is
-- the key), delay (seconds), channel. Returns the new id.
WITH ins AS (
    INSERT INTO ferroq_jobs (queue, job_type, payload, status, priority, attempts,
                             max_attempts, idempotency_key, tenant_id, available_at, created_at,
                             limit_key)
    VALUES (%(queue)s, %(job_type)s, %(payload)s, 'pending', %(priority)s, 0,
            %(max_attempts)s, %(idempotency_key)s, %(tenant_id)s,
            statement_timestamp() + make_interval(secs => %(delay)s), statement_timestamp(),
            coalesce(%(limit_key)s::text, %(tenant_id)s))
    RETURNING id, queue)
SELECT ins.id FROM ins, LATERAL pg_notify(%(channel)s, ins.queue)

-- name: enqueue_one_keyed
-- enqueue_one for a job with an idempotency key: no row (and no NOTIFY, LATERAL runs once per
-- inserted row) when an active job holds the key. The conflict target's predicate is written
-- with literals, exactly as the partial index's: with bound parameters a prepared (generic)
-- plan finds no index to match. Params: enqueue_one's. Returns the new id or nothing.
WITH ins AS (
    INSERT INTO ferroq_jobs (queue, job_type, payload, status, priority, attempts,
                             max_attempts, idempotency_key, tenant_id, available_at, created_at,
                             limit_key)
    VALUES (%(queue)s, %(job_type)s, %(payload)s, 'pending', %(priority)s, 0,
            %(max_attempts)s, %(idempotency_key)s, %(tenant_id)s,
            statement_timestamp() + make_interval(secs => %(delay)s), statement_timestamp(),
            coalesce(%(limit_key)s::text, %(tenant_id)s))
    ON CONFLICT (job_type, idempotency_key)
        WHERE status IN ('pending', 'claimed') AND idempotency_key IS NOT NULL DO NOTHING
    RETURNING id, queue)
SELECT ins.id FROM ins, LATERAL pg_notify(%(channel)s, ins.queue)

-- name: insert_job
-- One job inside a transaction (a caller's, or a batch's) that sends one notify_queues at its
-- end. Params: enqueue_one's but channel. Returns the new id.
INSERT INTO ferroq_jobs (queue, job_type, payload, status, priority, attempts, max_attempts,
                         idempotency_key, tenant_id, available_at, created_at, limit_key)
VALUES (%(queue)s, %(job_type)s, %(payload)s, 'pending', %(priority)s, 0, %(max_attempts)s,
        %(idempotency_key)s, %(tenant_id)s,
        statement_timestamp() + make_interval(secs => %(delay)s), statement_timestamp(),
        coalesce(%(limit_key)s::text, %(tenant_id)s))
RETURNING id

-- name: insert_job_keyed
-- insert_job for a job with an idempotency key; no row when an active job holds it (the
-- literal predicate: see enqueue_one_keyed). Returns the new id or nothing.
INSERT INTO ferroq_jobs (queue, job_type, payload, status, priority, attempts, max_attempts,
                         idempotency_key, tenant_id, available_at, created_at, limit_key)
VALUES (%(queue)s, %(job_type)s, %(payload)s, 'pending', %(priority)s, 0, %(max_attempts)s,
        %(idempotency_key)s, %(tenant_id)s,
        statement_timestamp() + make_interval(secs => %(delay)s), statement_timestamp(),
        coalesce(%(limit_key)s::text, %(tenant_id)s))
ON CONFLICT (job_type, idempotency_key)
    WHERE status IN ('pending', 'claimed') AND idempotency_key IS NOT NULL DO NOTHING
RETURNING id

-- name: insert_jobs
-- Many jobs without idempotency keys as one statement with one array per column: one text
-- for every batch size (a multi-row VALUES is a new text per size, and psycopg spent longer
-- parsing it than the server inserting). The arrays travel in the binary format (psycopg's
-- text format quotes every element); the casts fix each array's type whatever psycopg infers
-- from the values. Rows go in in ord order, so the serial ids ascend in request order.
-- Params: queues, job_types, payloads, priorities, max_attempts, tenants, delays, limit_keys
-- (arrays; a NULL limit key stores the tenant as the key). Returns the new ids.
INSERT INTO ferroq_jobs (queue, job_type, payload, status, priority, attempts, max_attempts,
                         tenant_id, available_at, created_at, limit_key)
SELECT r.queue, r.job_type, r.payload, 'pending', r.priority, 0, r.max_attempts, r.tenant_id,
       statement_timestamp() + make_interval(secs => r.delay), statement_timestamp(),
       coalesce(r.limit_key, r.tenant_id)
FROM unnest(%(queues)b::text[], %(job_types)b::text[], %(payloads)b::text[],
            %(priorities)b::int[], %(max_attempts)b::int[], %(tenants)b::text[],
            %(delays)b::float8[], %(limit_keys)b::text[]) WITH ORDINALITY
     AS r(queue, job_type, payload, priority, max_attempts, tenant_id, delay, limit_key, ord)
ORDER BY r.ord
RETURNING id

-- name: set_result_ttls
-- After a dispatch's inserts, in its transaction: the result_ttl of the new jobs whose
-- dispatch asked to store their result (rules.result_ttls). A statement of its own, so the
-- insert statements every other dispatch runs are unchanged. Params: ids, ttls (arrays).
UPDATE ferroq_jobs SET result_ttl = t.ttl
FROM unnest(%(ids)s::bigint[], %(ttls)s::float8[]) AS t(id, ttl)
WHERE ferroq_jobs.id = t.id

-- name: key_holder
-- The active job holding an idempotency key. Params: job_type, idempotency_key.
SELECT id FROM ferroq_jobs
WHERE job_type = %(job_type)s AND idempotency_key = %(idempotency_key)s
  AND status IN ('pending', 'claimed')

-- name: unique_strip
-- Take the unique key of a type off the row that has it but no longer holds it: running,
-- failed, or (started = 1, mode until_started) started before and waiting for a retry. Such
-- a row never gets it back (ferroq_core.storage.unique). Params: job_type, key, started.
UPDATE ferroq_jobs SET unique_key = NULL
WHERE job_type = %(job_type)s AND unique_key = %(key)s
  AND NOT (status = 'pending' AND (%(started)s = 0 OR attempts = 0))

-- name: unique_insert
-- insert_job for a job with a unique key (modes while_queued, until_started): no row when a
-- row of its type has the key (the index's predicate as a literal, see enqueue_one_keyed).
-- Params: insert_job's and key. Returns the new id or nothing.
INSERT INTO ferroq_jobs (queue, job_type, payload, status, priority, attempts, max_attempts,
                         unique_key, tenant_id, available_at, created_at, limit_key)
VALUES (%(queue)s, %(job_type)s, %(payload)s, 'pending', %(priority)s, 0, %(max_attempts)s,
        %(key)s, %(tenant_id)s,
        statement_timestamp() + make_interval(secs => %(delay)s), statement_timestamp(),
        coalesce(%(limit_key)s::text, %(tenant_id)s))
ON CONFLICT (job_type, unique_key) WHERE unique_key IS NOT NULL DO NOTHING
RETURNING id

-- name: unique_insert_many
-- insert_jobs for jobs with unique keys (modes while_queued, until_started): the rows whose key
-- no row has go in (of equal keys in the batch, the first); the others, none inserted, settle
-- one by one (ferroq_core.storage.unique). In key order, so that concurrent batches take the
-- keys' index locks in one order (rather than deadlock). Params: insert_jobs' and keys.
-- Returns the new ids with their type and key.
INSERT INTO ferroq_jobs (queue, job_type, payload, status, priority, attempts, max_attempts,
                         unique_key, tenant_id, available_at, created_at, limit_key)
SELECT r.queue, r.job_type, r.payload, 'pending', r.priority, 0, r.max_attempts, r.key,
       r.tenant_id, statement_timestamp() + make_interval(secs => r.delay),
       statement_timestamp(), coalesce(r.limit_key, r.tenant_id)
FROM unnest(%(queues)b::text[], %(job_types)b::text[], %(payloads)b::text[],
            %(priorities)b::int[], %(max_attempts)b::int[], %(tenants)b::text[],
            %(delays)b::float8[], %(limit_keys)b::text[], %(keys)b::text[]) WITH ORDINALITY
     AS r(queue, job_type, payload, priority, max_attempts, tenant_id, delay, limit_key, key,
          ord)
ORDER BY r.job_type, r.key, r.ord
ON CONFLICT (job_type, unique_key) WHERE unique_key IS NOT NULL DO NOTHING
RETURNING id, job_type, unique_key

-- name: unique_holder
-- The pending row holding a unique key (started as in unique_strip). Params: job_type, key,
-- started.
SELECT id FROM ferroq_jobs
WHERE job_type = %(job_type)s AND unique_key = %(key)s
  AND status = 'pending' AND (%(started)s = 0 OR attempts = 0)

-- name: unique_replace
-- Debounce: the pending job id takes the newest dispatch's payload and run time (started as
-- in unique_strip). Params: id, payload, delay, started. Returns its id, or nothing.
UPDATE ferroq_jobs
SET payload = %(payload)s, available_at = statement_timestamp() + make_interval(secs => %(delay)s)
WHERE id = %(id)s AND status = 'pending' AND (%(started)s = 0 OR attempts = 0)
RETURNING id

-- name: period_insert
-- Take a period key for period seconds and insert the job under it, in one statement: the
-- key row is inserted, or overwritten when its period ended, with the job's id drawn from the
-- jobs' sequence (a taker that finds the key held leaves a gap in the ids, as a rollback
-- does); a concurrent taker waits on the key row, then finds it unexpired. Params:
-- insert_job's (but idempotency_key), key, period. Returns the new id, or nothing when held.
WITH taken AS (
    INSERT INTO ferroq_unique_keys (job_type, unique_key, job_id, expires_at)
    VALUES (%(job_type)s, %(key)s, nextval(pg_get_serial_sequence('ferroq_jobs', 'id')),
            statement_timestamp() + make_interval(secs => %(period)s))
    ON CONFLICT (job_type, unique_key) DO UPDATE
    SET job_id = excluded.job_id, expires_at = excluded.expires_at
    WHERE ferroq_unique_keys.expires_at <= statement_timestamp()
    RETURNING job_id)
INSERT INTO ferroq_jobs (id, queue, job_type, payload, status, priority, attempts,
                         max_attempts, tenant_id, available_at, created_at, limit_key)
SELECT taken.job_id, %(queue)s, %(job_type)s, %(payload)s, 'pending', %(priority)s, 0,
       %(max_attempts)s, %(tenant_id)s,
       statement_timestamp() + make_interval(secs => %(delay)s), statement_timestamp(),
       coalesce(%(limit_key)s::text, %(tenant_id)s)
FROM taken
RETURNING id

-- name: period_holder
-- The job that holds a period key (no row: none). Params: job_type, key.
SELECT job_id FROM ferroq_unique_keys WHERE job_type = %(job_type)s AND unique_key = %(key)s

-- name: unique_key_of
-- The unique key on the row of a job (NULL: none). Params: id.
SELECT unique_key FROM ferroq_jobs WHERE id = %(id)s

-- name: period_keys_of
-- The period keys a job took, newest first (a scan of the keys table: for `ferroq show`).
-- Params: id.
SELECT unique_key, expires_at FROM ferroq_unique_keys WHERE job_id = %(id)s
ORDER BY expires_at DESC

-- name: period_prune
-- Delete up to 64 keys whose period ended, oldest first, skipping those another dispatch
-- holds; run for one key taken in 16 (storage.unique.PRUNE_EVERY), so expired keys never pile
-- up and no sweep is needed.
DELETE FROM ferroq_unique_keys
WHERE ctid = ANY(ARRAY(SELECT ctid FROM ferroq_unique_keys
                       WHERE expires_at < statement_timestamp()
                       ORDER BY expires_at LIMIT 64 FOR UPDATE SKIP LOCKED))

-- name: notify_queues
-- Wake the workers of these queues when the transaction commits: one round trip whatever the
-- number of queues (Postgres folds a transaction's duplicate notifications). The payload is
-- the queue name, never job data. Params: channel, queues (array).
SELECT pg_notify(%(channel)s, q) FROM unnest(%(queues)s::text[]) AS q


-- ==== the worker ==========================================================================

-- name: claim
-- Claim up to limit due jobs of one queue in claim order (rules.claim_order). Exactly limit
-- rows are locked in a CTE and those updated: UPDATE ... WHERE id IN (SELECT ... LIMIT n) may
-- re-evaluate the subquery and claim more. = ANY(ARRAY(...)), not a join with the CTE: the
-- generic plan guesses a tenth of the table for LIMIT $n and would hash-join a sequential
-- scan; this one is a primary-key lookup whatever the guess. Params: queue, limit, worker,
-- excluded (job types whose jobs only the limited claim takes: those with limits, in a queue
-- that held none of them at the last look; usually empty). Returns the claimed jobs
-- (JOB_COLUMNS; RETURNING has no defined order).
WITH picked AS (
    SELECT id FROM ferroq_jobs
    WHERE status = 'pending' AND queue = %(queue)s AND available_at <= statement_timestamp()
      AND job_type <> ALL(%(excluded)s::text[])
      -- controls (see "controls" below): nothing of a paused queue; while any job type or
      -- tenant is paused or any job has a cancel request, those rows are skipped. The
      -- uncorrelated tests run once per statement (initplans), the per-row ones only then.
      AND NOT EXISTS (SELECT 1 FROM ferroq_pauses WHERE scope = 'queue' AND name = %(queue)s)
      AND (NOT EXISTS (SELECT 1 FROM ferroq_pauses WHERE scope <> 'queue')
           AND NOT EXISTS (SELECT 1 FROM ferroq_cancellations)
           OR NOT EXISTS (SELECT 1 FROM ferroq_pauses AS p
                          WHERE p.scope = 'job_type' AND p.name = ferroq_jobs.job_type
                             OR p.scope = 'tenant' AND p.name = ferroq_jobs.tenant_id)
              AND NOT EXISTS (SELECT 1 FROM ferroq_cancellations AS c
                              WHERE c.job_id = ferroq_jobs.id))
    ORDER BY priority, available_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED)
UPDATE ferroq_jobs
SET status = 'claimed', claimed_by = %(worker)s, claimed_at = statement_timestamp(),
    heartbeat_at = statement_timestamp(), attempts = ferroq_jobs.attempts + 1
WHERE ferroq_jobs.id = ANY(ARRAY(SELECT id FROM picked))
RETURNING ferroq_jobs.id, queue, job_type, payload, status, priority, attempts, max_attempts,
          idempotency_key, tenant_id, available_at, created_at, claimed_at, claimed_by,
          heartbeat_at, error, failed_at, result_ttl, limit_key

-- _fence: the leases come as three parallel arrays through unnest (one text for every batch
-- size; an expanded IN list is a new text per size), in the binary format (psycopg's text
-- dumper runs a regular expression per element). The status is a parameter (claimed =
-- 'claimed'), not a literal: matched to the partial index of claimed rows, the planner,
-- trusting stale statistics of about one claimed row, scanned every claimed row once per
-- lease instead of one primary-key lookup per lease.

-- name: complete
-- Delete succeeded jobs whose lease still matches. Params: lease_ids, lease_owners,
-- lease_attempts (arrays), claimed. Returns the ids deleted.
DELETE FROM ferroq_jobs
USING unnest(%(lease_ids)b::bigint[], %(lease_owners)b::text[], %(lease_attempts)b::integer[])
      AS lease(id, claimed_by, attempts)
WHERE ferroq_jobs.status = %(claimed)s AND ferroq_jobs.id = lease.id
  AND ferroq_jobs.claimed_by = lease.claimed_by AND ferroq_jobs.attempts = lease.attempts
RETURNING ferroq_jobs.id

-- name: heartbeat
-- Extend the leases that still match. Params: complete's. Returns their ids.
UPDATE ferroq_jobs SET heartbeat_at = statement_timestamp()
FROM unnest(%(lease_ids)b::bigint[], %(lease_owners)b::text[], %(lease_attempts)b::integer[])
     AS lease(id, claimed_by, attempts)
WHERE ferroq_jobs.status = %(claimed)s AND ferroq_jobs.id = lease.id
  AND ferroq_jobs.claimed_by = lease.claimed_by AND ferroq_jobs.attempts = lease.attempts
RETURNING ferroq_jobs.id

-- name: requeue
-- Return claimed jobs to pending at once, available_at kept (they were due when claimed, so
-- they keep their place in line); uncount = 1 gives the claim's attempt back. Params:
-- complete's, uncount. Returns the ids that matched.
UPDATE ferroq_jobs
SET status = 'pending', claimed_by = NULL, claimed_at = NULL, heartbeat_at = NULL,
    attempts = ferroq_jobs.attempts - %(uncount)s
FROM unnest(%(lease_ids)b::bigint[], %(lease_owners)b::text[], %(lease_attempts)b::integer[])
     AS lease(id, claimed_by, attempts)
WHERE ferroq_jobs.status = %(claimed)s AND ferroq_jobs.id = lease.id
  AND ferroq_jobs.claimed_by = lease.claimed_by AND ferroq_jobs.attempts = lease.attempts
RETURNING ferroq_jobs.id

-- name: release
-- A lease handed back, due after delay seconds, and (one statement, one round trip) a
-- notification of its queue on commit: due now or later, idle workers look again at when
-- their next job is due. uncount = 1 gives the attempt back. Params: id, owner, attempts,
-- error, delay, uncount, channel. Returns the id if the lease still held.
WITH rel AS (
    UPDATE ferroq_jobs
    SET status = 'pending', claimed_by = NULL, claimed_at = NULL, heartbeat_at = NULL,
        error = %(error)s, available_at = statement_timestamp() + make_interval(secs => %(delay)s),
        attempts = attempts - %(uncount)s
    WHERE status = 'claimed' AND id = %(id)s AND claimed_by = %(owner)s
      AND attempts = %(attempts)s
    RETURNING id, queue)
SELECT rel.id FROM rel, LATERAL pg_notify(%(channel)s, rel.queue)

-- name: fail
-- Park a claimed job as failed and (one statement, one round trip) wake its result waiters on
-- commit: a failure ends a wait as a stored result does (the payload is the id). Params: id,
-- owner, attempts, error, results (the results channel). Returns the id if the lease still
-- held.
WITH parked AS (
    UPDATE ferroq_jobs
    SET status = 'failed', error = %(error)s, failed_at = statement_timestamp(),
        heartbeat_at = NULL
    WHERE status = 'claimed' AND id = %(id)s AND claimed_by = %(owner)s
      AND attempts = %(attempts)s
    RETURNING id)
SELECT parked.id FROM parked, LATERAL pg_notify(%(results)s, parked.id::text)

-- name: reap_requeue
-- Claims whose heartbeat is older than timeout seconds and that have attempts left, back to
-- pending with available_at kept (the job was due: it keeps its place in line). message is
-- rules.lease_expired_error, completed with the holder's id. Params: timeout, message.
-- Returns id, queue.
UPDATE ferroq_jobs
SET status = 'pending', claimed_by = NULL, claimed_at = NULL, heartbeat_at = NULL,
    error = %(message)s || coalesce(claimed_by, '')
WHERE status = 'claimed'
  AND heartbeat_at < statement_timestamp() - make_interval(secs => %(timeout)s)
  AND attempts < max_attempts
RETURNING id, queue

-- name: reap_fail
-- reap_requeue's claims with no attempts left, parked as failed. Params: reap_requeue's.
-- Returns the jobs (JOB_COLUMNS).
UPDATE ferroq_jobs
SET status = 'failed', error = %(message)s || coalesce(claimed_by, ''),
    failed_at = statement_timestamp(), heartbeat_at = NULL
WHERE status = 'claimed'
  AND heartbeat_at < statement_timestamp() - make_interval(secs => %(timeout)s)
  AND attempts >= max_attempts
RETURNING id, queue, job_type, payload, status, priority, attempts, max_attempts,
          idempotency_key, tenant_id, available_at, created_at, claimed_at, claimed_by,
          heartbeat_at, error, failed_at, result_ttl, limit_key

-- name: requeue_worker
-- Every job claimed by one worker back to pending, available_at kept; a job left without
-- attempts stays claimed (the reaper fails it). Params: worker, uncount. Returns id, queue.
UPDATE ferroq_jobs
SET status = 'pending', claimed_by = NULL, claimed_at = NULL, heartbeat_at = NULL,
    attempts = attempts - %(uncount)s
WHERE status = 'claimed' AND claimed_by = %(worker)s AND attempts - %(uncount)s < max_attempts
RETURNING id, queue

-- name: orphan_share
-- Give an attempt back to each claim of the dead worker when it held more than one: its crash
-- cannot be pinned on one of them (rules.dead_worker_error). Only for a worker known to be
-- dead: it writes nothing more, so no late write can match the next claim's attempts. First
-- of reap_worker's statements. Params: worker.
UPDATE ferroq_jobs SET attempts = attempts - 1
WHERE status = 'claimed' AND claimed_by = %(worker)s
  AND (SELECT count(*) FROM ferroq_jobs WHERE status = 'claimed' AND claimed_by = %(worker)s) > 1

-- name: orphan_requeue
-- The dead worker's claims with attempts left back to pending, available_at kept; the error
-- is message followed by the worker's id. Params: worker, message. Returns id, queue.
UPDATE ferroq_jobs
SET status = 'pending', claimed_by = NULL, claimed_at = NULL, heartbeat_at = NULL,
    error = %(message)s || claimed_by
WHERE status = 'claimed' AND claimed_by = %(worker)s AND attempts < max_attempts
RETURNING id, queue

-- name: orphan_fail
-- The dead worker's claims left after orphan_requeue (no attempts left), parked as failed.
-- Params: orphan_requeue's. Returns the jobs (JOB_COLUMNS).
UPDATE ferroq_jobs
SET status = 'failed', error = %(message)s || claimed_by,
    failed_at = statement_timestamp(), heartbeat_at = NULL
WHERE status = 'claimed' AND claimed_by = %(worker)s
RETURNING id, queue, job_type, payload, status, priority, attempts, max_attempts,
          idempotency_key, tenant_id, available_at, created_at, claimed_at, claimed_by,
          heartbeat_at, error, failed_at, result_ttl, limit_key

-- name: claimed_by_host
-- Worker ids that hold claims and match a LIKE pattern (rules.host_like_pattern). Params:
-- pattern.
SELECT DISTINCT claimed_by FROM ferroq_jobs
WHERE status = 'claimed' AND claimed_by LIKE %(pattern)s ESCAPE '\'

-- name: due_in
-- Seconds until the earliest pending job of one queue is due (negative: overdue; NULL: none
-- pending). min(available_at) would read every pending row (the claim index orders by
-- priority first and Postgres before 18 does not skip through it); this steps from one
-- distinct priority to the next, one index probe each, and takes the first available_at
-- within each: a probe per priority in use, whatever the number of rows. Params: queue.
WITH RECURSIVE levels(priority) AS (
    SELECT (SELECT priority FROM ferroq_jobs
            WHERE status = 'pending' AND queue = %(queue)s
            ORDER BY priority LIMIT 1)
    UNION ALL
    SELECT (SELECT priority FROM ferroq_jobs
            WHERE status = 'pending' AND queue = %(queue)s AND priority > levels.priority
            ORDER BY priority LIMIT 1)
    FROM levels WHERE levels.priority IS NOT NULL)
SELECT extract(epoch FROM min((SELECT available_at FROM ferroq_jobs
                               WHERE status = 'pending' AND queue = %(queue)s
                                 AND priority = levels.priority
                                 -- the claim's controls: what it would skip is not waited for
                                 AND (NOT EXISTS (SELECT 1 FROM ferroq_pauses
                                                  WHERE scope <> 'queue')
                                      AND NOT EXISTS (SELECT 1 FROM ferroq_cancellations)
                                      OR NOT EXISTS (SELECT 1 FROM ferroq_pauses AS p
                                                     WHERE p.scope = 'job_type'
                                                       AND p.name = ferroq_jobs.job_type
                                                        OR p.scope = 'tenant'
                                                       AND p.name = ferroq_jobs.tenant_id)
                                         AND NOT EXISTS (SELECT 1 FROM ferroq_cancellations AS c
                                                         WHERE c.job_id = ferroq_jobs.id))
                               ORDER BY available_at LIMIT 1)) - statement_timestamp())
FROM levels WHERE levels.priority IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM ferroq_pauses WHERE scope = 'queue' AND name = %(queue)s)


-- ==== admin ===============================================================================
-- Optional filters are nullable parameters: (%(x)s::type IS NULL OR column = %(x)s). These
-- run unprepared (planned with their values), so a filter left out costs nothing. A state
-- is status plus due: pending = ('pending', true), delayed = ('pending', false).

-- name: get_job
-- One job by id. Params: id.
SELECT id, queue, job_type, payload, status, priority, attempts, max_attempts,
       idempotency_key, tenant_id, available_at, created_at, claimed_at, claimed_by,
       heartbeat_at, error, failed_at, result_ttl, limit_key
FROM ferroq_jobs WHERE id = %(id)s

-- name: list_jobs
-- Jobs in claim order (any state, pending or delayed). Params: status, due, queue, job_type,
-- tenant_id, limit_key (each nullable), limit, offset.
SELECT id, queue, job_type, payload, status, priority, attempts, max_attempts,
       idempotency_key, tenant_id, available_at, created_at, claimed_at, claimed_by,
       heartbeat_at, error, failed_at, result_ttl, limit_key
FROM ferroq_jobs
WHERE (%(status)s::text IS NULL OR status = %(status)s)
  AND (%(due)s::boolean IS NULL OR (available_at <= statement_timestamp()) = %(due)s)
  AND (%(queue)s::text IS NULL OR queue = %(queue)s)
  AND (%(job_type)s::text IS NULL OR job_type = %(job_type)s)
  AND (%(tenant_id)s::text IS NULL OR tenant_id = %(tenant_id)s)
  AND (%(limit_key)s::text IS NULL OR limit_key = %(limit_key)s)
ORDER BY priority, available_at, id
LIMIT %(limit)s OFFSET %(offset)s

-- name: list_claimed_jobs
-- Claimed jobs, oldest claim first. Params: queue, job_type, tenant_id, limit_key (each
-- nullable), limit, offset.
SELECT id, queue, job_type, payload, status, priority, attempts, max_attempts,
       idempotency_key, tenant_id, available_at, created_at, claimed_at, claimed_by,
       heartbeat_at, error, failed_at, result_ttl, limit_key
FROM ferroq_jobs
WHERE status = 'claimed'
  AND (%(queue)s::text IS NULL OR queue = %(queue)s)
  AND (%(job_type)s::text IS NULL OR job_type = %(job_type)s)
  AND (%(tenant_id)s::text IS NULL OR tenant_id = %(tenant_id)s)
  AND (%(limit_key)s::text IS NULL OR limit_key = %(limit_key)s)
ORDER BY claimed_at, id
LIMIT %(limit)s OFFSET %(offset)s

-- name: list_failed_jobs
-- Failed jobs, newest first. Params: list_claimed_jobs'.
SELECT id, queue, job_type, payload, status, priority, attempts, max_attempts,
       idempotency_key, tenant_id, available_at, created_at, claimed_at, claimed_by,
       heartbeat_at, error, failed_at, result_ttl, limit_key
FROM ferroq_jobs
WHERE status = 'failed'
  AND (%(queue)s::text IS NULL OR queue = %(queue)s)
  AND (%(job_type)s::text IS NULL OR job_type = %(job_type)s)
  AND (%(tenant_id)s::text IS NULL OR tenant_id = %(tenant_id)s)
  AND (%(limit_key)s::text IS NULL OR limit_key = %(limit_key)s)
ORDER BY failed_at DESC, id DESC
LIMIT %(limit)s OFFSET %(offset)s

-- name: queue_stats
-- Counts per queue, the oldest due pending job's available_at and the clock, one scan.
-- Returns queue, pending, delayed, claimed, failed, oldest, now.
SELECT queue,
       count(*) FILTER (WHERE status = 'pending' AND available_at <= statement_timestamp()),
       count(*) FILTER (WHERE status = 'pending' AND available_at > statement_timestamp()),
       count(*) FILTER (WHERE status = 'claimed'),
       count(*) FILTER (WHERE status = 'failed'),
       min(available_at) FILTER (WHERE status = 'pending'
                                   AND available_at <= statement_timestamp()),
       statement_timestamp()
FROM ferroq_jobs
GROUP BY queue
ORDER BY queue

-- name: retry_failed
-- Failed jobs back to pending and due now, attempts reset (tenant and payload kept); one whose
-- idempotency key another active job holds stays failed. Params: ids (array), queue, job_type
-- (each nullable). Returns queue per moved job.
UPDATE ferroq_jobs
SET status = 'pending', attempts = 0, available_at = statement_timestamp(), claimed_by = NULL,
    claimed_at = NULL, heartbeat_at = NULL, failed_at = NULL
WHERE status = 'failed'
  AND (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s::bigint[]))
  AND (%(queue)s::text IS NULL OR queue = %(queue)s)
  AND (%(job_type)s::text IS NULL OR job_type = %(job_type)s)
  AND (idempotency_key IS NULL OR NOT EXISTS (
        SELECT 1 FROM ferroq_jobs AS other
        WHERE other.job_type = ferroq_jobs.job_type
          AND other.idempotency_key = ferroq_jobs.idempotency_key
          AND other.status IN ('pending', 'claimed')))
RETURNING queue

-- name: delete_jobs
-- Jobs by id, only in a state when one is given. Params: ids (array), status, due (nullable).
DELETE FROM ferroq_jobs
WHERE id = ANY(%(ids)s::bigint[])
  AND (%(status)s::text IS NULL OR status = %(status)s)
  AND (%(due)s::boolean IS NULL OR (available_at <= statement_timestamp()) = %(due)s)

-- name: flush_failed
-- Failed jobs, only those failed more than older_than seconds ago when given. Params:
-- older_than (nullable).
DELETE FROM ferroq_jobs
WHERE status = 'failed'
  AND (%(older_than)s::float8 IS NULL
       OR failed_at < statement_timestamp() - make_interval(secs => %(older_than)s::float8))

-- name: clear_queue
-- The pending (and delayed) jobs of a queue. Params: queue.
DELETE FROM ferroq_jobs WHERE status = 'pending' AND queue = %(queue)s

-- name: worker_heartbeats
-- The latest heartbeat of every worker holding claims.
SELECT claimed_by, max(heartbeat_at) FROM ferroq_jobs WHERE status = 'claimed'
GROUP BY claimed_by

-- name: make_due
-- The testing kit's clock jump: delayed pending jobs due now, those of queues (nullable: every
-- queue) due within within seconds (nullable: any). Params: queues (array), within.
-- Returns queue per moved job.
UPDATE ferroq_jobs SET available_at = statement_timestamp()
WHERE status = 'pending' AND available_at > statement_timestamp()
  AND (%(queues)s::text[] IS NULL OR queue = ANY(%(queues)s::text[]))
  AND (%(within)s::float8 IS NULL
       OR available_at <= statement_timestamp() + make_interval(secs => %(within)s::float8))
RETURNING queue


-- ==== controls ============================================================================
-- Pauses and cancel requests (ferroq_core.tables.controls). The claim and due_in above skip
-- what they cover; heartbeat_cancels carries cancel requests back in the heartbeat.

-- name: pause
-- Record a pause; returns it when it is new. Params: scope, name, reason.
INSERT INTO ferroq_pauses (scope, name, paused_at, reason)
VALUES (%(scope)s, %(name)s, statement_timestamp(), %(reason)s)
ON CONFLICT (scope, name) DO NOTHING
RETURNING scope, name, paused_at, reason

-- name: resume
-- Remove a pause; returns it when there was one. Params: scope, name.
DELETE FROM ferroq_pauses WHERE scope = %(scope)s AND name = %(name)s
RETURNING scope, name, paused_at, reason

-- name: notify_resumed
-- Wake the workers a pause held back, on commit: the queue itself, or every queue with pending
-- jobs of the job type or tenant. Params: channel, scope, name.
SELECT pg_notify(%(channel)s, q.queue)
FROM (SELECT %(name)s::text AS queue WHERE %(scope)s::text = 'queue'
      UNION
      SELECT DISTINCT queue FROM ferroq_jobs
      WHERE status = 'pending'
        AND (%(scope)s::text = 'job_type' AND job_type = %(name)s::text
             OR %(scope)s::text = 'tenant' AND tenant_id = %(name)s::text)) AS q

-- name: list_pauses
-- Every pause in force.
SELECT scope, name, paused_at, reason FROM ferroq_pauses ORDER BY scope, name

-- name: cancel_pending
-- Delete the pending (due and delayed) jobs among ids of queue and job_type (each nullable:
-- any). Params: ids (array), queue, job_type. Returns the rows (JOB_COLUMNS).
DELETE FROM ferroq_jobs
WHERE status = 'pending'
  AND (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s::bigint[]))
  AND (%(queue)s::text IS NULL OR queue = %(queue)s)
  AND (%(job_type)s::text IS NULL OR job_type = %(job_type)s)
RETURNING id, queue, job_type, payload, status, priority, attempts, max_attempts,
          idempotency_key, tenant_id, available_at, created_at, claimed_at, claimed_by,
          heartbeat_at, error, failed_at, result_ttl, limit_key

-- name: cancel_running
-- After cancel_pending, in its transaction (a statement of its own: it sees the claims that
-- committed while cancel_pending waited for their rows): a cancel request for each claimed
-- job of the same filters, and for one given back to pending meanwhile (the claim skips it,
-- the sweep removes it); an earlier request is kept. Params: cancel_pending's. Returns the ids.
INSERT INTO ferroq_cancellations (job_id, requested_at)
SELECT id, statement_timestamp() FROM ferroq_jobs
WHERE status IN ('pending', 'claimed')
  AND (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s::bigint[]))
  AND (%(queue)s::text IS NULL OR queue = %(queue)s)
  AND (%(job_type)s::text IS NULL OR job_type = %(job_type)s)
ON CONFLICT (job_id) DO UPDATE SET requested_at = ferroq_cancellations.requested_at
RETURNING job_id

-- name: heartbeat_cancels
-- heartbeat, returning with each id held whether its job has a cancel request. Params:
-- heartbeat's.
UPDATE ferroq_jobs SET heartbeat_at = statement_timestamp()
FROM unnest(%(lease_ids)b::bigint[], %(lease_owners)b::text[], %(lease_attempts)b::integer[])
     AS lease(id, claimed_by, attempts)
WHERE ferroq_jobs.status = %(claimed)s AND ferroq_jobs.id = lease.id
  AND ferroq_jobs.claimed_by = lease.claimed_by AND ferroq_jobs.attempts = lease.attempts
RETURNING ferroq_jobs.id,
          EXISTS (SELECT 1 FROM ferroq_cancellations AS c WHERE c.job_id = ferroq_jobs.id)

-- name: finish_cancelled
-- Delete a claimed job that stopped for its cancel request, and the request, and wake its
-- result waiters on commit (see fail). Params: id, owner, attempts, results (the results
-- channel). Returns the id if the lease still held.
WITH gone AS (
    DELETE FROM ferroq_jobs
    WHERE status = 'claimed' AND id = %(id)s AND claimed_by = %(owner)s
      AND attempts = %(attempts)s
    RETURNING id),
dropped AS (
    DELETE FROM ferroq_cancellations WHERE job_id IN (SELECT id FROM gone))
SELECT gone.id FROM gone, LATERAL pg_notify(%(results)s, gone.id::text)

-- name: sweep_cancelled
-- Delete the jobs that have a cancel request and are pending (given back before their worker
-- acted on it) or claimed by one of the dead workers in holders (array; their claims are
-- about to be taken back). Returns the rows (JOB_COLUMNS).
DELETE FROM ferroq_jobs
WHERE (status = 'pending' OR status = 'claimed' AND claimed_by = ANY(%(holders)s::text[]))
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


-- ==== maintenance =========================================================================

-- name: vacuum_lock
-- Keeps the workers' own vacuum to one process at a time: a session-level advisory lock (any
-- constant, the same in every ferroq process and not the migration's). Returns whether taken.
SELECT pg_try_advisory_lock(7203391852)

-- name: vacuum_unlock
SELECT pg_advisory_unlock(7203391852)

-- name: vacuum
-- Outside a transaction (VACUUM refuses to run in one).
VACUUM ferroq_jobs

-- name: vacuum_skip_locked
-- Behind a pooler in transaction mode, where a session-level lock would stay on whichever
-- server connection took it: one statement that skips the table (with a WARNING) when another
-- vacuum of it, ours or autovacuum's, already holds its lock.
VACUUM (SKIP_LOCKED) ferroq_jobs


-- ==== results (ferroq_core.storage.results) ===============================================
-- name: complete_with_results
-- complete for jobs whose results are stored: one statement deletes the jobs whose lease
-- still matches and stores exactly their results (a lost lease stores nothing), and notifies
-- result waiters of each id on channel. Params: complete's, result_values (text[]),
-- result_ttls (seconds, float8[]), in the leases' order, channel. Returns the ids stored.
WITH done AS (
    DELETE FROM ferroq_jobs
    USING unnest(%(lease_ids)b::bigint[], %(lease_owners)b::text[],
                 %(lease_attempts)b::integer[], %(result_values)b::text[],
                 %(result_ttls)b::float8[]) AS lease(id, claimed_by, attempts, value, ttl)
    WHERE ferroq_jobs.status = %(claimed)s AND ferroq_jobs.id = lease.id
      AND ferroq_jobs.claimed_by = lease.claimed_by AND ferroq_jobs.attempts = lease.attempts
    RETURNING ferroq_jobs.id, ferroq_jobs.job_type, lease.value, lease.ttl),
stored AS (
    INSERT INTO ferroq_results (job_id, job_type, value, created_at, expires_at)
    SELECT id, job_type, value, statement_timestamp(),
           statement_timestamp() + make_interval(secs => ttl)
    FROM done
    -- Ids are never reused; an operator who restarted the sequence gets the new result.
    ON CONFLICT (job_id) DO UPDATE SET job_type = EXCLUDED.job_type, value = EXCLUDED.value,
        created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
    RETURNING job_id)
SELECT stored.job_id FROM stored, LATERAL pg_notify(%(channel)s, stored.job_id::text)

-- name: complete_with_results_and_history
-- complete_with_results for a batch where some jobs also keep history: the same fenced
-- DELETE ... RETURNING feeds the results' INSERT and, for the jobs whose lease_history is
-- true, the history records' INSERT (complete_with_history's columns), one statement: a
-- lost lease writes neither. Params: complete_with_results', lease_history (bool[]) and
-- lease_durations (float8[]), in the leases' order. Returns the ids stored.
WITH done AS (
    DELETE FROM ferroq_jobs
    USING unnest(%(lease_ids)b::bigint[], %(lease_owners)b::text[],
                 %(lease_attempts)b::integer[], %(result_values)b::text[],
                 %(result_ttls)b::float8[], %(lease_history)b::boolean[],
                 %(lease_durations)b::float8[])
          AS lease(id, claimed_by, attempts, value, ttl, history, duration)
    WHERE ferroq_jobs.status = %(claimed)s AND ferroq_jobs.id = lease.id
      AND ferroq_jobs.claimed_by = lease.claimed_by AND ferroq_jobs.attempts = lease.attempts
    RETURNING ferroq_jobs.id, ferroq_jobs.queue, ferroq_jobs.job_type, ferroq_jobs.tenant_id,
              ferroq_jobs.priority, ferroq_jobs.attempts, ferroq_jobs.max_attempts,
              ferroq_jobs.created_at, ferroq_jobs.claimed_at, ferroq_jobs.claimed_by,
              lease.value, lease.ttl, lease.history, lease.duration),
recorded AS (
    INSERT INTO ferroq_job_history (job_id, queue, job_type, tenant_id, priority, attempts,
                                    max_attempts, created_at, claimed_at, finished_at,
                                    duration, worker)
    SELECT id, queue, job_type, tenant_id, priority, attempts, max_attempts, created_at,
           claimed_at, statement_timestamp(), duration, claimed_by
    FROM done WHERE history
    ON CONFLICT (job_id) DO NOTHING),
stored AS (
    INSERT INTO ferroq_results (job_id, job_type, value, created_at, expires_at)
    SELECT id, job_type, value, statement_timestamp(),
           statement_timestamp() + make_interval(secs => ttl)
    FROM done
    ON CONFLICT (job_id) DO UPDATE SET job_type = EXCLUDED.job_type, value = EXCLUDED.value,
        created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
    RETURNING job_id)
SELECT stored.job_id FROM stored, LATERAL pg_notify(%(channel)s, stored.job_id::text)

-- name: notify_results
-- Wake the result waiters of jobs that ended without a result (parked failed by the reaper
-- or a dead worker's take-back, removed as cancelled) when the transaction commits, in the
-- transaction that ended them. Params: channel, ids (array).
SELECT pg_notify(%(channel)s, id::text) FROM unnest(%(ids)s::bigint[]) AS id

-- name: result_state
-- One job id's unexpired result and its row's status and error, in one snapshot. Params: id.
SELECT r.job_id, r.job_type, r.value, r.created_at, r.expires_at, j.status, j.error
FROM (SELECT %(id)s::bigint AS id) AS k
LEFT JOIN ferroq_results AS r ON r.job_id = k.id AND r.expires_at > statement_timestamp()
LEFT JOIN ferroq_jobs AS j ON j.id = k.id

-- name: prune_results
-- Delete up to limit (NULL: every) expired results, oldest first; workers pruning at once
-- skip each other's rows. Params: limit. Returns one row per result deleted.
DELETE FROM ferroq_results
WHERE job_id IN (SELECT job_id FROM ferroq_results WHERE expires_at <= statement_timestamp()
                 ORDER BY expires_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
RETURNING 1
-- ==== schedules (periodic jobs) ===========================================================
-- Rows in ferroq_core.storage.schedules.SCHEDULE_COLUMNS order.

-- name: schedule_due_in
-- Seconds on the database clock until the earliest next run of the active schedules (NULL
-- when none): one probe of ferroq_schedules_due.
SELECT extract(epoch FROM min(next_run_at) - statement_timestamp())
FROM ferroq_schedules WHERE paused = 0

-- name: schedules_due
-- Active schedules due at now, the earliest first. Params: now, limit.
SELECT name, job_type, payload, queue, priority, max_attempts, cron, timezone, catch_up,
       catch_up_window, source, paused, next_run_at, last_run_at, last_job_id, revision,
       updated_at, limit_key
FROM ferroq_schedules
WHERE paused = 0 AND next_run_at <= %(now)s
ORDER BY next_run_at
LIMIT %(limit)s

-- name: schedule_advance
-- A worker's compare-and-set: move the next run on only while the row is as it read it (a
-- second worker waits for the first's row lock, then finds next_run_at changed). Params:
-- new_next_run_at, last_run_at (NULL: keep), name, revision, next_run_at.
UPDATE ferroq_schedules
SET next_run_at = %(new_next_run_at)s,
    last_run_at = coalesce(%(last_run_at)s::timestamptz, last_run_at)
WHERE name = %(name)s AND revision = %(revision)s AND next_run_at = %(next_run_at)s
  AND paused = 0
RETURNING name

-- name: schedule_last_job
-- Record the job of the last run. Params: name, job_id, at.
UPDATE ferroq_schedules SET last_job_id = %(job_id)s, last_run_at = %(at)s
WHERE name = %(name)s

-- name: schedule_get
-- One schedule by name (locked when in a transaction: save_schedule compares, then writes).
SELECT name, job_type, payload, queue, priority, max_attempts, cron, timezone, catch_up,
       catch_up_window, source, paused, next_run_at, last_run_at, last_job_id, revision,
       updated_at, limit_key
FROM ferroq_schedules WHERE name = %(name)s
FOR UPDATE

-- name: schedules_all
-- Every schedule, by name.
SELECT name, job_type, payload, queue, priority, max_attempts, cron, timezone, catch_up,
       catch_up_window, source, paused, next_run_at, last_run_at, last_job_id, revision,
       updated_at, limit_key
FROM ferroq_schedules ORDER BY name

-- name: schedule_insert
-- A new schedule (active); no row when one of that name appeared meanwhile. Params: the
-- definition, next_run_at.
INSERT INTO ferroq_schedules (name, job_type, payload, queue, priority, max_attempts, cron,
                              timezone, catch_up, catch_up_window, source, limit_key,
                              paused, next_run_at, revision, created_at, updated_at)
VALUES (%(name)s, %(job_type)s, %(payload)s, %(queue)s, %(priority)s, %(max_attempts)s,
        %(cron)s, %(timezone)s, %(catch_up)s, %(catch_up_window)s, %(source)s, %(limit_key)s,
        0, %(next_run_at)s, 1, statement_timestamp(), statement_timestamp())
ON CONFLICT (name) DO NOTHING
RETURNING name

-- name: schedule_replace
-- A new definition for an existing schedule: revision + 1; the next run is next_run_at
-- unless the schedule is paused. Params: the definition, next_run_at.
UPDATE ferroq_schedules
SET job_type = %(job_type)s, payload = %(payload)s, queue = %(queue)s,
    priority = %(priority)s, max_attempts = %(max_attempts)s, cron = %(cron)s,
    timezone = %(timezone)s, catch_up = %(catch_up)s, catch_up_window = %(catch_up_window)s,
    source = %(source)s, limit_key = %(limit_key)s,
    next_run_at = CASE WHEN paused = 1 THEN NULL ELSE %(next_run_at)s::timestamptz END,
    revision = revision + 1, updated_at = statement_timestamp()
WHERE name = %(name)s

-- name: schedule_pause
-- Pause (paused = 1, next run NULL) or resume (paused = 0, next run next_run_at) a schedule
-- that is not in that state already. Params: name, paused, next_run_at.
UPDATE ferroq_schedules
SET paused = %(paused)s, next_run_at = %(next_run_at)s, revision = revision + 1,
    updated_at = statement_timestamp()
WHERE name = %(name)s AND paused <> %(paused)s

-- name: schedule_exists
-- One row when a schedule named name exists. Params: name.
SELECT 1 FROM ferroq_schedules WHERE name = %(name)s

-- name: schedule_delete
-- Delete a schedule. Params: name.
DELETE FROM ferroq_schedules WHERE name = %(name)s RETURNING name
-- =============================================================================================
-- History, attempt errors, progress (ferroq_core.storage.history; the attempt errors are
-- written by the trigger of ferroq_core.tables.history)
-- =============================================================================================

-- name: complete_with_history
-- complete, and a history record of each job deleted, in one statement. Params: complete's,
-- lease_durations (seconds the handler ran, parallel to the lease arrays). Returns the ids
-- deleted.
WITH done AS (
    DELETE FROM ferroq_jobs
    USING unnest(%(lease_ids)b::bigint[], %(lease_owners)b::text[],
                 %(lease_attempts)b::integer[], %(lease_durations)b::float8[])
          AS lease(id, claimed_by, attempts, duration)
    WHERE ferroq_jobs.status = %(claimed)s AND ferroq_jobs.id = lease.id
      AND ferroq_jobs.claimed_by = lease.claimed_by AND ferroq_jobs.attempts = lease.attempts
    RETURNING ferroq_jobs.id, ferroq_jobs.queue, ferroq_jobs.job_type, ferroq_jobs.tenant_id,
              ferroq_jobs.priority, ferroq_jobs.attempts, ferroq_jobs.max_attempts,
              ferroq_jobs.created_at, ferroq_jobs.claimed_at, ferroq_jobs.claimed_by,
              lease.duration
), recorded AS (
    INSERT INTO ferroq_job_history (job_id, queue, job_type, tenant_id, priority, attempts,
                                    max_attempts, created_at, claimed_at, finished_at,
                                    duration, worker)
    SELECT id, queue, job_type, tenant_id, priority, attempts, max_attempts, created_at,
           claimed_at, statement_timestamp(), duration, claimed_by
    FROM done
    ON CONFLICT (job_id) DO NOTHING
)
SELECT id FROM done

-- name: write_progress
-- Jobs' latest progress. Params: job_ids, fractions, messages (parallel arrays).
INSERT INTO ferroq_job_progress (job_id, fraction, message, updated_at)
SELECT job_id, fraction, message, statement_timestamp()
FROM unnest(%(job_ids)s::bigint[], %(fractions)s::float8[], %(messages)s::text[])
     AS p(job_id, fraction, message)
ON CONFLICT (job_id) DO UPDATE
SET fraction = excluded.fraction, message = excluded.message, updated_at = excluded.updated_at

-- name: get_progress
-- The progress of the jobs in ids.
SELECT job_id, fraction, message, updated_at FROM ferroq_job_progress
WHERE job_id = ANY(%(ids)s::bigint[])

-- name: get_history
-- One history record by job id.
SELECT job_id, queue, job_type, tenant_id, priority, attempts, max_attempts, created_at,
       claimed_at, finished_at, duration, worker
FROM ferroq_job_history WHERE job_id = %(job_id)s

-- name: list_history
-- History records newest first; queue, job_type, tenant_id may be NULL (no filter).
SELECT job_id, queue, job_type, tenant_id, priority, attempts, max_attempts, created_at,
       claimed_at, finished_at, duration, worker
FROM ferroq_job_history
WHERE (%(queue)s::text IS NULL OR queue = %(queue)s)
  AND (%(job_type)s::text IS NULL OR job_type = %(job_type)s)
  AND (%(tenant_id)s::text IS NULL OR tenant_id = %(tenant_id)s)
ORDER BY finished_at DESC, job_id DESC
LIMIT %(limit)s OFFSET %(offset)s

-- name: attempt_errors
-- The failed attempts of one job, oldest first.
SELECT job_id, attempt, error, worker, failed_at FROM ferroq_job_errors
WHERE job_id = %(job_id)s ORDER BY id

-- name: prune_history
-- Up to limit history records finished more than older_than seconds ago.
DELETE FROM ferroq_job_history
WHERE job_id IN (SELECT job_id FROM ferroq_job_history
                 WHERE finished_at < statement_timestamp() - make_interval(secs => %(older_than)s)
                 ORDER BY finished_at LIMIT %(limit)s)

-- name: prune_errors
-- Up to limit attempt errors older than older_than seconds whose job no longer exists.
DELETE FROM ferroq_job_errors
WHERE id IN (SELECT e.id FROM ferroq_job_errors AS e
             WHERE e.failed_at < statement_timestamp() - make_interval(secs => %(older_than)s)
               AND NOT EXISTS (SELECT 1 FROM ferroq_jobs AS j WHERE j.id = e.job_id)
             ORDER BY e.failed_at LIMIT %(limit)s)

-- name: prune_progress
-- Up to limit progress rows older than older_than seconds whose job is not running.
DELETE FROM ferroq_job_progress
WHERE job_id IN (SELECT p.job_id FROM ferroq_job_progress AS p
                 WHERE p.updated_at < statement_timestamp() - make_interval(secs => %(older_than)s)
                   AND NOT EXISTS (SELECT 1 FROM ferroq_jobs AS j
                                   WHERE j.id = p.job_id AND j.status = 'claimed')
                 ORDER BY p.updated_at LIMIT %(limit)s)
-- ==== worker registry and signals (ferroq_postgres/workers.py) ===========================

-- name: register_worker
-- Write a worker's row, replacing one with its id; started_at NULL means now. Params: id,
-- role, host, pid, queues (JSON array text), concurrency, visibility_timeout, version,
-- supervisor, started_at. Returns the start time stored.
INSERT INTO ferroq_workers (id, role, host, pid, queues, concurrency, visibility_timeout,
                            version, supervisor, started_at, heartbeat_at)
VALUES (%(id)s, %(role)s, %(host)s, %(pid)s, %(queues)s, %(concurrency)s,
        %(visibility_timeout)s, %(version)s, %(supervisor)s,
        coalesce(%(started_at)s::timestamptz, statement_timestamp()), statement_timestamp())
ON CONFLICT (id) DO UPDATE SET
    role = excluded.role, host = excluded.host, pid = excluded.pid, queues = excluded.queues,
    concurrency = excluded.concurrency, visibility_timeout = excluded.visibility_timeout,
    version = excluded.version, supervisor = excluded.supervisor,
    started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at
RETURNING started_at

-- name: beat_worker
-- A worker's heartbeat, and the restart signal read back in the same statement. Params: id.
-- Returns (whether the row was there, the restart time or NULL).
WITH beat AS (
    UPDATE ferroq_workers SET heartbeat_at = statement_timestamp() WHERE id = %(id)s
    RETURNING id
)
SELECT EXISTS (SELECT 1 FROM beat),
       (SELECT sent_at FROM ferroq_worker_signals WHERE name = 'restart')

-- name: deregister_worker
-- Remove a worker's row. Params: id. Returns its id.
DELETE FROM ferroq_workers WHERE id = %(id)s RETURNING id

-- name: live_workers
-- Workers whose heartbeat is within their own visibility timeout.
SELECT id, role, host, pid, queues, concurrency, visibility_timeout, version, supervisor,
       started_at, heartbeat_at
FROM ferroq_workers
WHERE heartbeat_at >= statement_timestamp() - visibility_timeout * interval '1 second'
ORDER BY host, started_at, id

-- name: registered_beats
-- Every registered worker (dead ones too, until reaped) and its last heartbeat.
SELECT id, heartbeat_at FROM ferroq_workers

-- name: reap_workers
-- Remove the workers silent for longer than their own visibility timeout.
DELETE FROM ferroq_workers
WHERE heartbeat_at < statement_timestamp() - visibility_timeout * interval '1 second'
RETURNING id, role, host, pid, queues, concurrency, visibility_timeout, version, supervisor,
          started_at, heartbeat_at

-- name: held_jobs
-- Every claimed job's id, type, queue, holder and claim time (the listing of workers).
SELECT id, job_type, queue, claimed_by, claimed_at FROM ferroq_jobs
WHERE status = 'claimed'
ORDER BY id

-- name: send_signal
-- Set the signal name (restart) to now. Params: name. Returns the time set.
INSERT INTO ferroq_worker_signals (name, sent_at) VALUES (%(name)s, statement_timestamp())
ON CONFLICT (name) DO UPDATE SET sent_at = excluded.sent_at
RETURNING sent_at

-- name: read_signal
-- When the signal name was last sent (no row: never). Params: name.
SELECT sent_at FROM ferroq_worker_signals WHERE name = %(name)s
-- ==== flow control: limits (ferroq_core.storage.flow) ======================================
-- The limited claim is a transaction of the statements below, serialized with every other
-- limited claim by limits_lock; the plain claim above stays as it is for queues without limits.

-- name: limits_scopes
-- The scope and name of every limit (a worker looks every few seconds).
SELECT scope, name FROM ferroq_limits

-- name: limits_typed_queues
-- Which of these queues hold pending jobs of these (limited) job types: one probe of
-- ferroq_jobs_groups per queue and type. Params: queues, types (arrays). Returns queue.
SELECT q FROM unnest(%(queues)s::text[]) AS q
WHERE EXISTS (SELECT 1 FROM ferroq_jobs
              WHERE status = 'pending' AND queue = q AND job_type = ANY(%(types)s::text[]))

-- name: limits_lock
-- The start of a limited claim: the limited claims' lock, held until the transaction ends
-- (any constant, the same in every ferroq process, not the migration's or the vacuum's), and
-- every limit (read in the same round trip; a limit may be a claim late). It also turns sorts
-- off for the rest of the transaction (SET LOCAL): every read of the limited claim has an index
-- in its order, but on statistics older than a bulk dispatch (until autovacuum analyzes) the
-- planner sorted the whole queue for each group's first row (100 groups of 20,000 jobs: 0.7 s
-- a claim instead of 4 ms); and JIT, which the recursive group scan's estimates set off at
-- 20 ms a claim. The group reads order by the whole ferroq_jobs_groups key (job_type and
-- limit_key are fixed by their WHERE): that order pins them to that index, where the claim's
-- index plus a filter looked as cheap to the planner and read the whole queue. Returns scope,
-- name, per_tenant, concurrency, rate, per, fair (NULLs when there is none).
SELECT l.scope, l.name, l.per_tenant, l.concurrency, l.rate, l.per, l.fair
FROM (SELECT pg_advisory_xact_lock(7203391853), set_config('enable_sort', 'off', true),
             set_config('jit', 'off', true), set_config('enable_bitmapscan', 'off', true)) AS lock
LEFT JOIN ferroq_limits AS l ON true

-- name: limits_all
-- Every limit. Returns scope, name, per_tenant, concurrency, rate, per, fair.
SELECT scope, name, per_tenant, concurrency, rate, per, fair FROM ferroq_limits
ORDER BY scope, name

-- name: limits_look
-- After the lock (a statement of its own: its snapshot must see every claim committed before
-- the lock was granted; pipelined with it, one round trip for both): the live leases per group
-- ('r': claimed rows, a killed worker's until its lease is reaped), the starts inside their
-- windows ('s', a small table)
-- and the first n due pending jobs of one queue in claim order ('h'). Params: queue, n.
-- Returns kind, a, b, c, n, priority, available_at, frees_in: 'r' queue, job_type, limit_key,
-- count; 's' scope, name, key, count, frees_in; 'h' -, job_type, limit_key, id, priority,
-- available_at.
SELECT 'r', queue, job_type, limit_key, count(*), NULL::int, NULL::timestamptz, NULL::float8
FROM ferroq_jobs WHERE status = 'claimed'
GROUP BY queue, job_type, limit_key
UNION ALL
SELECT 's', scope, name, key, count(*), NULL, NULL,
       extract(epoch FROM min(expires_at) - statement_timestamp())::float8
FROM ferroq_limit_starts WHERE expires_at > statement_timestamp()
GROUP BY scope, name, key
UNION ALL
(SELECT 'h', NULL, job_type, limit_key, id, priority, available_at, NULL FROM ferroq_jobs
 WHERE status = 'pending' AND queue = %(queue)s AND available_at <= statement_timestamp()
 ORDER BY priority, available_at, id
 LIMIT %(n)s)

-- name: limits_running
-- The live leases per group (ferroq limits). Returns queue, job_type, limit_key, count.
SELECT queue, job_type, limit_key, count(*) FROM ferroq_jobs WHERE status = 'claimed'
GROUP BY queue, job_type, limit_key

-- name: limit_starts_window
-- Starts inside their window per counter, and seconds until the oldest leaves it (ferroq
-- limits). Returns scope, name, key, count, frees_in.
SELECT scope, name, key, count(*),
       extract(epoch FROM min(expires_at) - statement_timestamp())::float8
FROM ferroq_limit_starts WHERE expires_at > statement_timestamp()
GROUP BY scope, name, key

-- name: limit_starts_add
-- Record rate-limited starts, and drop those whose window passed. Params: scopes, names, keys,
-- pers (arrays).
WITH pruned AS (DELETE FROM ferroq_limit_starts WHERE expires_at <= statement_timestamp())
INSERT INTO ferroq_limit_starts (scope, name, key, expires_at)
SELECT s.scope, s.name, s.key, statement_timestamp() + make_interval(secs => s.per)
FROM unnest(%(scopes)s::text[], %(names)s::text[], %(keys)s::text[], %(pers)s::float8[])
     AS s(scope, name, key, per)

-- name: limit_head
-- The first n due pending jobs of one queue in claim order (the claim's index). Params: queue,
-- n. Returns id, job_type, limit_key, priority, available_at.
SELECT id, job_type, limit_key, priority, available_at FROM ferroq_jobs
WHERE status = 'pending' AND queue = %(queue)s AND available_at <= statement_timestamp()
ORDER BY priority, available_at, id
LIMIT %(n)s

-- name: limit_groups
-- The (job_type, limit_key) groups of one queue's pending jobs, one index probe per group
-- (ferroq_jobs_groups): a loose scan of the types, then of each type's limit keys, then each
-- type's group without a key. Params: queue. Returns job_type, limit_key, and the group's
-- best priority.
WITH RECURSIVE types(t) AS (
    SELECT (SELECT job_type FROM ferroq_jobs WHERE status = 'pending' AND queue = %(queue)s
            ORDER BY job_type LIMIT 1)
    UNION ALL
    SELECT (SELECT job_type FROM ferroq_jobs
            WHERE status = 'pending' AND queue = %(queue)s AND job_type > types.t
            ORDER BY job_type LIMIT 1)
    FROM types WHERE types.t IS NOT NULL),
keys(t, k) AS (
    SELECT types.t, (SELECT limit_key FROM ferroq_jobs
                     WHERE status = 'pending' AND queue = %(queue)s AND job_type = types.t
                       AND limit_key IS NOT NULL
                     ORDER BY limit_key LIMIT 1)
    FROM types WHERE types.t IS NOT NULL
    UNION ALL
    SELECT keys.t, (SELECT limit_key FROM ferroq_jobs
                    WHERE status = 'pending' AND queue = %(queue)s AND job_type = keys.t
                      AND limit_key > keys.k
                    ORDER BY limit_key LIMIT 1)
    FROM keys WHERE keys.k IS NOT NULL)
SELECT t, k, (SELECT priority FROM ferroq_jobs
              WHERE status = 'pending' AND queue = %(queue)s AND job_type = t AND limit_key = k
              ORDER BY job_type, limit_key, priority LIMIT 1)
FROM keys WHERE k IS NOT NULL
UNION ALL
SELECT t, NULL, p FROM (
    SELECT types.t, (SELECT priority FROM ferroq_jobs
                     WHERE status = 'pending' AND queue = %(queue)s AND job_type = types.t
                       AND limit_key IS NULL
                     ORDER BY job_type, limit_key, priority LIMIT 1) AS p
    FROM types WHERE types.t IS NOT NULL) AS unkeyed
WHERE p IS NOT NULL

-- name: limit_candidates
-- Up to n due jobs of each group, in claim order: one probe of ferroq_jobs_groups per group.
-- Params: queue, job_types, limit_keys (NULL: the group without a key), sizes (arrays).
-- Returns id, job_type, limit_key, priority, available_at.
SELECT j.id, j.job_type, j.limit_key, j.priority, j.available_at
FROM unnest(%(job_types)s::text[], %(limit_keys)s::text[], %(sizes)s::int[]) AS g(t, k, n)
CROSS JOIN LATERAL (
    SELECT id, job_type, limit_key, priority, available_at FROM ferroq_jobs
    WHERE status = 'pending' AND queue = %(queue)s AND job_type = g.t AND limit_key = g.k
      AND available_at <= statement_timestamp()
    ORDER BY job_type, limit_key, priority, available_at, id LIMIT g.n) AS j
WHERE g.k IS NOT NULL
UNION ALL
SELECT j.id, j.job_type, j.limit_key, j.priority, j.available_at
FROM unnest(%(job_types)s::text[], %(limit_keys)s::text[], %(sizes)s::int[]) AS g(t, k, n)
CROSS JOIN LATERAL (
    SELECT id, job_type, limit_key, priority, available_at FROM ferroq_jobs
    WHERE status = 'pending' AND queue = %(queue)s AND job_type = g.t AND limit_key IS NULL
      AND available_at <= statement_timestamp()
    ORDER BY job_type, limit_key, priority, available_at, id LIMIT g.n) AS j
WHERE g.k IS NULL

-- name: limit_claim
-- Claim the chosen jobs (still pending: a plain claim by a worker that has not seen the
-- limits yet may have taken one). The status is a parameter (pending = 'pending'), as in the
-- fences (see _fence): matched to the claim's partial index, the plan scanned that whole index
-- for the ids instead of one primary-key lookup each. Params: ids (array), worker, pending.
-- Returns JOB_COLUMNS.
UPDATE ferroq_jobs
SET status = 'claimed', claimed_by = %(worker)s, claimed_at = statement_timestamp(),
    heartbeat_at = statement_timestamp(), attempts = ferroq_jobs.attempts + 1
WHERE id = ANY(%(ids)s::bigint[]) AND status = %(pending)s
  -- controls: what a pause covers or a cancel request names is never claimed, here too
  -- (the candidates were chosen without looking; see claim)
  AND NOT EXISTS (SELECT 1 FROM ferroq_pauses AS p
                  WHERE p.scope = 'queue' AND p.name = ferroq_jobs.queue
                     OR p.scope = 'job_type' AND p.name = ferroq_jobs.job_type
                     OR p.scope = 'tenant' AND p.name = ferroq_jobs.tenant_id)
  AND NOT EXISTS (SELECT 1 FROM ferroq_cancellations AS c WHERE c.job_id = ferroq_jobs.id)
RETURNING ferroq_jobs.id, queue, job_type, payload, status, priority, attempts, max_attempts,
          idempotency_key, tenant_id, available_at, created_at, claimed_at, claimed_by,
          heartbeat_at, error, failed_at, result_ttl, limit_key

-- name: limit_claim_head
-- The head claim (ferroq_core.storage.headclaim), after limits_lock: the first limit due jobs
-- of one queue in claim order, claimed only if every concurrency limit over them still holds
-- with them added to the live leases (counted per limit and key, as the limited claim counts),
-- and no rate limit or fair turn governs them. The head is picked as the plain claim picks it
-- (the controls included); the leases are read in this statement, whose snapshot follows the
-- lock. Params: queue, limit, worker. Returns the verdict ('fits', 'binds', 'other') and
-- JOB_COLUMNS: one row per claimed job, or one row of NULLs after the verdict.
WITH picked AS (
    SELECT id, job_type, limit_key FROM ferroq_jobs
    WHERE status = 'pending' AND queue = %(queue)s AND available_at <= statement_timestamp()
      AND NOT EXISTS (SELECT 1 FROM ferroq_pauses WHERE scope = 'queue' AND name = %(queue)s)
      AND (NOT EXISTS (SELECT 1 FROM ferroq_pauses WHERE scope <> 'queue')
           AND NOT EXISTS (SELECT 1 FROM ferroq_cancellations)
           OR NOT EXISTS (SELECT 1 FROM ferroq_pauses AS p
                          WHERE p.scope = 'job_type' AND p.name = ferroq_jobs.job_type
                             OR p.scope = 'tenant' AND p.name = ferroq_jobs.tenant_id)
              AND NOT EXISTS (SELECT 1 FROM ferroq_cancellations AS c
                              WHERE c.job_id = ferroq_jobs.id))
    ORDER BY priority, available_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED),
rules AS (
    SELECT scope, name, per_tenant, concurrency, rate, fair FROM ferroq_limits
    WHERE scope = 'queue' AND name = %(queue)s
       OR scope = 'type' AND name IN (SELECT job_type FROM picked)),
counted AS (
    SELECT l.concurrency, count(*) AS n
    FROM rules AS l
    JOIN (SELECT queue, job_type, limit_key FROM ferroq_jobs WHERE status = 'claimed'
          UNION ALL
          SELECT %(queue)s, job_type, limit_key FROM picked) AS j
      ON l.scope = 'queue' AND j.queue = l.name OR l.scope = 'type' AND j.job_type = l.name
    WHERE l.concurrency IS NOT NULL
    GROUP BY l.scope, l.name, l.concurrency,
             CASE WHEN l.per_tenant <> 0 THEN coalesce(j.limit_key, '') END),
verdict AS (
    SELECT CASE WHEN EXISTS (SELECT 1 FROM rules WHERE rate IS NOT NULL OR fair <> 0) THEN 'other'
                WHEN EXISTS (SELECT 1 FROM counted WHERE n > concurrency) THEN 'binds'
                ELSE 'fits' END AS v),
claimed AS (
    UPDATE ferroq_jobs
    SET status = 'claimed', claimed_by = %(worker)s, claimed_at = statement_timestamp(),
        heartbeat_at = statement_timestamp(), attempts = ferroq_jobs.attempts + 1
    WHERE ferroq_jobs.id = ANY(ARRAY(SELECT id FROM picked))
      AND (SELECT v FROM verdict) = 'fits'
    RETURNING ferroq_jobs.id, queue, job_type, payload, status, priority, attempts,
              max_attempts, idempotency_key, tenant_id, available_at, created_at, claimed_at,
              claimed_by, heartbeat_at, error, failed_at, result_ttl, limit_key)
SELECT verdict.v, claimed.* FROM verdict LEFT JOIN claimed ON true

-- name: limit_set
-- Declare (or replace) one scope and name's limits. Params: scope, name, per_tenant,
-- concurrency, rate, per, fair.
INSERT INTO ferroq_limits (scope, name, per_tenant, concurrency, rate, per, fair, updated_at)
VALUES (%(scope)s, %(name)s, %(per_tenant)s, %(concurrency)s, %(rate)s, %(per)s, %(fair)s,
        statement_timestamp())
ON CONFLICT (scope, name) DO UPDATE
SET per_tenant = excluded.per_tenant, concurrency = excluded.concurrency, rate = excluded.rate,
    per = excluded.per, fair = excluded.fair, updated_at = excluded.updated_at
WHERE (ferroq_limits.per_tenant, ferroq_limits.concurrency, ferroq_limits.rate,
       ferroq_limits.per, ferroq_limits.fair)
      IS DISTINCT FROM (excluded.per_tenant, excluded.concurrency, excluded.rate,
                        excluded.per, excluded.fair)

-- name: limit_delete
-- Params: scope, name. Returns the scope of the row deleted.
DELETE FROM ferroq_limits WHERE scope = %(scope)s AND name = %(name)s RETURNING scope

-- name: limit_waiting
-- Due pending jobs per group (an operator's look: reads every due pending row). Returns
-- queue, job_type, limit_key, count.
SELECT queue, job_type, limit_key, count(*) FROM ferroq_jobs
WHERE status = 'pending' AND available_at <= statement_timestamp()
GROUP BY queue, job_type, limit_key

-- ---- the groups index (ferroq_core.tables.limitkeys), made when a limit is set ----------
-- CREATE INDEX CONCURRENTLY, in autocommit: dispatches and claims go on while it builds (a
-- plain CREATE INDEX blocks every insert into ferroq_jobs until it is built). Of several
-- processes setting limits at once, the one that takes the builders' session lock builds it
-- and the others go on at once: waiting for that lock would deadlock, since the build waits
-- for every transaction older than it, a lock wait's included. A build cut short (a crash,
-- a cancel) leaves an invalid index, which the next builder drops first.

-- name: groups_index_valid
-- Whether the groups index exists (in the search path) and is usable: true, false (an
-- invalid one, left by a build cut short), or no row.
SELECT i.indisvalid FROM pg_index AS i WHERE i.indexrelid = to_regclass('ferroq_jobs_groups')

-- name: groups_index_try_lock
-- The builders' session lock (any constant, the same in every ferroq process, none of the
-- others'); false when another process holds it.
SELECT pg_try_advisory_lock(7203391860)

-- name: groups_index_unlock
SELECT pg_advisory_unlock(7203391860)

-- name: groups_index_drop
DROP INDEX CONCURRENTLY IF EXISTS ferroq_jobs_groups

-- name: groups_index_create
-- The same name, columns and predicate as ferroq_core.tables.limitkeys.groups_index.
CREATE INDEX CONCURRENTLY IF NOT EXISTS ferroq_jobs_groups
ON ferroq_jobs (queue, job_type, limit_key, priority, available_at, id)
WHERE status = 'pending'
