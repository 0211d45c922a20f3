-- qbench design "pg_boss": the database protocol of pg-boss 12.27.0 (github.com/timgit/pg-boss,
-- tag 12.27.0 = aa1ce16; schema version 37; HEAD 55ee32f changes nothing under src/),
-- rewritten in qbench's words. pg-boss itself is not installed: these are its tables as
-- src/plans.ts `create()` leaves them, its create_queue as plans.ts `createQueueFunction`
-- defines it, and statements doing what plans.ts `insertJobs`, `fetchNextJob`,
-- `completeJobs`, `failJobsByTimeout`, `failJobsByHeartbeat`, `cacheQueueStats`, `deletion`,
-- `getQueues`, `trySet*Time`, `resolveFlowJobs` and `getSchedules` send.
--
-- Where qbench differs from pg-boss, on purpose:
-- * the objects live in qbench's schema with a `pgboss_` prefix, not in the pgboss schema
--   (the NOTIFY channel is the one pg-boss's default schema gets); a queue's own table
--   keeps pg-boss's name, `j` and its name's SHA-224 (the prefix would pass 63 bytes);
-- * the tables no hot-path statement touches are left out: subscription, warning,
--   queue_stats and its daily partitions (persistWarnings and persistQueueStats are off by
--   default), and the job_table_* DDL helpers (create_queue runs its DDL itself); bam and
--   job_dependency are here, empty, for the background gates that read them;
-- * the job's sequence number and intended enqueue time travel in `data`, beside qbench's
--   payload, as a user's job data would; the id a producer passes (pg-boss takes one) is
--   a hash of the seq, as random in the key space as gen_random_uuid's, so that a retried
--   insert is a no-op by the primary key (pg-boss's own ON CONFLICT DO NOTHING);
-- * in the volatile tier the job tables are UNLOGGED (pg-boss has no such option).
--
-- `psql -f pg_queue_pg_boss.sql` creates the schema and stops at \quit.
-- Everything after \quit is the statements qbench prepares, each after a "-- name:" line.

-- The order is what the statements compare on: below 'active' is queued, above it finished.
DO $$ BEGIN
    CREATE TYPE pgboss_job_state AS ENUM
        ('created', 'retry', 'active', 'completed', 'cancelled', 'failed');
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

-- One row: the schema version, and the cluster-wide gates of the cron, BAM and flow timers.
CREATE TABLE IF NOT EXISTS pgboss_version (
    version int PRIMARY KEY,
    cron_on timestamptz,
    bam_on  timestamptz,
    flow_on timestamptz
);
INSERT INTO pgboss_version (version) VALUES (37) ON CONFLICT DO NOTHING;

-- Queues: their options (copied into each job at insert), the monitor's cached counts,
-- and the monitor's and maintenance's gates.
CREATE TABLE IF NOT EXISTS pgboss_queue (
    name              text NOT NULL PRIMARY KEY,
    policy            text NOT NULL,
    retry_limit       int  NOT NULL,
    retry_delay       int  NOT NULL,
    retry_backoff     bool NOT NULL,
    retry_delay_max   int,
    expire_seconds    int  NOT NULL,
    retention_seconds int  NOT NULL,
    deletion_seconds  int  NOT NULL,
    dead_letter       text REFERENCES pgboss_queue (name) CHECK (dead_letter IS DISTINCT FROM name),
    partition         bool NOT NULL,
    table_name        text NOT NULL,
    deferred_count    int  NOT NULL DEFAULT 0,
    queued_count      int  NOT NULL DEFAULT 0,
    ready_count       int  NOT NULL DEFAULT 0,
    warning_queued    int  NOT NULL DEFAULT 0,
    active_count      int  NOT NULL DEFAULT 0,
    failed_count      int  NOT NULL DEFAULT 0,
    total_count       int  NOT NULL DEFAULT 0,
    ready_history     int[] NOT NULL DEFAULT '{}',
    heartbeat_seconds int,
    notify            bool NOT NULL DEFAULT false,
    singletons_active text[],
    monitor_on        timestamptz,
    maintain_on       timestamptz,
    created_on        timestamptz NOT NULL DEFAULT now(),
    updated_on        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS pgboss_schedule (
    name       text REFERENCES pgboss_queue ON DELETE CASCADE,
    key        text NOT NULL DEFAULT '',
    cron       text NOT NULL,
    timezone   text,
    data       jsonb,
    options    jsonb,
    created_on timestamptz NOT NULL DEFAULT now(),
    updated_on timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, key)
);

CREATE TABLE IF NOT EXISTS pgboss_bam (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name         text NOT NULL,
    version      int  NOT NULL,
    status       text NOT NULL DEFAULT 'pending',
    queue        text,
    table_name   text NOT NULL,
    command      text NOT NULL,
    error        text,
    created_on   timestamptz NOT NULL DEFAULT clock_timestamp(),
    started_on   timestamptz,
    completed_on timestamptz
);

CREATE TABLE IF NOT EXISTS pgboss_job_dependency (
    child_name  text NOT NULL,
    child_id    uuid NOT NULL,
    parent_name text NOT NULL,
    parent_id   uuid NOT NULL,
    PRIMARY KEY (child_name, child_id, parent_name, parent_id)
);

-- The job table, partitioned by queue name; its defaults are pg-boss's queue defaults.
CREATE TABLE IF NOT EXISTS pgboss_job (
    id                   uuid NOT NULL DEFAULT gen_random_uuid(),
    name                 text NOT NULL,
    priority             integer NOT NULL DEFAULT 0,
    data                 jsonb,
    state                pgboss_job_state NOT NULL DEFAULT 'created',
    retry_limit          integer NOT NULL DEFAULT 2,
    retry_count          integer NOT NULL DEFAULT 0,
    retry_delay          integer NOT NULL DEFAULT 0,
    retry_backoff        boolean NOT NULL DEFAULT false,
    retry_delay_max      integer,
    expire_seconds       int NOT NULL DEFAULT 900,
    deletion_seconds     int NOT NULL DEFAULT 604800,
    singleton_key        text,
    singleton_on         timestamp without time zone,
    group_id             text,
    group_tier           text,
    start_after          timestamptz NOT NULL DEFAULT now(),
    created_on           timestamptz NOT NULL DEFAULT now(),
    started_on           timestamptz,
    completed_on         timestamptz,
    keep_until           timestamptz NOT NULL DEFAULT now() + interval '1209600',
    output               jsonb,
    dead_letter          text,
    policy               text,
    heartbeat_on         timestamptz,
    heartbeat_seconds    int,
    blocked              boolean NOT NULL DEFAULT false,
    blocking             boolean NOT NULL DEFAULT false,
    pending_dependencies int NOT NULL DEFAULT 0,
    source_name          text,
    source_id            uuid,
    source_created_on    timestamptz,
    source_retry_count   int
) PARTITION BY LIST (name);

-- The indexes and constraints of one job table `t` (pg-boss's job_iN, named t_iN as
-- job_table_run names them; its constraints keep pg-boss's names): the key, the deferred foreign keys to the queue, the fetch
-- index (i5), and the policies' unique partial indexes. `policy_all`: every policy's
-- index (the shared job_common), else a standard queue's (a partition of its own: i4,
-- i5, i7, i9).
CREATE OR REPLACE FUNCTION pgboss_job_indexes(t text, policy_all bool) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    EXECUTE format('ALTER TABLE %I ADD PRIMARY KEY (name, id)', t);
    EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I FOREIGN KEY (name) REFERENCES pgboss_queue (name)
                    ON DELETE RESTRICT DEFERRABLE INITIALLY DEFERRED', t, 'q_fkey');
    EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I FOREIGN KEY (dead_letter) REFERENCES pgboss_queue (name)
                    ON DELETE RESTRICT DEFERRABLE INITIALLY DEFERRED', t, 'dlq_fkey');
    IF policy_all THEN
        EXECUTE format($i$CREATE UNIQUE INDEX %I ON %I (name, COALESCE(singleton_key, ''))
                        WHERE state = 'created' AND policy = 'short'$i$, t || '_i1', t);
        EXECUTE format($i$CREATE UNIQUE INDEX %I ON %I (name, COALESCE(singleton_key, ''))
                        WHERE state = 'active' AND policy = 'singleton'$i$, t || '_i2', t);
        EXECUTE format($i$CREATE UNIQUE INDEX %I ON %I (name, state, COALESCE(singleton_key, ''))
                        WHERE state <= 'active' AND policy = 'stately'$i$, t || '_i3', t);
        EXECUTE format($i$CREATE UNIQUE INDEX %I ON %I (name, COALESCE(singleton_key, ''))
                        WHERE state <= 'active' AND policy = 'exclusive'$i$, t || '_i6', t);
        EXECUTE format($i$CREATE UNIQUE INDEX %I ON %I (name, singleton_key)
                        WHERE state IN ('active', 'retry', 'failed') AND policy = 'key_strict_fifo'$i$,
                       t || '_i8', t);
        EXECUTE format($i$ALTER TABLE %I ADD CONSTRAINT %I
                        CHECK (NOT (policy = 'key_strict_fifo' AND singleton_key IS NULL))$i$,
                       t, 'job_key_strict_fifo_singleton_key_check');
    END IF;
    EXECUTE format($i$CREATE UNIQUE INDEX %I ON %I (name, singleton_on, COALESCE(singleton_key, ''))
                    WHERE state <> 'cancelled' AND singleton_on IS NOT NULL$i$, t || '_i4', t);
    EXECUTE format($i$CREATE INDEX %I ON %I (name, start_after)
                    WHERE state < 'active' AND NOT blocked$i$, t || '_i5', t);
    EXECUTE format($i$CREATE INDEX %I ON %I (name, group_id)
                    WHERE state = 'active' AND group_id IS NOT NULL$i$, t || '_i7', t);
    EXECUTE format($i$CREATE INDEX %I ON %I (name, id)
                    WHERE blocking AND state = 'completed'$i$, t || '_i9', t);
END
$fn$;

-- The shared partition every queue without `partition: true` lives in.
DO $$ BEGIN
    IF to_regclass('pgboss_job_common') IS NULL THEN
        CREATE TABLE pgboss_job_common (LIKE pgboss_job INCLUDING GENERATED INCLUDING DEFAULTS);
        PERFORM pgboss_job_indexes('pgboss_job_common', true);
        ALTER TABLE pgboss_job ATTACH PARTITION pgboss_job_common DEFAULT;
    END IF;
END $$;

DROP FUNCTION IF EXISTS pgboss_create_queue(text, bool, int, int, bool);

-- create_queue: the queue's row (its options the jobs copy at insert) and, with
-- `part`, a table of its own named after the hash of its name, attached as the
-- partition of that name. qbench's additions: the options of an existing queue are
-- updated (pg-boss's updateQueue) only when they differ, and a queue made with the
-- other layout is deleted first with `reset`, refused without.
CREATE OR REPLACE FUNCTION pgboss_create_queue(queue_name text, part bool,
                                               expire int, deletion int, notifies bool,
                                               reset bool)
RETURNS text LANGUAGE plpgsql AS $fn$
DECLARE
    t text := CASE WHEN part THEN 'j' || encode(sha224(queue_name::bytea), 'hex')
                   ELSE 'pgboss_job_common' END;
    was bool;
BEGIN
    SELECT partition INTO was FROM pgboss_queue WHERE name = queue_name;
    IF was IS NOT NULL AND was <> part THEN
        IF NOT reset THEN
            RAISE EXCEPTION 'queue % was made with partition = %', queue_name, was
                USING HINT = 'empty it with setup-schema --reset';
        END IF;
        PERFORM pgboss_delete_queue(queue_name);
    END IF;
    INSERT INTO pgboss_queue AS q (name, policy, retry_limit, retry_delay, retry_backoff,
        expire_seconds, retention_seconds, deletion_seconds, partition, table_name, notify)
    VALUES (queue_name, 'standard', 2, 0, false, expire, 1209600, deletion, part, t, notifies)
    ON CONFLICT (name) DO UPDATE SET expire_seconds = excluded.expire_seconds,
        deletion_seconds = excluded.deletion_seconds, notify = excluded.notify,
        updated_on = now()
    WHERE (q.expire_seconds, q.deletion_seconds, q.notify)
          IS DISTINCT FROM (excluded.expire_seconds, excluded.deletion_seconds, excluded.notify);
    IF part AND to_regclass(t) IS NULL THEN
        EXECUTE format('CREATE TABLE %I (LIKE pgboss_job INCLUDING DEFAULTS)', t);
        PERFORM pgboss_job_indexes(t, false);
        EXECUTE format('ALTER TABLE %I ADD CONSTRAINT cjc CHECK (name = %L)', t, queue_name);
        EXECUTE format('ALTER TABLE pgboss_job ATTACH PARTITION %I FOR VALUES IN (%L)', t, queue_name);
    END IF;
    RETURN t;
END
$fn$;

-- delete_queue: its jobs deleted (its own table dropped), then its row.
CREATE OR REPLACE FUNCTION pgboss_delete_queue(queue_name text) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    t text;
BEGIN
    SELECT table_name INTO t FROM pgboss_queue WHERE name = queue_name;
    IF t IS NULL THEN
        RETURN;
    ELSIF t = 'pgboss_job_common' THEN
        DELETE FROM pgboss_job_common WHERE name = queue_name;
    ELSE
        EXECUTE format('DROP TABLE IF EXISTS %I', t);
    END IF;
    DELETE FROM pgboss_queue WHERE name = queue_name;
END
$fn$;

\quit

-- name: make_queue
-- $1 queue, $2 partition, $3 expire seconds, $4 deletion seconds, $5 notify, $6 reset.
SELECT pgboss_create_queue($1::text, $2::bool, $3::int, $4::int, $5::bool, $6::bool)

-- name: enqueue
-- insertJobs (src/plans.ts) for the queue `qbench`, one statement per send (a one-job
-- array) or per insert (a batch), autocommit. {table} is the queue's table. Every
-- column pg-boss lists is written; the job options qbench never sets (singleton,
-- throttle, group, dead letter, dependencies) come in as NULL and fall to the queue's
-- options or their defaults, as pg-boss's json_to_recordset does. $1: the jobs (json
-- array of {id, data}). `send` returns the id; `insert` (a batch) returns nothing.
INSERT INTO {table} (id, name, data, priority, start_after, singleton_key, singleton_on,
    group_id, group_tier, expire_seconds, deletion_seconds, keep_until, retry_limit,
    retry_delay, retry_backoff, retry_delay_max, policy, dead_letter, heartbeat_seconds,
    blocked, blocking, pending_dependencies)
SELECT coalesce(j.id, gen_random_uuid()), 'qbench', j.data, coalesce(j.priority, 0),
    j.start_after, j."singletonKey",
    -- A throttled job's slot: the start of its singletonSeconds window (none here).
    to_timestamp(j."singletonSeconds" * floor((extract(epoch FROM now())
        + coalesce(j."singletonOffset", 0)) / j."singletonSeconds")) AT TIME ZONE 'UTC',
    j."groupId", j."groupTier",
    coalesce(j."expireInSeconds", q.expire_seconds),
    coalesce(j."deleteAfterSeconds", q.deletion_seconds),
    j.start_after + coalesce(j."retentionSeconds", q.retention_seconds) * interval '1s',
    coalesce(j."retryLimit", q.retry_limit), coalesce(j."retryDelay", q.retry_delay),
    coalesce(j."retryBackoff", q.retry_backoff, false),
    coalesce(j."retryDelayMax", q.retry_delay_max), q.policy,
    coalesce(j."deadLetter", q.dead_letter),
    coalesce(j."heartbeatSeconds", q.heartbeat_seconds),
    coalesce(j.blocked, false), coalesce(j.blocking, false),
    coalesce(j."pendingDependencies", 0)
FROM (
    SELECT r.*, CASE WHEN right(r."startAfter", 1) = 'Z' THEN r."startAfter"::timestamptz
                     ELSE now() + coalesce(r."startAfter", '0')::interval END AS start_after
    FROM json_to_recordset($1::text::json) AS r (id uuid, priority integer, data jsonb,
        "startAfter" text, "retryLimit" integer, "retryDelay" integer,
        "retryDelayMax" integer, "retryBackoff" boolean, "singletonKey" text,
        "singletonSeconds" integer, "singletonOffset" integer, "groupId" text,
        "groupTier" text, "expireInSeconds" integer, "deleteAfterSeconds" integer,
        "retentionSeconds" integer, "deadLetter" text, "heartbeatSeconds" integer,
        blocked boolean, blocking boolean, "pendingDependencies" integer)
) j
JOIN pgboss_queue q ON q.name = 'qbench'
ON CONFLICT DO NOTHING
{returning}

-- name: enqueue_notify
-- The same with the queue's `notify` on (useListenNotify): one pg_notify, in the insert's
-- statement, when a job inserted is due now; its payload the queue's name.
WITH ins AS (
    {insert}
    RETURNING id, start_after
), notified AS (
    SELECT pg_notify('pgboss_454650302e472074f72063fd', 'qbench')
    FROM ins WHERE start_after <= now() LIMIT 1
)
SELECT id FROM ins WHERE (SELECT count(*) FROM notified) {compare}

-- name: fetch
-- fetchNextJob (src/plans.ts) at pg-boss's work() defaults (priority and created_on order,
-- no group or singleton limits), sent as pg-boss sends it: one simple query, the queue's
-- name and the batch size written into the text. {table}: the queue's table, {name}: the
-- queue, {limit}: batchSize. The retry count moves on a re-run only.
WITH next AS (
    SELECT j.id FROM {table} j
    WHERE j.name = '{name}' AND j.state < 'active' AND NOT j.blocked
      AND j.start_after <= now()
    ORDER BY j.priority DESC, j.created_on, j.id
    LIMIT {limit}
    FOR UPDATE OF j SKIP LOCKED
)
UPDATE {table} j
SET state = 'active', started_on = now(), heartbeat_on = now(),
    retry_count = CASE WHEN started_on IS NOT NULL THEN retry_count + 1 ELSE retry_count END
FROM next
WHERE name = '{name}' AND j.id = next.id
RETURNING j.id, name, data, expire_seconds AS "expireInSeconds",
    heartbeat_seconds AS "heartbeatSeconds", group_id AS "groupId", group_tier AS "groupTier",
    j.retry_count -- qbench's, not pg-boss's: the delivery's number

-- name: complete
-- completeJobs (src/plans.ts): the batch's jobs still active marked completed and kept
-- (maintenance deletes them deletion_seconds later). qbench's, not pg-boss's: the ids
-- come back as text (pg-boss counts them) so that a refused completion is named.
-- $1 queue, $2 ids, $3 output (null: the handler returned nothing).
WITH results AS (
    UPDATE {table}
    SET completed_on = now(), state = 'completed', output = $3::jsonb,
        blocked = blocked, pending_dependencies = pending_dependencies
    WHERE name = $1::text AND id = ANY($2::uuid[]) AND state = 'active'
    RETURNING id
)
SELECT id::text FROM results

-- name: monitor_gate
-- trySetQueueMonitorTime: the one instance that moves the queue's monitor_on wins this
-- interval's monitoring. $1: the queues, $2: the interval in seconds.
UPDATE pgboss_queue SET monitor_on = now()
WHERE name = ANY($1::text[])
  AND extract(epoch FROM now() - coalesce(monitor_on, now() - interval '1 week')) > $2::float8
RETURNING name

-- name: maintain_gate
-- trySetQueueDeletionTime: the same on maintain_on, once per maintenance interval.
UPDATE pgboss_queue SET maintain_on = now()
WHERE name = ANY($1::text[])
  AND extract(epoch FROM now() - coalesce(maintain_on, now() - interval '1 week')) > $2::float8
RETURNING name

-- name: cache_stats
-- cacheQueueStats in pg-boss's locked() envelope (one multi-statement simple query: the
-- transaction, its two SET LOCALs, the advisory lock of its key): every row of the
-- queue counted by state, finished ones included, into the queue's cached counts and the
-- last 60 ready counts. {table}, {names}: the table and its queues as an array literal.
BEGIN;
SET LOCAL lock_timeout = 30000;
SET LOCAL idle_in_transaction_session_timeout = 30000;
SELECT pg_advisory_xact_lock(('x' || encode(sha224((current_database() || '.pgboss.pgbossqueue-stats')::bytea), 'hex'))::bit(64)::bigint);
WITH stats AS (
    SELECT name, deferred, queued, greatest(queued - deferred, 0) AS ready, active, failed,
           total, singletons
    FROM (SELECT name,
                 (count(*) FILTER (WHERE start_after > now() AND state < 'active'))::int AS deferred,
                 (count(*) FILTER (WHERE state < 'active'))::int AS queued,
                 (count(*) FILTER (WHERE state = 'active'))::int AS active,
                 (count(*) FILTER (WHERE state = 'failed'))::int AS failed,
                 count(*)::int AS total,
                 array_agg(singleton_key) FILTER (WHERE policy IN ('singleton', 'stately')
                                                  AND state = 'active') AS singletons
          FROM {table} WHERE name = ANY({names}) GROUP BY 1) s
)
UPDATE pgboss_queue SET
    deferred_count = coalesce(stats.deferred, 0), queued_count = coalesce(stats.queued, 0),
    ready_count = coalesce(stats.ready, 0), active_count = coalesce(stats.active, 0),
    failed_count = coalesce(stats.failed, 0), total_count = coalesce(stats.total, 0),
    singletons_active = stats.singletons,
    -- The newest ready count first, the 60 newest kept.
    ready_history = (SELECT coalesce(array_agg(h.v ORDER BY h.n), '{}'::int[])
                     FROM (SELECT v, n FROM unnest(coalesce(stats.ready, 0)
                                   || coalesce(pgboss_queue.ready_history, '{}'::int[]))
                               WITH ORDINALITY AS u(v, n)
                           ORDER BY n LIMIT 60) h)
