-- qbench design "procrastinate": the database protocol of Procrastinate 3.9.0
-- (github.com/procrastinate-org/procrastinate, tag 3.9.0 = 28462ad6; nothing under sql/
-- or worker.py changed after it), rewritten in qbench's words. Procrastinate itself is
-- not installed: these are its tables, types, functions and triggers as
-- procrastinate/sql/schema.sql creates them on a fresh install, and the statements of
-- procrastinate/sql/queries.sql that its worker and job manager send.
--
-- Where qbench differs from Procrastinate, on purpose:
-- * the objects keep Procrastinate's names (qbench runs the real library in a schema of
--   its own when both share a server);
-- * the functions the worker never calls are left out: periodic defers, cancel, the
--   retry of v1, the abort notification and event functions (their triggers fire only on
--   an abort request, which qbench never makes);
-- * the functions and statements say what Procrastinate's do in qbench's own SQL: the
--   same rows read, locked and written, in other words (a VALUES table for the events'
--   status mapping, a row comparison for the lock's queue order, IN for a join);
-- * the job's sequence number and intended enqueue time travel in `args`, beside
--   qbench's payload, as a task's keyword arguments would;
-- * in the volatile tier every table is UNLOGGED (Procrastinate has no such option).
--
-- `psql -f pg_queue_procrastinate.sql` creates the schema and stops at \quit.
-- Everything after \quit is the statements qbench prepares, each after a "-- name:" line.

DO $$ BEGIN
    CREATE TYPE procrastinate_job_status AS ENUM
        ('todo', 'doing', 'succeeded', 'failed', 'cancelled', 'aborting', 'aborted');
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

DO $$ BEGIN
    CREATE TYPE procrastinate_job_event_type AS ENUM
        ('deferred', 'started', 'deferred_for_retry', 'failed', 'succeeded', 'cancelled',
         'abort_requested', 'aborted', 'scheduled', 'retried');
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

-- What defer_jobs takes, one per job.
DO $$ BEGIN
    CREATE TYPE procrastinate_job_to_defer_v1 AS (
        queue_name varchar, task_name varchar, priority int, lock text, queueing_lock text,
        args jsonb, scheduled_at timestamptz);
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

-- Workers and their heartbeats (3.1+).
CREATE TABLE IF NOT EXISTS procrastinate_workers (
    id             bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY,
    last_heartbeat timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS procrastinate_jobs (
    id              bigserial PRIMARY KEY,
    queue_name      varchar(128) NOT NULL,
    task_name       varchar(128) NOT NULL,
    priority        integer NOT NULL DEFAULT 0,
    lock            text,
    queueing_lock   text,
    args            jsonb NOT NULL DEFAULT '{}',
    status          procrastinate_job_status NOT NULL DEFAULT 'todo',
    scheduled_at    timestamptz,
    attempts        integer NOT NULL DEFAULT 0,
    abort_requested boolean NOT NULL DEFAULT false,
    worker_id       bigint REFERENCES procrastinate_workers (id) ON DELETE SET NULL,
    CONSTRAINT check_not_todo_abort_requested CHECK (NOT (status = 'todo' AND abort_requested))
);

CREATE TABLE IF NOT EXISTS procrastinate_periodic_defers (
    id              bigserial PRIMARY KEY,
    task_name       varchar(128) NOT NULL,
    defer_timestamp bigint,
    job_id          bigint REFERENCES procrastinate_jobs (id),
    periodic_id     varchar(128) NOT NULL DEFAULT '',
    CONSTRAINT procrastinate_periodic_defers_unique UNIQUE (task_name, periodic_id, defer_timestamp)
);

-- Every status change of every job, kept (events go with their job).
CREATE TABLE IF NOT EXISTS procrastinate_events (
    id     bigserial PRIMARY KEY,
    job_id bigint NOT NULL REFERENCES procrastinate_jobs ON DELETE CASCADE,
    type   procrastinate_job_event_type,
    at     timestamptz DEFAULT now()
);

-- One queued job per queueing lock, one running job per lock.
CREATE UNIQUE INDEX IF NOT EXISTS procrastinate_jobs_queueing_lock_idx_v1
    ON procrastinate_jobs (queueing_lock) WHERE status = 'todo';
CREATE UNIQUE INDEX IF NOT EXISTS procrastinate_jobs_lock_idx_v1
    ON procrastinate_jobs (lock) WHERE status = 'doing';
CREATE INDEX IF NOT EXISTS idx_procrastinate_jobs_worker_not_null
    ON procrastinate_jobs (worker_id) WHERE worker_id IS NOT NULL AND status = 'doing';
CREATE INDEX IF NOT EXISTS procrastinate_jobs_queue_name_idx_v1 ON procrastinate_jobs (queue_name);
CREATE INDEX IF NOT EXISTS procrastinate_jobs_id_lock_idx_v1
    ON procrastinate_jobs (id, lock) WHERE status IN ('todo', 'doing');
-- The fetch's order, over the queued jobs.
CREATE INDEX IF NOT EXISTS procrastinate_jobs_priority_idx_v1
    ON procrastinate_jobs (priority DESC, id ASC) WHERE status = 'todo';
CREATE INDEX IF NOT EXISTS procrastinate_events_job_id_fkey_v1 ON procrastinate_events (job_id);
CREATE INDEX IF NOT EXISTS procrastinate_periodic_defers_job_id_fkey_v1
    ON procrastinate_periodic_defers (job_id);
CREATE INDEX IF NOT EXISTS idx_procrastinate_workers_last_heartbeat
    ON procrastinate_workers (last_heartbeat);

-- defer_jobs: the jobs inserted in one statement, their ids back.
CREATE OR REPLACE FUNCTION procrastinate_defer_jobs_v1(jobs procrastinate_job_to_defer_v1[])
RETURNS bigint[] LANGUAGE plpgsql AS $fn$
DECLARE
    ids bigint[];
BEGIN
    WITH added AS (
        INSERT INTO procrastinate_jobs (queue_name, task_name, priority, lock, queueing_lock,
                                        args, scheduled_at)
        SELECT (j).queue_name, (j).task_name, (j).priority, (j).lock, (j).queueing_lock,
               (j).args, (j).scheduled_at
        FROM unnest(jobs) AS j
        RETURNING id
    )
    SELECT array_agg(id) FROM added INTO ids;
    RETURN ids;
END
$fn$;

-- fetch_job: the first queued job (highest priority, then oldest id) of the queues asked
-- for (all, when NULL), due, whose lock (if it has one) is not held by a running job nor
-- by a queued job ahead of it; locked skipping those others hold, and set running by
-- this worker. One job; a row of NULLs when none.
CREATE OR REPLACE FUNCTION procrastinate_fetch_job_v2(target_queue_names varchar[], p_worker_id bigint)
RETURNS procrastinate_jobs LANGUAGE plpgsql AS $fn$
DECLARE
    taken procrastinate_jobs;
BEGIN
    WITH pick AS (
        SELECT j.id FROM procrastinate_jobs j
        WHERE j.status = 'todo'
          AND (j.scheduled_at IS NULL OR j.scheduled_at <= now())
          AND (target_queue_names IS NULL OR j.queue_name = ANY (target_queue_names))
          AND (j.lock IS NULL OR NOT EXISTS (
                SELECT FROM procrastinate_jobs ahead
                WHERE ahead.lock = j.lock
                  AND (ahead.status = 'doing'
                       OR (ahead.status = 'todo'
                           AND (ahead.priority, -ahead.id) > (j.priority, -j.id)))))
        ORDER BY j.priority DESC, j.id
        LIMIT 1
        FOR UPDATE OF j SKIP LOCKED
    )
    UPDATE procrastinate_jobs AS t SET status = 'doing', worker_id = p_worker_id
    FROM pick WHERE t.id = pick.id
    RETURNING t.* INTO taken;
    RETURN taken;
END
$fn$;

-- finish_job: the job ended (succeeded, failed or aborted), counted as an attempt if it
-- ran; with delete_job, deleted instead. A job neither queued nor running is an error.
CREATE OR REPLACE FUNCTION procrastinate_finish_job_v1(job_id bigint, end_status procrastinate_job_status,
                                                       delete_job boolean)
RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    done bigint;
BEGIN
    IF end_status NOT IN ('succeeded', 'failed', 'aborted') THEN
        RAISE 'End status should be either "succeeded", "failed" or "aborted" (job id: %)', job_id;
    END IF;
    IF delete_job THEN
        DELETE FROM procrastinate_jobs WHERE id = job_id AND status IN ('todo', 'doing')
        RETURNING id INTO done;
    ELSE
        UPDATE procrastinate_jobs
        SET status = end_status, abort_requested = false,
            attempts = CASE status WHEN 'doing' THEN attempts + 1 ELSE attempts END
        WHERE id = job_id AND status IN ('todo', 'doing')
        RETURNING id INTO done;
    END IF;
    IF done IS NULL THEN
        RAISE 'Job was not found or not in "doing" or "todo" status (job id: %)', job_id;
    END IF;
END
$fn$;

-- retry_job (v2): a running (or failed) job queued again at retry_at, its attempt
-- counted, its priority, queue and lock replaced where new ones are given; a running
-- job whose abort was requested fails instead.
CREATE OR REPLACE FUNCTION procrastinate_retry_job_v2(job_id bigint, retry_at timestamptz,
    new_priority integer, new_queue_name varchar, new_lock varchar)
RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    cur procrastinate_jobs;
BEGIN
    SELECT * INTO cur FROM procrastinate_jobs
    WHERE id = job_id AND status IN ('doing', 'failed') FOR UPDATE;
    IF cur.id IS NULL THEN
        RAISE 'Job was not found or has an invalid status to retry (job id: %)', job_id;
    END IF;
    IF cur.status = 'doing' AND cur.abort_requested THEN
        UPDATE procrastinate_jobs SET status = 'failed' WHERE id = job_id;
    ELSE
        UPDATE procrastinate_jobs
        SET status = 'todo', attempts = cur.attempts + 1, scheduled_at = retry_at,
            priority = coalesce(new_priority, cur.priority),
            queue_name = coalesce(new_queue_name, cur.queue_name),
            lock = coalesce(new_lock, cur.lock)
        WHERE id = job_id;
    END IF;
END
$fn$;

-- The insert's two notifications per job: the job's queue's channel and every queue's.
CREATE OR REPLACE FUNCTION procrastinate_notify_queue_job_inserted_v1()
RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
    payload text;
BEGIN
    SELECT json_build_object('type', 'job_inserted', 'job_id', NEW.id)::text INTO payload;
    PERFORM pg_notify('procrastinate_queue_v1#' || NEW.queue_name, payload);
    PERFORM pg_notify('procrastinate_any_queue_v1', payload);
    RETURN NEW;
END
$fn$;

-- The events: `deferred` at insert, one per status change (started, succeeded, ...).
CREATE OR REPLACE FUNCTION procrastinate_trigger_function_status_events_insert_v1()
RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO procrastinate_events (job_id, type) VALUES (NEW.id, 'deferred');
    RETURN NEW;
END
$fn$;

CREATE OR REPLACE FUNCTION procrastinate_trigger_function_status_events_update_v1()
RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    -- The event each status change writes (none for the others).
    INSERT INTO procrastinate_events (job_id, type)
    SELECT NEW.id, change.event::procrastinate_job_event_type
    FROM (VALUES ('todo', 'doing', 'started'), ('doing', 'todo', 'deferred_for_retry'),
                 ('doing', 'failed', 'failed'), ('doing', 'succeeded', 'succeeded'),
                 ('todo', 'cancelled', 'cancelled'), ('todo', 'failed', 'cancelled'),
                 ('todo', 'succeeded', 'cancelled'), ('doing', 'aborted', 'aborted'),
                 ('failed', 'todo', 'retried')) AS change (was, now_is, event)
    WHERE change.was = OLD.status::text AND change.now_is = NEW.status::text;
    RETURN NEW;
END
$fn$;

CREATE OR REPLACE FUNCTION procrastinate_trigger_function_scheduled_events_v1()
RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO procrastinate_events (job_id, type, at) VALUES (NEW.id, 'scheduled', NEW.scheduled_at);
    RETURN NEW;
END
$fn$;

CREATE OR REPLACE FUNCTION procrastinate_unlink_periodic_defers_v1()
RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    UPDATE procrastinate_periodic_defers SET job_id = NULL WHERE job_id = OLD.id;
    RETURN OLD;
END
$fn$;

CREATE OR REPLACE FUNCTION procrastinate_register_worker_v1()
RETURNS TABLE(worker_id bigint) LANGUAGE plpgsql AS $fn$
BEGIN
    RETURN QUERY INSERT INTO procrastinate_workers DEFAULT VALUES RETURNING procrastinate_workers.id;
END
$fn$;

-- The worker's row deleted at its stop; the foreign key then clears worker_id on every
-- job it ran, finished ones included.
CREATE OR REPLACE FUNCTION procrastinate_unregister_worker_v1(worker_id bigint)
RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
    DELETE FROM procrastinate_workers WHERE id = worker_id;
END
$fn$;

CREATE OR REPLACE FUNCTION procrastinate_update_heartbeat_v1(worker_id bigint)
RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
    UPDATE procrastinate_workers SET last_heartbeat = now() WHERE id = worker_id;
END
$fn$;

CREATE OR REPLACE FUNCTION procrastinate_prune_stalled_workers_v1(seconds_since_heartbeat float)
RETURNS TABLE(worker_id bigint) LANGUAGE plpgsql AS $fn$
BEGIN
    RETURN QUERY DELETE FROM procrastinate_workers
    WHERE last_heartbeat < now() - (seconds_since_heartbeat || 'SECOND')::interval
    RETURNING procrastinate_workers.id;
END
$fn$;

-- The triggers (row-level; the abort ones are left out with their functions, above).
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'procrastinate_jobs_notify_queue_job_inserted_v1') THEN
        CREATE TRIGGER procrastinate_jobs_notify_queue_job_inserted_v1
            AFTER INSERT ON procrastinate_jobs FOR EACH ROW WHEN (new.status = 'todo')
            EXECUTE PROCEDURE procrastinate_notify_queue_job_inserted_v1();
        CREATE TRIGGER procrastinate_trigger_status_events_update_v1
            AFTER UPDATE OF status ON procrastinate_jobs FOR EACH ROW
            EXECUTE PROCEDURE procrastinate_trigger_function_status_events_update_v1();
        CREATE TRIGGER procrastinate_trigger_status_events_insert_v1
            AFTER INSERT ON procrastinate_jobs FOR EACH ROW WHEN (new.status = 'todo')
            EXECUTE PROCEDURE procrastinate_trigger_function_status_events_insert_v1();
        CREATE TRIGGER procrastinate_trigger_scheduled_events_v1
            AFTER UPDATE OR INSERT ON procrastinate_jobs FOR EACH ROW
            WHEN (new.scheduled_at IS NOT NULL AND new.status = 'todo')
            EXECUTE PROCEDURE procrastinate_trigger_function_scheduled_events_v1();
        CREATE TRIGGER procrastinate_trigger_delete_jobs_v1
            BEFORE DELETE ON procrastinate_jobs FOR EACH ROW
            EXECUTE PROCEDURE procrastinate_unlink_periodic_defers_v1();
    END IF;
END $$;

\quit

-- name: defer
-- defer_jobs (queries.sql), as JobManager.batch_defer_jobs_async sends it: one call per
-- defer (a one-job array) or per batch_defer. $1: the jobs, one json object each.
SELECT unnest(procrastinate_defer_jobs_v1(ARRAY(
    SELECT ROW(j.queue_name, j.task_name, j.priority, j.lock, j.queueing_lock, j.args,
               j.scheduled_at)::procrastinate_job_to_defer_v1
    FROM json_populate_recordset(NULL::procrastinate_job_to_defer_v1, $1::text::json) j
))) AS id

-- name: defer_retry
-- qbench's, not Procrastinate's (whose defer is not idempotent without a queueing lock):
-- after an error of unknown outcome, only the jobs whose seq no row holds. Unindexed: paid
-- on a retry only.
SELECT unnest(procrastinate_defer_jobs_v1(ARRAY(
    SELECT ROW(j.queue_name, j.task_name, j.priority, j.lock, j.queueing_lock, j.args,
               j.scheduled_at)::procrastinate_job_to_defer_v1
    FROM json_populate_recordset(NULL::procrastinate_job_to_defer_v1, $1::text::json) j
    WHERE NOT EXISTS (SELECT 1 FROM procrastinate_jobs p
                      WHERE p.args->'seq' = j.args->'seq')
))) AS id

-- name: fetch
-- fetch_job (queries.sql): every queue (the worker's default), this worker's id.
-- $1: the worker id.
SELECT id, status, task_name, priority, lock, queueing_lock, args, scheduled_at, queue_name,
       attempts, worker_id
FROM procrastinate_fetch_job_v2(NULL::varchar[], $1::bigint)

-- name: finish
-- finish_job (queries.sql). $1 job id, $2 the end status, $3 delete_job.
SELECT procrastinate_finish_job_v1($1::bigint, $2::text::procrastinate_job_status, $3::bool)

-- name: register
-- register_worker, after prune, at the worker's start.
SELECT * FROM procrastinate_register_worker_v1()

-- name: prune
-- prune_stalled_workers at the worker's start (its fixed 30 s). $1: seconds.
SELECT * FROM procrastinate_prune_stalled_workers_v1($1::float8)

-- name: unregister
-- unregister_worker, at the worker's graceful stop. $1: the worker id.
SELECT procrastinate_unregister_worker_v1($1::bigint)

-- name: heartbeat
-- update_heartbeat, every update_heartbeat_interval. $1: the worker id.
SELECT procrastinate_update_heartbeat_v1($1::bigint)

-- name: to_abort
-- list_jobs_to_abort, every abort_job_polling_interval while a job runs (every queue).
SELECT id FROM procrastinate_jobs WHERE abort_requested AND status = 'doing'

-- name: stalled
-- select_stalled_jobs_by_heartbeat (queries.sql), as the documented recipe for stalled
-- jobs (docs/howto/production/retry_stalled_jobs.md) calls it (every queue and task):
-- running jobs of no worker or of one whose heartbeat is older than $1 seconds.
SELECT j.id, j.status, j.task_name, j.priority, j.lock, j.queueing_lock, j.args,
       j.scheduled_at, j.queue_name, j.attempts, j.worker_id
FROM procrastinate_jobs j
WHERE j.status = 'doing'
  AND (j.worker_id IS NULL
       OR j.worker_id IN (SELECT w.id FROM procrastinate_workers w
                          WHERE w.last_heartbeat < now() - make_interval(secs => $1::float8)))

-- name: retry
-- retry_job (queries.sql), as the recipe retries a stalled job: due now, its priority,
-- queue and lock kept. $1: the job id.
SELECT procrastinate_retry_job_v2($1::bigint, now(), NULL, NULL, NULL)

-- name: claim_plan
-- The fetch function's statement with its arguments written in (every queue; a worker id
-- of NULL breaks no constraint), for the horizon scenario's EXPLAIN (rolled back).
WITH pick AS (
    SELECT j.id FROM procrastinate_jobs j
    WHERE j.status = 'todo'
      AND (j.scheduled_at IS NULL OR j.scheduled_at <= now())
      AND (j.lock IS NULL OR NOT EXISTS (
            SELECT FROM procrastinate_jobs ahead
            WHERE ahead.lock = j.lock
              AND (ahead.status = 'doing'
                   OR (ahead.status = 'todo'
                       AND (ahead.priority, -ahead.id) > (j.priority, -j.id)))))
    ORDER BY j.priority DESC, j.id
    LIMIT 1
    FOR UPDATE OF j SKIP LOCKED
)
UPDATE procrastinate_jobs AS t SET status = 'doing', worker_id = NULL
FROM pick WHERE t.id = pick.id
RETURNING t.*

-- name: depth
SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')

-- name: state
-- Queued, running, succeeded, all.
SELECT count(*) FILTER (WHERE status = 'todo'),
       count(*) FILTER (WHERE status = 'doing'),
       count(*) FILTER (WHERE status = 'succeeded'),
       count(*)
FROM procrastinate_jobs

-- name: state_unrecorded
-- With delete_jobs, finished jobs are gone: completed is the jobs ever deferred (the id
-- sequence's last value) minus those left, an upper bound, as for pgmq's delete.
SELECT count(*) FILTER (WHERE status = 'todo'),
       count(*) FILTER (WHERE status = 'doing'),
       (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM procrastinate_jobs_id_seq)
         - count(*),
       (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM procrastinate_jobs_id_seq)
FROM procrastinate_jobs

-- name: left
-- Every job not succeeded, by seq, once at the end of a process.
SELECT (args->>'seq')::bigint, (args->>'enqueued_at_us')::bigint
FROM procrastinate_jobs WHERE status <> 'succeeded'

-- name: completed
SELECT (args->>'seq')::bigint FROM procrastinate_jobs WHERE status = 'succeeded'

-- name: sabotage
-- The audit's self-check, not the design: removes the newest queued job (locked here so
-- no fetch takes it meanwhile) behind qbench's back; returns its seq.
DELETE FROM procrastinate_jobs WHERE id = (
    SELECT id FROM procrastinate_jobs WHERE status = 'todo'
    ORDER BY id DESC LIMIT 1 FOR UPDATE SKIP LOCKED
)
RETURNING (args->>'seq')::bigint

-- name: reset
TRUNCATE procrastinate_events, procrastinate_periodic_defers, procrastinate_jobs,
    procrastinate_workers RESTART IDENTITY
