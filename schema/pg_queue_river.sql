-- qbench design "river": the database protocol of River v0.43.0 (github.com/riverqueue/river
-- at fdf6cdf; its job SQL is unchanged since the v0.43.0 tag), rewritten in qbench's words.
-- River itself is not installed: this is river_job as River's migrations 002-007 leave it
-- (riverdriver/riverpgxv5/migration/main/), and statements doing what River's queries of
-- riverdriver/riverpgxv5/internal/dbsqlc/river_job.sql and river_leader.sql do.
--
-- Where qbench differs from River, on purpose:
-- * the job's sequence number and intended enqueue time travel in args (jsonb), beside
--   the payload, as a user's job arguments would;
-- * the statements return the columns qbench reads where River returns river_job.* (the
--   claim returns every column, as River's does: the row travels to the worker);
-- * river_queue (upserted every 10 minutes, read by no claim), river_migration and
--   river_notification (SQLite only) are left out;
-- * in the volatile tier every table is UNLOGGED (River has no such option; river_leader
--   is UNLOGGED in River already).
--
-- `psql -f pg_queue_river.sql` creates the schema and stops at \quit.
-- Everything after \quit is the statements qbench prepares, each after a "-- name:" line.

DO $$ BEGIN
    -- 002, and 'pending' added by 004.
    CREATE TYPE river_job_state AS ENUM (
        'available', 'cancelled', 'completed', 'discarded', 'pending', 'retryable',
        'running', 'scheduled');
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

-- 006: whether a state is one of a unique job's states (a bit per state).
CREATE OR REPLACE FUNCTION river_job_state_in_bitmask(bitmask bit(8), state river_job_state)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $fn$
    SELECT CASE state
        WHEN 'available' THEN get_bit(bitmask, 7) WHEN 'cancelled' THEN get_bit(bitmask, 6)
        WHEN 'completed' THEN get_bit(bitmask, 5) WHEN 'discarded' THEN get_bit(bitmask, 4)
        WHEN 'pending' THEN get_bit(bitmask, 3) WHEN 'retryable' THEN get_bit(bitmask, 2)
        WHEN 'running' THEN get_bit(bitmask, 1) WHEN 'scheduled' THEN get_bit(bitmask, 0)
        ELSE 0 END = 1
$fn$;

-- The job table, columns in the migrations' order.
CREATE TABLE IF NOT EXISTS river_job (
    id            bigserial       PRIMARY KEY,
    state         river_job_state NOT NULL DEFAULT 'available',
    attempt       smallint        NOT NULL DEFAULT 0,
    max_attempts  smallint        NOT NULL DEFAULT 25,
    attempted_at  timestamptz,
    created_at    timestamptz     NOT NULL DEFAULT now(),
    finalized_at  timestamptz,
    scheduled_at  timestamptz     NOT NULL DEFAULT now(),
    priority      smallint        NOT NULL DEFAULT 1,
    args          jsonb           NOT NULL,
    attempted_by  text[],
    errors        jsonb[],
    kind          text            NOT NULL,
    metadata      jsonb           NOT NULL DEFAULT '{}',
    queue         text            NOT NULL DEFAULT 'default',
    tags          varchar(255)[]  NOT NULL DEFAULT '{}',
    unique_key    bytea,
    unique_states bit(8),
    CONSTRAINT finalized_or_finalized_at_null CHECK (
        (finalized_at IS NULL AND state NOT IN ('cancelled', 'completed', 'discarded'))
        OR (finalized_at IS NOT NULL AND state IN ('cancelled', 'completed', 'discarded'))),
    CONSTRAINT max_attempts_is_positive CHECK (max_attempts > 0),
    CONSTRAINT priority_in_range CHECK (priority >= 1 AND priority <= 4),
    CONSTRAINT queue_length CHECK (char_length(queue) > 0 AND char_length(queue) < 128),
    CONSTRAINT kind_length CHECK (char_length(kind) > 0 AND char_length(kind) < 128)
);

-- The seven indexes every job pays for. The claim's is not partial: a finalized row
-- stays in it until the cleaner deletes the row.
CREATE INDEX IF NOT EXISTS river_job_kind ON river_job (kind);
CREATE INDEX IF NOT EXISTS river_job_state_and_finalized_at_index
    ON river_job (state, finalized_at) WHERE finalized_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS river_job_prioritized_fetching_index
    ON river_job (state, queue, priority, scheduled_at, id);
CREATE INDEX IF NOT EXISTS river_job_args_index ON river_job USING GIN (args);
CREATE INDEX IF NOT EXISTS river_job_metadata_index ON river_job USING GIN (metadata);
CREATE UNIQUE INDEX IF NOT EXISTS river_job_unique_idx ON river_job (unique_key)
    WHERE unique_key IS NOT NULL AND unique_states IS NOT NULL
      AND river_job_state_in_bitmask(unique_states, state);

-- Leader election (river_leader.sql): one row, held for a TTL and renewed by its holder.
CREATE UNLOGGED TABLE IF NOT EXISTS river_leader (
    elected_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    leader_id  text        NOT NULL,
    name       text        PRIMARY KEY DEFAULT 'default' CHECK (name = 'default')
);

\quit

-- name: enqueue
-- JobInsertFastMany: one INSERT of the whole batch from parallel arrays, the id from the
-- sequence, created_at and scheduled_at the client's clock ($2), the unique index as the
-- conflict arbiter (no job is unique by default: every row is inserted). River runs it in
-- a transaction of its own (BEGIN, this, an optional pg_notify, COMMIT).
-- $1: the args as text, one per job.
WITH raw AS (
    SELECT unnest($1::text[])::jsonb AS args
)
INSERT INTO river_job (args, created_at, kind, max_attempts, metadata, priority, queue,
                       scheduled_at, state, tags, unique_key, unique_states)
SELECT args, $2::timestamptz, 'qbench', 25, '{}', 1, 'default', $2::timestamptz,
       'available', '{}', NULL, NULL
FROM raw
ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND unique_states IS NOT NULL
    AND river_job_state_in_bitmask(unique_states, state)
DO UPDATE SET kind = EXCLUDED.kind
RETURNING river_job.*, (xmax != 0) AS unique_skipped_as_duplicate

-- name: enqueue_retry
-- qbench's, not River's (whose insert is not idempotent): after an error of unknown
-- outcome, only the jobs whose seq is not in river_job (through the args GIN index).
WITH raw AS (
    SELECT a.args FROM (SELECT unnest($1::text[])::jsonb AS args) a
    WHERE NOT EXISTS (SELECT 1 FROM river_job j
                      WHERE j.args @> jsonb_build_object('seq', a.args->'seq'))
)
INSERT INTO river_job (args, created_at, kind, max_attempts, metadata, priority, queue,
                       scheduled_at, state, tags)
SELECT args, $2::timestamptz, 'qbench', 25, '{}', 1, 'default', $2::timestamptz,
       'available', '{}'
FROM raw
RETURNING river_job.*

-- name: notify
-- PGNotifyMany (pg_misc.sql), on River's insert topic, in the insert's transaction.
SELECT pg_notify('public.river_insert', '{"queue": "default"}')

-- name: claim
-- JobGetAvailable: up to $1 available jobs of the queue, due now, in the fetching index's
-- order, locked skipping those others hold; each made running, its attempt counted and
-- this client appended to attempted_by (its last 100 kept). One autocommit statement.
-- $2: the client's id.
WITH locked_jobs AS (
    SELECT * FROM river_job
    WHERE state = 'available' AND queue = 'default' AND scheduled_at <= now()
    ORDER BY priority ASC, scheduled_at ASC, id ASC
    LIMIT $1::integer
    FOR UPDATE SKIP LOCKED
)
UPDATE river_job
SET state = 'running',
    attempt = river_job.attempt + 1,
    attempted_at = now(),
    attempted_by = array_append(
        CASE WHEN array_length(river_job.attempted_by, 1) >= 100
             THEN river_job.attempted_by[array_length(river_job.attempted_by, 1) - 98:]
             ELSE river_job.attempted_by END,
        $2::text)
FROM locked_jobs
WHERE river_job.id = locked_jobs.id
RETURNING river_job.*

-- name: complete
-- JobSetStateIfRunningMany for completions: each job made completed at its finalized time
-- ($2, the client's, stamped when the worker handed it over) if it is still running (and
-- only then: River fences by state, not by attempt). Every input row comes back, changed
-- or not, as River's does; `done` says this hand-over's completion is written: by this
-- statement, or by an earlier try whose answer was lost (the same finalized time).
WITH job_input AS (
    SELECT unnest($1::bigint[]) AS id, unnest($2::timestamptz[]) AS finalized_at
), updated AS (
    UPDATE river_job
    SET state = 'completed', finalized_at = job_input.finalized_at
    FROM job_input
    WHERE river_job.id = job_input.id AND river_job.state = 'running'
    RETURNING river_job.*
)
SELECT updated.id, true AS done, updated.* FROM updated
UNION ALL
SELECT river_job.id,
       river_job.state = 'completed' AND river_job.finalized_at = job_input.finalized_at,
       river_job.*
FROM river_job JOIN job_input ON river_job.id = job_input.id
WHERE NOT EXISTS (SELECT 1 FROM updated WHERE updated.id = river_job.id)
ORDER BY 1

-- name: elect
-- LeaderDeleteExpired then LeaderAttemptElect, in one transaction (River's elector when
-- not leader): $1 this client, $2 the TTL in seconds. A row back: elected.
INSERT INTO river_leader (elected_at, expires_at, leader_id, name)
VALUES (now(), now() + make_interval(secs => $2), $1, 'default')
ON CONFLICT (name) DO NOTHING
RETURNING leader_id

-- name: leader_expired
DELETE FROM river_leader WHERE expires_at < now()

-- name: reelect
-- LeaderAttemptReelect: the leader extends its term.
UPDATE river_leader SET expires_at = now() + make_interval(secs => $2)
WHERE leader_id = $1
RETURNING leader_id

-- name: stuck
-- JobGetStuck: running jobs attempted before $2 (the client's now less RescueAfter),
-- after id $1, in id order, 10,000 at a time.
SELECT id, attempt, max_attempts, coalesce(array_length(errors, 1), 0)
FROM river_job
WHERE state = 'running' AND id > $1 AND attempted_at < $2::timestamptz
ORDER BY id
LIMIT 10000

-- name: rescue
-- JobRescueMany: each stuck job made retryable (due at its backoff) or discarded, its
-- error appended and its rescue counted. By id alone: no check that it is still running.
WITH input AS (
    SELECT unnest($1::bigint[]) AS id, unnest($2::timestamptz[]) AS finalized_at,
           unnest($3::timestamptz[]) AS scheduled_at, unnest($4::text[]) AS state
)
UPDATE river_job
SET errors = array_append(river_job.errors,
        jsonb_build_object('at', now(), 'attempt', river_job.attempt,
                           'error', 'Stuck job rescued by JobRescuer')),
    finalized_at = input.finalized_at,
    scheduled_at = input.scheduled_at,
    metadata = river_job.metadata || jsonb_build_object('river:rescue_count',
        coalesce((river_job.metadata->>'river:rescue_count')::int, 0) + 1),
    state = input.state::river_job_state
FROM input
WHERE river_job.id = input.id

-- name: schedule
-- JobSchedule: retryable and scheduled jobs due before $1 (the client's now plus the
-- scheduler's interval) made available, 10,000 at a time, locked without skipping.
-- Returns how many are due now (River notifies its insert topic for those).
WITH jobs_to_schedule AS (
    SELECT id FROM river_job
    WHERE state IN ('retryable', 'scheduled') AND scheduled_at <= $1::timestamptz
    ORDER BY priority, scheduled_at, id
    LIMIT 10000
    FOR UPDATE
), updated AS (
    UPDATE river_job SET state = 'available'
    FROM jobs_to_schedule WHERE river_job.id = jobs_to_schedule.id
    RETURNING river_job.scheduled_at
)
SELECT count(*), count(*) FILTER (WHERE scheduled_at <= now() + interval '5 ms')
FROM updated

-- name: clean
-- JobDeleteBefore: finalized jobs past their retention ($1 completed and cancelled, $2
-- discarded: River keeps them 24 hours and 7 days), 10,000 at a time, in id order.
DELETE FROM river_job WHERE id IN (
    SELECT id FROM river_job
    WHERE (state = 'cancelled' AND finalized_at < $1::timestamptz)
       OR (state = 'completed' AND finalized_at < $1::timestamptz)
       OR (state = 'discarded' AND finalized_at < $2::timestamptz)
    ORDER BY id
    LIMIT 10000
)

-- name: claim_plan
-- The claim with {batch} jobs, for the horizon scenario's EXPLAIN (rolled back).
WITH locked_jobs AS (
    SELECT * FROM river_job
    WHERE state = 'available' AND queue = 'default' AND scheduled_at <= now()
    ORDER BY priority ASC, scheduled_at ASC, id ASC
    LIMIT {batch}
    FOR UPDATE SKIP LOCKED
)
UPDATE river_job
SET state = 'running', attempt = river_job.attempt + 1, attempted_at = now(),
    attempted_by = array_append(river_job.attempted_by, 'qbench')
FROM locked_jobs
WHERE river_job.id = locked_jobs.id
RETURNING river_job.*

-- name: depth
-- Jobs not finalized.
SELECT count(*) FROM river_job WHERE finalized_at IS NULL

-- name: state
-- Waiting (available, retryable, scheduled), running, completed, all.
SELECT count(*) FILTER (WHERE state IN ('available', 'retryable', 'scheduled', 'pending')),
       count(*) FILTER (WHERE state = 'running'),
       count(*) FILTER (WHERE state = 'completed'),
       count(*)
FROM river_job

-- name: snapshot
-- Every job by seq, its intended time, and whether it completed (once, at the end).
SELECT (args->>'seq')::bigint, (args->>'enqueued_at_us')::bigint, state = 'completed'
FROM river_job

-- name: sabotage
-- The audit's self-check, not the design: removes the newest available job (locked here
-- so no fetch takes it meanwhile) behind qbench's back; returns its seq.
DELETE FROM river_job WHERE id = (
    SELECT id FROM river_job WHERE state = 'available'
    ORDER BY id DESC LIMIT 1 FOR UPDATE SKIP LOCKED
)
RETURNING (args->>'seq')::bigint

-- name: reset
TRUNCATE river_job, river_leader RESTART IDENTITY