FROM (SELECT n.name FROM unnest({names}) AS n(name)) q
LEFT JOIN stats ON stats.name = q.name
WHERE pgboss_queue.name = q.name
RETURNING pgboss_queue.name, pgboss_queue.queued_count, pgboss_queue.warning_queued;
COMMIT;

-- name: fail_expired
-- failJobsByTimeout in its locked() envelope: jobs active longer than their
-- expire_seconds deleted and inserted again with the same id, as 'retry' due now while
-- retries remain (retry_delay 0, no backoff at the defaults), else as 'failed'. {where}
-- picks the jobs (fail_heartbeat's differs), {key} the advisory lock's key, {output} the
-- error pg-boss stores. Dead letters are left out: qbench's queue has none.
BEGIN;
SET LOCAL lock_timeout = 30000;
SET LOCAL idle_in_transaction_session_timeout = 30000;
SELECT pg_advisory_xact_lock(('x' || encode(sha224((current_database() || '.pgboss.pgboss{key}')::bytea), 'hex'))::bit(64)::bigint);
WITH gone AS (
    DELETE FROM {table} WHERE {where} RETURNING *
), retried AS (
    INSERT INTO {table} (id, name, priority, data, state, retry_limit, retry_count, retry_delay,
        retry_backoff, retry_delay_max, start_after, started_on, singleton_key, singleton_on,
        group_id, group_tier, expire_seconds, deletion_seconds, created_on, completed_on,
        keep_until, policy, output, dead_letter, heartbeat_on, heartbeat_seconds, blocked,
        blocking, pending_dependencies)
    SELECT id, name, priority, data,
        CASE WHEN retry_count < retry_limit THEN 'retry' ELSE 'failed' END::pgboss_job_state,
        retry_limit, retry_count, retry_delay, retry_backoff, retry_delay_max,
        -- Out of retries: unchanged; else due after retry_delay, or with backoff after
        -- half to all of retry_delay × 2^(retry_count + 1, at most 16), capped.
        CASE WHEN retry_count = retry_limit THEN start_after
             WHEN retry_backoff THEN now() + make_interval(secs => least(retry_delay_max,
                  greatest(retry_delay, 1) * power(2, least(retry_count + 1, 16)) / 2
                  * (1 + random())))
             ELSE now() + make_interval(secs => retry_delay)
        END,
        started_on, singleton_key, singleton_on, group_id, group_tier, expire_seconds,
        deletion_seconds, created_on,
        CASE WHEN retry_count < retry_limit THEN NULL ELSE now() END,
        keep_until, policy, '{output}'::jsonb, dead_letter, NULL, heartbeat_seconds, blocked,
        blocking, pending_dependencies
    FROM gone
    ON CONFLICT DO NOTHING
    RETURNING *
), failed AS (
    INSERT INTO {table} (id, name, priority, data, state, retry_limit, retry_count, retry_delay,
        retry_backoff, retry_delay_max, start_after, started_on, singleton_key, singleton_on,
        group_id, group_tier, expire_seconds, deletion_seconds, created_on, completed_on,
        keep_until, policy, output, dead_letter, heartbeat_on, heartbeat_seconds, blocked,
        blocking, pending_dependencies)
    SELECT id, name, priority, data, 'failed'::pgboss_job_state, retry_limit, retry_count,
        retry_delay, retry_backoff, retry_delay_max, start_after, started_on, singleton_key,
        singleton_on, group_id, group_tier, expire_seconds, deletion_seconds, created_on, now(),
        keep_until, policy, '{output}'::jsonb, dead_letter, NULL, heartbeat_seconds, blocked,
        blocking, pending_dependencies
    FROM gone WHERE id NOT IN (SELECT id FROM retried)
    RETURNING *
)
SELECT count(*) AS failed_or_retried FROM (SELECT id FROM retried UNION ALL SELECT id FROM failed) r;
COMMIT;

-- name: deletion
-- deletion in its locked() envelope, once per maintenance interval: finished jobs past
-- their deletion_seconds, and queued ones past keep_until.
BEGIN;
SET LOCAL lock_timeout = 30000;
SET LOCAL idle_in_transaction_session_timeout = 30000;
SELECT pg_advisory_xact_lock(('x' || encode(sha224((current_database() || '.pgboss.pgboss{key}')::bytea), 'hex'))::bit(64)::bigint);
DELETE FROM {table}
WHERE name = ANY({names})
  AND ((deletion_seconds > 0 AND completed_on + deletion_seconds * interval '1s' < now())
       OR (state < 'active' AND keep_until < now()));
COMMIT;

-- name: cleanup_dependencies
-- cleanupDependencies in its envelope: dependency rows whose jobs are gone (none in qbench).
BEGIN;
SET LOCAL lock_timeout = 30000;
SET LOCAL idle_in_transaction_session_timeout = 30000;
SELECT pg_advisory_xact_lock(('x' || encode(sha224((current_database() || '.pgboss.pgboss{key}')::bytea), 'hex'))::bit(64)::bigint);
DELETE FROM pgboss_job_dependency d
WHERE d.parent_name = ANY({names})
  AND NOT EXISTS (SELECT 1 FROM {table} j WHERE j.name = d.parent_name AND j.id = d.parent_id);
COMMIT;

-- name: queues
-- getQueues: every queue's options and cached counts (the queue cache, once a minute, and
-- the first step of each supervise pass).
SELECT q.name, q.policy, q.retry_limit, q.retry_delay, q.retry_backoff, q.retry_delay_max,
    q.expire_seconds, q.retention_seconds, q.deletion_seconds, q.partition,
    q.heartbeat_seconds, q.notify, q.dead_letter, q.deferred_count, q.warning_queued,
    q.queued_count, q.ready_count, q.active_count, q.failed_count, q.total_count,
    q.singletons_active, q.table_name, q.created_on, q.updated_on
