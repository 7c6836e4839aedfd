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
-- priority, max_attempts, idempotency_key (None), tenant_id, delay (seconds), channel.
-- Returns the new id.
WITH ins AS (
    INSERT INTO ferroq_jobs (queue, job_type, payload, status, priority, attempts,
                             max_attempts, idempotency_key, tenant_id, available_at, created_at)
    VALUES (%(queue)s, %(job_type)s, %(payload)s, 'pending', %(priority)s, 0,
            %(max_attempts)s, %(idempotency_key)s, %(tenant_id)s,
            statement_timestamp() + make_interval(secs => %(delay)s), statement_timestamp())
    RETURNING id, queue)
SELECT ins.id FROM ins, LATERAL pg_notify(%(channel)s, ins.queue)

-- name: enqueue_one_keyed
-- enqueue_one for a job with an idempotency key: no row (and no NOTIFY, LATERAL runs once per
-- inserted row) when an active job holds the key. The conflict target's predicate is written
-- with literals, exactly as the partial index's: with bound parameters a prepared (generic)
-- plan finds no index to match. Params: enqueue_one's. Returns the new id or nothing.
WITH ins AS (
    INSERT INTO ferroq_jobs (queue, job_type, payload, status, priority, attempts,
                             max_attempts, idempotency_key, tenant_id, available_at, created_at)
    VALUES (%(queue)s, %(job_type)s, %(payload)s, 'pending', %(priority)s, 0,
            %(max_attempts)s, %(idempotency_key)s, %(tenant_id)s,
            statement_timestamp() + make_interval(secs => %(delay)s), statement_timestamp())
    ON CONFLICT (job_type, idempotency_key)
        WHERE status IN ('pending', 'claimed') AND idempotency_key IS NOT NULL DO NOTHING
    RETURNING id, queue)
SELECT ins.id FROM ins, LATERAL pg_notify(%(channel)s, ins.queue)

-- name: insert_job
-- One job inside a transaction (a caller's, or a batch's) that sends one notify_queues at its
-- end. Params: enqueue_one's but channel. Returns the new id.
INSERT INTO ferroq_jobs (queue, job_type, payload, status, priority, attempts, max_attempts,
                         idempotency_key, tenant_id, available_at, created_at)
VALUES (%(queue)s, %(job_type)s, %(payload)s, 'pending', %(priority)s, 0, %(max_attempts)s,
        %(idempotency_key)s, %(tenant_id)s,
        statement_timestamp() + make_interval(secs => %(delay)s), statement_timestamp())
RETURNING id

-- name: insert_job_keyed
-- insert_job for a job with an idempotency key; no row when an active job holds it (the
-- literal predicate: see enqueue_one_keyed). Returns the new id or nothing.
INSERT INTO ferroq_jobs (queue, job_type, payload, status, priority, attempts, max_attempts,
                         idempotency_key, tenant_id, available_at, created_at)
VALUES (%(queue)s, %(job_type)s, %(payload)s, 'pending', %(priority)s, 0, %(max_attempts)s,
        %(idempotency_key)s, %(tenant_id)s,
        statement_timestamp() + make_interval(secs => %(delay)s), statement_timestamp())
ON CONFLICT (job_type, idempotency_key)
    WHERE status IN ('pending', 'claimed') AND idempotency_key IS NOT NULL DO NOTHING
RETURNING id

-- name: insert_jobs
-- Many jobs without idempotency keys as one statement with one array per column: one text
-- for every batch size (a multi-row VALUES is a new text per size, and psycopg spent longer
-- parsing it than the server inserting). The arrays travel in the binary format (psycopg's
-- text format quotes every element); the casts fix each array's type whatever psycopg infers
-- from the values. Rows go in in ord order, so the serial ids ascend in request order.
-- Params: queues, job_types, payloads, priorities, max_attempts, tenants, delays (arrays).
-- Returns the new ids.
INSERT INTO ferroq_jobs (queue, job_type, payload, status, priority, attempts, max_attempts,
                         tenant_id, available_at, created_at)
SELECT r.queue, r.job_type, r.payload, 'pending', r.priority, 0, r.max_attempts, r.tenant_id,
       statement_timestamp() + make_interval(secs => r.delay), statement_timestamp()
