-- qbench design "graphile_worker": the database protocol of graphile-worker v0.17.3
-- (github.com/graphile/worker at abfb4cf; its SQL and worker loop are unchanged since the
-- v0.17.3 tag but for formatting), rewritten in qbench's words. graphile-worker itself is
-- not installed: these are its tables as migrations 000001-000019 leave them (sql/, the
-- core rebuilt by 000011, renamed by 000016, the insert trigger dropped by 000018), its
-- add_job/add_jobs functions as 000018 defines them, and statements doing what
-- src/sql/getJobs.ts, completeJobs.ts and resetLockedAt.ts do.
--
-- Where qbench differs from graphile-worker, on purpose:
-- * the tables live in qbench's schema with a `graphile_` prefix, not in the
--   graphile_worker schema with a `_private_` one; the migrations table, the public
--   `jobs` view, the known-crontabs table, RLS and the admin functions (complete_jobs,
--   reschedule_jobs, ...) are left out: the worker loop touches none of them;
-- * the job's sequence number and intended enqueue time travel in the payload (json),
--   beside qbench's payload, as a user's task payload would;
-- * graphile_qbench_done is qbench's record of completions, not graphile-worker's (which
--   deletes a completed job and keeps nothing): the completion statements fill it in the
--   same statement as the delete when benchmark.graphile_completion_record is on (the
--   default), so that the audit and crash trials can tell a lost job from a completed
--   one. Off, the protocol is graphile-worker's alone and the audit relies on the
--   workers' records, as for pgmq's delete;
-- * in the volatile tier every table is UNLOGGED (graphile-worker has no such option).
--
-- `psql -f pg_queue_graphile_worker.sql` creates the schema and stops at \quit.
-- Everything after \quit is the statements qbench prepares, each after a "-- name:" line.

-- Task identifiers (000011), created lazily by add_jobs.
CREATE TABLE IF NOT EXISTS graphile_tasks (
    id         int  PRIMARY KEY GENERATED ALWAYS AS IDENTITY,
    identifier text NOT NULL UNIQUE CHECK (length(identifier) <= 128)
);

-- Named job queues (000011): a queue is locked as a whole while one of its jobs runs.
CREATE TABLE IF NOT EXISTS graphile_job_queues (
    id           int         PRIMARY KEY GENERATED ALWAYS AS IDENTITY,
    queue_name   text        NOT NULL UNIQUE CHECK (length(queue_name) <= 128),
    locked_at    timestamptz,
    locked_by    text,
    is_available boolean     GENERATED ALWAYS AS (locked_at IS NULL) STORED NOT NULL
);

-- The job table (000011; 000013 made max_attempts and priority smallint). Neither
-- foreign id is a foreign key: graphile-worker leaves them out for speed.
CREATE TABLE IF NOT EXISTS graphile_jobs (
    id           bigint      PRIMARY KEY GENERATED ALWAYS AS IDENTITY,
    job_queue_id int,
    task_id      int         NOT NULL,
    payload      json        NOT NULL DEFAULT '{}'::json,
    priority     smallint    NOT NULL DEFAULT 0,
    run_at       timestamptz NOT NULL DEFAULT now(),
    attempts     smallint    NOT NULL DEFAULT 0,
    max_attempts smallint    NOT NULL DEFAULT 25 CHECK (max_attempts >= 1),
    last_error   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    key          text        UNIQUE CHECK (length(key) > 0 AND length(key) <= 512),
    locked_at    timestamptz,
    locked_by    text,
    revision     integer     NOT NULL DEFAULT 0,
    flags        jsonb,
    -- Not run_at: the claim filters that itself.
    is_available boolean     GENERATED ALWAYS AS (locked_at IS NULL AND attempts < max_attempts)
                             STORED NOT NULL
);

-- The claim's two partial indexes (000011): every available job, and those of no queue.
CREATE INDEX IF NOT EXISTS graphile_jobs_main_index ON graphile_jobs
    USING btree (priority, run_at) INCLUDE (id, task_id, job_queue_id)
    WHERE is_available = true;
CREATE INDEX IF NOT EXISTS graphile_jobs_no_queue_index ON graphile_jobs
    USING btree (priority, run_at) INCLUDE (id, task_id)
    WHERE is_available = true AND job_queue_id IS NULL;