FROM pgboss_queue q

-- name: version_gate
-- trySetTimestamp: the flow (5 s), cron (30 s) and BAM (60 s) timers' cluster-wide gate
-- on the version row. {column}: flow_on, cron_on or bam_on. $1: the interval, seconds.
UPDATE pgboss_version SET {column} = now()
WHERE extract(epoch FROM now() - coalesce({column}, now() - interval '1 week')) > $1::float8
RETURNING true

-- name: resolve_flows
-- resolveFlowJobs, as the Navigator runs it per table when its gate wins: completed
-- parents that block dependents, found by the i9 index, locked and unblocked. The
-- steps that decrement their children join job_dependency, empty without flows; they
-- are left out. $1: the table's queues.
WITH locked_parents AS (
    SELECT j.name, j.id FROM {table} j
    WHERE j.blocking AND j.state = 'completed' AND j.name = ANY($1::text[])
    ORDER BY j.name, j.id
    FOR UPDATE OF j SKIP LOCKED
    LIMIT 1000
), cleared AS (
    UPDATE {table} j SET blocking = false FROM locked_parents p
    WHERE j.name = p.name AND j.id = p.id
    RETURNING 1
)
SELECT count(*)::int FROM cleared

-- name: schedules
-- getSchedules, when the cron gate wins.
SELECT * FROM pgboss_schedule ORDER BY name, key