FROM unnest(%(queues)b::text[], %(job_types)b::text[], %(payloads)b::text[],
            %(priorities)b::int[], %(max_attempts)b::int[], %(tenants)b::text[],
            %(delays)b::float8[]) WITH ORDINALITY
     AS r(queue, job_type, payload, priority, max_attempts, tenant_id, delay, ord)
ORDER BY r.ord
RETURNING id

-- name: key_holder
-- The active job holding an idempotency key. Params: job_type, idempotency_key.
SELECT id FROM ferroq_jobs
WHERE job_type = %(job_type)s AND idempotency_key = %(idempotency_key)s
  AND status IN ('pending', 'claimed')

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
-- scan; this one is a primary-key lookup whatever the guess. Params: queue, limit, worker.
-- Returns the claimed jobs (JOB_COLUMNS; RETURNING has no defined order).
WITH picked AS (
    SELECT id FROM ferroq_jobs
    WHERE status = 'pending' AND queue = %(queue)s AND available_at <= statement_timestamp()
    ORDER BY priority, available_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED)
UPDATE ferroq_jobs
SET status = 'claimed', claimed_by = %(worker)s, claimed_at = statement_timestamp(),
    heartbeat_at = statement_timestamp(), attempts = ferroq_jobs.attempts + 1
WHERE ferroq_jobs.id = ANY(ARRAY(SELECT id FROM picked))
RETURNING ferroq_jobs.id, queue, job_type, payload, status, priority, attempts, max_attempts,
          idempotency_key, tenant_id, available_at, created_at, claimed_at, claimed_by,
          heartbeat_at, error, failed_at

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
-- Park a claimed job as failed. Params: id, owner, attempts, error. Returns the id if the
-- lease still held.
UPDATE ferroq_jobs
SET status = 'failed', error = %(error)s, failed_at = statement_timestamp(), heartbeat_at = NULL
WHERE status = 'claimed' AND id = %(id)s AND claimed_by = %(owner)s AND attempts = %(attempts)s
RETURNING id

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
          heartbeat_at, error, failed_at

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
          heartbeat_at, error, failed_at

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
                               ORDER BY available_at LIMIT 1)) - statement_timestamp())
FROM levels WHERE levels.priority IS NOT NULL


-- ==== admin ===============================================================================
-- Optional filters are nullable parameters: (%(x)s::type IS NULL OR column = %(x)s). These
-- run unprepared (planned with their values), so a filter left out costs nothing. A state
-- is status plus due: pending = ('pending', true), delayed = ('pending', false).

-- name: get_job
-- One job by id. Params: id.
SELECT id, queue, job_type, payload, status, priority, attempts, max_attempts,
       idempotency_key, tenant_id, available_at, created_at, claimed_at, claimed_by,
       heartbeat_at, error, failed_at
FROM ferroq_jobs WHERE id = %(id)s

-- name: list_jobs
-- Jobs in claim order (any state, pending or delayed). Params: status, due, queue, job_type,
-- tenant_id (each nullable), limit, offset.
SELECT id, queue, job_type, payload, status, priority, attempts, max_attempts,
       idempotency_key, tenant_id, available_at, created_at, claimed_at, claimed_by,
       heartbeat_at, error, failed_at
FROM ferroq_jobs
WHERE (%(status)s::text IS NULL OR status = %(status)s)
  AND (%(due)s::boolean IS NULL OR (available_at <= statement_timestamp()) = %(due)s)
  AND (%(queue)s::text IS NULL OR queue = %(queue)s)
  AND (%(job_type)s::text IS NULL OR job_type = %(job_type)s)
  AND (%(tenant_id)s::text IS NULL OR tenant_id = %(tenant_id)s)
ORDER BY priority, available_at, id
LIMIT %(limit)s OFFSET %(offset)s

-- name: list_claimed_jobs
-- Claimed jobs, oldest claim first. Params: queue, job_type, tenant_id (each nullable),
-- limit, offset.
SELECT id, queue, job_type, payload, status, priority, attempts, max_attempts,
       idempotency_key, tenant_id, available_at, created_at, claimed_at, claimed_by,
       heartbeat_at, error, failed_at