-- What add_jobs takes, one per job (000011; 000013's smallints).
DO $$ BEGIN
    CREATE TYPE graphile_job_spec AS (
        identifier text, payload json, queue_name text, run_at timestamptz,
        max_attempts smallint, job_key text, priority smallint, flags text[]);
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

-- add_jobs (000018): the tasks and queues the specs name are made to exist, a locked or
-- permanently failed job holding one of their keys gives the key up, one NOTIFY announces
-- the batch (a random number in it so that PostgreSQL does not fold two into one), and
-- the jobs are inserted; a key already held by a waiting job replaces that job's payload.
CREATE OR REPLACE FUNCTION graphile_add_jobs(specs graphile_job_spec[],
                                             job_key_preserve_run_at boolean DEFAULT false)
RETURNS SETOF graphile_jobs LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO graphile_tasks AS t (identifier)
    SELECT DISTINCT s.identifier FROM unnest(specs) s
    ON CONFLICT DO NOTHING;

    INSERT INTO graphile_job_queues AS q (queue_name)
    SELECT DISTINCT s.queue_name FROM unnest(specs) s WHERE s.queue_name IS NOT NULL
    ON CONFLICT DO NOTHING;

    UPDATE graphile_jobs AS j
    SET key = NULL, attempts = j.max_attempts, updated_at = now()
    FROM unnest(specs) s
    WHERE s.job_key IS NOT NULL AND j.key = s.job_key AND j.is_available IS NOT true;

    PERFORM pg_notify('jobs:insert',
        format('{"r":%s,"count":%s}', random(), array_length(specs, 1)));

    RETURN QUERY
    INSERT INTO graphile_jobs AS j (job_queue_id, task_id, payload, run_at, max_attempts,
                                    key, priority, flags)
    SELECT q.id, t.id, coalesce(s.payload, '{}'::json), coalesce(s.run_at, now()),
           coalesce(s.max_attempts, 25), s.job_key, coalesce(s.priority, 0),
           (SELECT jsonb_object_agg(f, true) FROM unnest(s.flags) AS fl(f))
    FROM unnest(specs) s
    JOIN graphile_tasks t ON t.identifier = s.identifier
    LEFT JOIN graphile_job_queues q ON q.queue_name = s.queue_name
    ON CONFLICT (key) DO UPDATE SET
        job_queue_id = excluded.job_queue_id,
        task_id = excluded.task_id,
        payload = CASE
            WHEN json_typeof(j.payload) = 'array' AND json_typeof(excluded.payload) = 'array'
            THEN (j.payload::jsonb || excluded.payload::jsonb)::json
            ELSE excluded.payload END,
        max_attempts = excluded.max_attempts,
        run_at = CASE WHEN job_key_preserve_run_at AND j.attempts = 0 THEN j.run_at
                      ELSE excluded.run_at END,
        priority = excluded.priority,
        revision = j.revision + 1,
        flags = excluded.flags,
        attempts = 0,
        last_error = NULL,
        updated_at = now()
    WHERE j.locked_at IS NULL
    RETURNING *;
END
$fn$;

-- add_job (000018) in its default key mode: add_jobs with one spec, its first row back.
CREATE OR REPLACE FUNCTION graphile_add_job(identifier text, payload json DEFAULT NULL,
    queue_name text DEFAULT NULL, run_at timestamptz DEFAULT NULL,
    max_attempts int DEFAULT NULL, job_key text DEFAULT NULL, priority int DEFAULT NULL,
    flags text[] DEFAULT NULL, job_key_mode text DEFAULT 'replace')
RETURNS graphile_jobs LANGUAGE plpgsql AS $fn$
DECLARE
    v_job graphile_jobs;
BEGIN
    IF job_key IS NOT NULL AND job_key_mode IS NOT NULL
       AND job_key_mode NOT IN ('replace', 'preserve_run_at') THEN
        -- qbench never sets a key: the unsafe_dedupe mode is not modelled.
        RAISE EXCEPTION 'job_key_mode % is not modelled by qbench', job_key_mode;
    END IF;
    SELECT * INTO v_job FROM graphile_add_jobs(
        ARRAY[(identifier, payload, queue_name, run_at, max_attempts::smallint, job_key,
               priority::smallint, flags)::graphile_job_spec],
        job_key_mode = 'preserve_run_at')
    LIMIT 1;
    RETURN v_job;
END
$fn$;

-- qbench's record of completions (see the header): one row per job a completion deleted.
CREATE TABLE IF NOT EXISTS graphile_qbench_done (seq bigint NOT NULL);

\quit

-- name: enqueue_one
-- makeAddJob (src/helpers.ts), as workerUtils.addJob sends it: one autocommit call per
-- job, every other argument left to add_job's defaults. $1: the payload.
SELECT * FROM graphile_add_job(identifier => 'qbench'::text, payload => $1::text::json,
    queue_name => NULL::text, run_at => NULL::timestamptz, max_attempts => NULL::int,
    job_key => NULL::text, priority => NULL::int, flags => NULL::text[],
    job_key_mode => NULL::text)

-- name: enqueue
-- makeAddJobs (src/helpers.ts, 0.17): one call per batch, the specs as one json array.
-- $1: the specs.
SELECT * FROM graphile_add_jobs(
    array(SELECT json_populate_recordset(NULL::graphile_job_spec, $1::text::json)), false)

-- name: enqueue_retry
-- qbench's, not graphile-worker's (whose add_jobs is not idempotent without a key):
-- after an error of unknown outcome, only the jobs whose seq is neither queued nor in
-- qbench's record. Unindexed: paid on a retry only. Without the record a job already
-- completed is added again, and the audit names it duplicated.
SELECT count(*) FROM graphile_add_jobs(array(
    SELECT s FROM json_populate_recordset(NULL::graphile_job_spec, $1::text::json) s
    WHERE NOT EXISTS (SELECT 1 FROM graphile_jobs j
                      WHERE (j.payload->>'seq') = (s.payload->>'seq'))
      AND NOT EXISTS (SELECT 1 FROM graphile_qbench_done d
                      WHERE d.seq = (s.payload->>'seq')::bigint)), false)

-- name: claim
-- batchGetJobs (src/sql/getJobs.ts) with named-queue strategy 2, as a worker with no
-- local queue runs it: one job (LIMIT 1, whatever dequeue_batch says), available and due, of the pool's task
-- identifiers, of no queue or of a queue no one holds (that queue locked up front,
-- skipping those others hold), in priority then run_at order (no id tie-break), locked
-- skipping those others hold; its queue locked and the job locked by the pool, its
-- attempts counted at the claim. $1: the pool's id, $2: the task ids.
WITH j AS (
    SELECT jobs.job_queue_id, jobs.priority, jobs.run_at, jobs.id
    FROM graphile_jobs AS jobs
    WHERE jobs.is_available = true
      AND run_at <= now()
      AND task_id = any($2::int[])
      AND (jobs.job_queue_id IS NULL
           OR jobs.job_queue_id IN (SELECT id FROM graphile_job_queues AS job_queues
                                    WHERE job_queues.is_available = true
                                    FOR UPDATE SKIP LOCKED))
    ORDER BY priority ASC, run_at ASC
    LIMIT 1
    FOR UPDATE SKIP LOCKED
), q AS (
    UPDATE graphile_job_queues AS job_queues
    SET locked_by = $1::text, locked_at = now()
    FROM j WHERE job_queues.id = j.job_queue_id
)
UPDATE graphile_jobs AS jobs
SET attempts = jobs.attempts + 1, locked_by = $1::text, locked_at = now()
FROM j WHERE jobs.id = j.id
RETURNING *

-- name: task_make
-- getTaskDetails (src/taskIdentifiers.ts), once per pool: the identifiers made to exist,
-- then (task_ids) read back.
INSERT INTO graphile_tasks (identifier) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING

-- name: task_ids
SELECT id FROM graphile_tasks WHERE identifier = any($1::text[])

-- name: complete
-- batchCompleteJobs (src/sql/completeJobs.ts) for one job of no queue: deleted by id,
-- with no check of who holds it (one job, the single-id form, as graphile-worker picks
-- it). graphile-worker records nothing; qbench's record is the `complete_recorded` form.
-- Both answer with the count of jobs deleted.
DELETE FROM graphile_jobs AS jobs WHERE id = $1::bigint

-- name: complete_recorded
WITH gone AS (
    DELETE FROM graphile_jobs AS jobs WHERE id = $1::bigint RETURNING payload
)
INSERT INTO graphile_qbench_done (seq) SELECT (payload->>'seq')::bigint FROM gone

-- name: complete_many
-- The same for a batch (completeJobBatchDelay ≥ 0), one statement per batch of more than
-- one job. qbench's, not graphile-worker's: `RETURNING id`, to learn which it deleted.
DELETE FROM graphile_jobs AS jobs USING unnest($1::bigint[]) n(n) WHERE id = n RETURNING id

-- name: complete_many_recorded
WITH gone AS (
    DELETE FROM graphile_jobs AS jobs USING unnest($1::bigint[]) n(n) WHERE id = n
    RETURNING id, payload
), rec AS (
    INSERT INTO graphile_qbench_done (seq) SELECT (payload->>'seq')::bigint FROM gone
)
SELECT id FROM gone

-- name: reset_locked
-- resetLockedAt (src/sql/resetLockedAt.ts): jobs and queues locked longer than $1
-- seconds (graphile-worker's fixed 4 hours) unlocked; the jobs' attempts stay counted.
WITH j AS (
    UPDATE graphile_jobs
    SET locked_at = NULL, locked_by = NULL, run_at = greatest(run_at, now())
    WHERE locked_at < now() - make_interval(secs => $1)
    RETURNING id
), q AS (
    UPDATE graphile_job_queues SET locked_at = NULL, locked_by = NULL
    WHERE locked_at < now() - make_interval(secs => $1)
)
SELECT count(*) FROM j

-- name: claim_plan
-- The claim with the one task id, for the horizon scenario's EXPLAIN (rolled back).
WITH j AS (
    SELECT jobs.job_queue_id, jobs.priority, jobs.run_at, jobs.id
    FROM graphile_jobs AS jobs
    WHERE jobs.is_available = true
      AND run_at <= now()
      AND task_id = any(ARRAY(SELECT id FROM graphile_tasks WHERE identifier = 'qbench'))
      AND (jobs.job_queue_id IS NULL
           OR jobs.job_queue_id IN (SELECT id FROM graphile_job_queues AS job_queues
                                    WHERE job_queues.is_available = true
                                    FOR UPDATE SKIP LOCKED))
    ORDER BY priority ASC, run_at ASC
    LIMIT 1
    FOR UPDATE SKIP LOCKED
), q AS (
    UPDATE graphile_job_queues AS job_queues
    SET locked_by = 'pool-qbench', locked_at = now()
    FROM j WHERE job_queues.id = j.job_queue_id
)
UPDATE graphile_jobs AS jobs
SET attempts = jobs.attempts + 1, locked_by = 'pool-qbench', locked_at = now()
FROM j WHERE jobs.id = j.id
RETURNING *

-- name: depth
-- Jobs not completed: a completed job is deleted.
SELECT count(*) FROM graphile_jobs

-- name: state
-- Waiting, locked, completed (qbench's record), all.
SELECT count(*) FILTER (WHERE locked_at IS NULL),
       count(*) FILTER (WHERE locked_at IS NOT NULL),
       (SELECT count(*) FROM graphile_qbench_done)
FROM graphile_jobs

-- name: state_unrecorded
-- Without qbench's record, completed is the jobs ever inserted since the last reset
-- (the identity's last value) minus those queued: an upper bound, as for pgmq's delete.
SELECT count(*) FILTER (WHERE locked_at IS NULL),
       count(*) FILTER (WHERE locked_at IS NOT NULL),
       (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM graphile_jobs_id_seq)
         - count(*)
FROM graphile_jobs

-- name: left
-- Every queued job by seq, once at the end of a process.
SELECT (payload->>'seq')::bigint, (payload->>'enqueued_at_us')::bigint FROM graphile_jobs

-- name: completed
SELECT seq FROM graphile_qbench_done

-- name: sabotage
-- The audit's self-check, not the design: removes the newest waiting job (locked here so
-- no claim takes it meanwhile) behind qbench's back; returns its seq. Nothing is recorded.
DELETE FROM graphile_jobs WHERE id = (
    SELECT id FROM graphile_jobs WHERE locked_at IS NULL
    ORDER BY id DESC LIMIT 1 FOR UPDATE SKIP LOCKED
)
RETURNING (payload->>'seq')::bigint

-- name: reset
TRUNCATE graphile_jobs, graphile_job_queues, graphile_tasks, graphile_qbench_done
    RESTART IDENTITY