-- name: bam_next
-- The BAM poller's read when its gate wins: the oldest pending migration command.
SELECT * FROM pgboss_bam WHERE status = 'pending' ORDER BY created_on LIMIT 1

-- name: clock
-- The Timekeeper's clock-skew read, at start and every 10 minutes.
SELECT round(date_part('epoch', now()) * 1000) AS time

-- name: claim_plan
-- The fetch with the default queue's literals, for the horizon scenario's EXPLAIN (rolled back).
WITH next AS (
    SELECT j.id FROM {table} j
    WHERE j.name = 'qbench' AND j.state < 'active' AND NOT j.blocked
      AND j.start_after <= now()
    ORDER BY j.priority DESC, j.created_on, j.id
    LIMIT {batch}
    FOR UPDATE OF j SKIP LOCKED
)
UPDATE {table} j
SET state = 'active', started_on = now(), heartbeat_on = now(),
    retry_count = CASE WHEN started_on IS NOT NULL THEN retry_count + 1 ELSE retry_count END
FROM next
WHERE name = 'qbench' AND j.id = next.id
RETURNING j.id, name, data

-- name: depth
-- Jobs not finished: queued or active.
SELECT count(*) FROM pgboss_job WHERE name = 'qbench' AND state <= 'active'

-- name: state
-- Queued, active, completed, all (failed and cancelled jobs count in all only).
SELECT count(*) FILTER (WHERE state < 'active'),
       count(*) FILTER (WHERE state = 'active'),
       count(*) FILTER (WHERE state = 'completed'),
       count(*)
FROM pgboss_job WHERE name = 'qbench'

-- name: left
-- Every job of qbench's queue not completed (queued, active, failed), by seq, once at
-- the end of a process.
SELECT (data->>'seq')::bigint, (data->>'enqueued_at_us')::bigint
FROM pgboss_job WHERE name = 'qbench' AND state <> 'completed'

-- name: completed
SELECT (data->>'seq')::bigint FROM pgboss_job WHERE name = 'qbench' AND state = 'completed'

-- name: sabotage
-- The audit's self-check, not the design: removes the newest queued job (locked here so
-- no fetch takes it meanwhile) behind qbench's back; returns its seq.
DELETE FROM pgboss_job WHERE name = 'qbench' AND id = (
    SELECT id FROM pgboss_job WHERE name = 'qbench' AND state = 'created'
    ORDER BY created_on DESC LIMIT 1 FOR UPDATE SKIP LOCKED
)
RETURNING (data->>'seq')::bigint

-- name: reset
-- Every job. The gates keep their times (an update would leave dead rows that a cost
-- reading could count): a fresh test's first monitoring may wait one interval.
TRUNCATE pgboss_job, pgboss_job_dependency