FROM ferroq_jobs
WHERE status = 'claimed'
  AND (%(queue)s::text IS NULL OR queue = %(queue)s)
  AND (%(job_type)s::text IS NULL OR job_type = %(job_type)s)
  AND (%(tenant_id)s::text IS NULL OR tenant_id = %(tenant_id)s)
ORDER BY claimed_at, id
LIMIT %(limit)s OFFSET %(offset)s

-- name: list_failed_jobs
-- Failed jobs, newest first. Params: list_claimed_jobs'.
SELECT id, queue, job_type, payload, status, priority, attempts, max_attempts,
       idempotency_key, tenant_id, available_at, created_at, claimed_at, claimed_by,
       heartbeat_at, error, failed_at
FROM ferroq_jobs
WHERE status = 'failed'
  AND (%(queue)s::text IS NULL OR queue = %(queue)s)
  AND (%(job_type)s::text IS NULL OR job_type = %(job_type)s)
  AND (%(tenant_id)s::text IS NULL OR tenant_id = %(tenant_id)s)
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


-- ==== flow control: limits (ferroq_core.storage.flow) ======================================
-- The limited claim is a transaction of the statements below, serialized with every other
-- limited claim by limits_lock; the plain claim above stays as it is for queues without limits.

-- name: limits_scopes
-- The scope and name of every limit (a worker looks every few seconds).
SELECT scope, name FROM ferroq_limits

-- name: limits_lock
-- The start of a limited claim: the limited claims' lock, held until the transaction ends
-- (any constant, the same in every ferroq process, not the migration's or the vacuum's), and
-- every limit (read in the same round trip; a limit may be a claim late). It also turns sorts
-- off for the rest of the transaction (SET LOCAL): every read of the limited claim has an index
-- in its order, but on statistics older than a bulk dispatch (until autovacuum analyzes) the
-- planner sorted the whole queue for each group's first row (100 groups of 20,000 jobs: 0.7 s
-- a claim instead of 4 ms); and JIT, which the recursive group scan's estimates set off at
-- 20 ms a claim. The group reads order by the whole ferroq_jobs_groups key (job_type and
-- tenant_id are fixed by their WHERE): that order pins them to that index, where the claim's
-- index plus a filter looked as cheap to the planner and read the whole queue. Returns scope,
-- name, per_tenant, concurrency, rate, per, fair (NULLs when there is none).
SELECT l.scope, l.name, l.per_tenant, l.concurrency, l.rate, l.per, l.fair
FROM (SELECT pg_advisory_xact_lock(7203391853), set_config('enable_sort', 'off', true),
             set_config('jit', 'off', true)) AS lock
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
-- Returns kind, a, b, c, n, priority, available_at, frees_in: 'r' queue, job_type, tenant_id,
-- count; 's' scope, name, key, count, frees_in; 'h' -, job_type, tenant_id, id, priority,
-- available_at.
SELECT 'r', queue, job_type, tenant_id, count(*), NULL::int, NULL::timestamptz, NULL::float8
FROM ferroq_jobs WHERE status = 'claimed'
GROUP BY queue, job_type, tenant_id
UNION ALL
SELECT 's', scope, name, key, count(*), NULL, NULL,
       extract(epoch FROM min(expires_at) - statement_timestamp())::float8
FROM ferroq_limit_starts WHERE expires_at > statement_timestamp()
GROUP BY scope, name, key
UNION ALL
(SELECT 'h', NULL, job_type, tenant_id, id, priority, available_at, NULL FROM ferroq_jobs
 WHERE status = 'pending' AND queue = %(queue)s AND available_at <= statement_timestamp()
 ORDER BY priority, available_at, id
 LIMIT %(n)s)

-- name: limits_running
-- The live leases per group (ferroq limits). Returns queue, job_type, tenant_id, count.
SELECT queue, job_type, tenant_id, count(*) FROM ferroq_jobs WHERE status = 'claimed'
GROUP BY queue, job_type, tenant_id

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
-- n. Returns id, job_type, tenant_id, priority, available_at.
SELECT id, job_type, tenant_id, priority, available_at FROM ferroq_jobs
WHERE status = 'pending' AND queue = %(queue)s AND available_at <= statement_timestamp()
ORDER BY priority, available_at, id
LIMIT %(n)s

