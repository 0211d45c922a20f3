-- qbench design "delete_returning": claiming a job deletes it.
-- The claim is DELETE ... RETURNING over a SKIP LOCKED CTE, inside a transaction that stays
-- open while the job is processed. Completion inserts the job into the archive, then COMMITs.
-- If the worker dies, its transaction rolls back and the job is back in queue_jobs at once.
--
-- `psql -f pg_queue_delete_returning.sql` creates the schema and stops at \quit.
-- Everything after \quit is the statements qbench prepares, each after a "-- name:" line.

CREATE TABLE IF NOT EXISTS queue_jobs_dr (
    id             bigserial   PRIMARY KEY,
    seq            bigint      NOT NULL,            -- producer sequence number
    enqueued_at_us bigint      NOT NULL,            -- intended enqueue time, µs since the Unix epoch
    payload        bytea       NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS queue_jobs_archive (
    id             bigint      PRIMARY KEY,
    seq            bigint      NOT NULL,
    enqueued_at_us bigint      NOT NULL,
    payload        bytea       NOT NULL,
    created_at     timestamptz NOT NULL,
    -- clock_timestamp(), not now(): now() is the claim's transaction start.
    completed_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);

\quit

-- name: enqueue
INSERT INTO queue_jobs_dr (seq, enqueued_at_us, payload)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bytea[])

-- name: claim
-- Runs inside BEGIN; the rows stay locked (and invisible as deleted) until COMMIT or ROLLBACK.
-- {batch}: the dequeue batch as a literal (see pg_queue_basic.sql for why).
WITH next AS MATERIALIZED (
    SELECT id FROM queue_jobs_dr
    ORDER BY id
    LIMIT {batch}
    FOR UPDATE SKIP LOCKED
)
DELETE FROM queue_jobs_dr q
USING next
WHERE q.id = next.id
RETURNING q.id, q.seq, q.enqueued_at_us, q.payload, q.created_at

-- name: archive
-- The finished jobs, inserted before COMMIT in the claim's transaction.
INSERT INTO queue_jobs_archive (id, seq, enqueued_at_us, payload, created_at)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bytea[], $5::timestamptz[])

-- name: depth
-- Rows deleted by an open transaction still count: those jobs are in flight, not done.
SELECT count(*) FROM queue_jobs_dr

-- name: unlocked
-- Rows no transaction holds; depth minus this is the number in flight.
SELECT count(*) FROM (SELECT 1 FROM queue_jobs_dr FOR UPDATE SKIP LOCKED) AS free

-- name: archived
SELECT count(*) FROM queue_jobs_archive

-- name: reset
TRUNCATE queue_jobs_dr, queue_jobs_archive RESTART IDENTITY