-- name: limit_groups
-- The (job_type, tenant_id) groups of one queue's pending jobs, one index probe per group
-- (ferroq_jobs_groups): a loose scan of the types, then of each type's tenants, then each type's
-- untenanted group. Params: queue. Returns job_type, tenant_id, and the group's best
-- priority.
WITH RECURSIVE types(t) AS (
    SELECT (SELECT job_type FROM ferroq_jobs WHERE status = 'pending' AND queue = %(queue)s
            ORDER BY job_type LIMIT 1)
    UNION ALL
    SELECT (SELECT job_type FROM ferroq_jobs
            WHERE status = 'pending' AND queue = %(queue)s AND job_type > types.t
            ORDER BY job_type LIMIT 1)
    FROM types WHERE types.t IS NOT NULL),
tenants(t, k) AS (
    SELECT types.t, (SELECT tenant_id FROM ferroq_jobs
                     WHERE status = 'pending' AND queue = %(queue)s AND job_type = types.t
                       AND tenant_id IS NOT NULL
                     ORDER BY tenant_id LIMIT 1)
    FROM types WHERE types.t IS NOT NULL
    UNION ALL
    SELECT tenants.t, (SELECT tenant_id FROM ferroq_jobs
                       WHERE status = 'pending' AND queue = %(queue)s AND job_type = tenants.t
                         AND tenant_id > tenants.k
                       ORDER BY tenant_id LIMIT 1)
    FROM tenants WHERE tenants.k IS NOT NULL)
SELECT t, k, (SELECT priority FROM ferroq_jobs
              WHERE status = 'pending' AND queue = %(queue)s AND job_type = t AND tenant_id = k
              ORDER BY job_type, tenant_id, priority LIMIT 1)
FROM tenants WHERE k IS NOT NULL
UNION ALL
SELECT t, NULL, p FROM (
    SELECT types.t, (SELECT priority FROM ferroq_jobs
                     WHERE status = 'pending' AND queue = %(queue)s AND job_type = types.t
                       AND tenant_id IS NULL
                     ORDER BY job_type, tenant_id, priority LIMIT 1) AS p
    FROM types WHERE types.t IS NOT NULL) AS untenanted
WHERE p IS NOT NULL

-- name: limit_candidates
-- Up to n due jobs of each group, in claim order: one probe of ferroq_jobs_groups per group.
-- Params: queue, job_types, tenants (NULL: untenanted), sizes (arrays). Returns id, job_type,
-- tenant_id, priority, available_at.
SELECT j.id, j.job_type, j.tenant_id, j.priority, j.available_at
FROM unnest(%(job_types)s::text[], %(tenants)s::text[], %(sizes)s::int[]) AS g(t, k, n)
CROSS JOIN LATERAL (
    SELECT id, job_type, tenant_id, priority, available_at FROM ferroq_jobs
    WHERE status = 'pending' AND queue = %(queue)s AND job_type = g.t AND tenant_id = g.k
      AND available_at <= statement_timestamp()
    ORDER BY job_type, tenant_id, priority, available_at, id LIMIT g.n) AS j
WHERE g.k IS NOT NULL
UNION ALL
SELECT j.id, j.job_type, j.tenant_id, j.priority, j.available_at
FROM unnest(%(job_types)s::text[], %(tenants)s::text[], %(sizes)s::int[]) AS g(t, k, n)
CROSS JOIN LATERAL (
    SELECT id, job_type, tenant_id, priority, available_at FROM ferroq_jobs
    WHERE status = 'pending' AND queue = %(queue)s AND job_type = g.t AND tenant_id IS NULL
      AND available_at <= statement_timestamp()
    ORDER BY job_type, tenant_id, priority, available_at, id LIMIT g.n) AS j
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
RETURNING ferroq_jobs.id, queue, job_type, payload, status, priority, attempts, max_attempts,
          idempotency_key, tenant_id, available_at, created_at, claimed_at, claimed_by,
          heartbeat_at, error, failed_at

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
-- queue, job_type, tenant_id, count.
SELECT queue, job_type, tenant_id, count(*) FROM ferroq_jobs
WHERE status = 'pending' AND available_at <= statement_timestamp()
GROUP BY queue, job_type, tenant_id
