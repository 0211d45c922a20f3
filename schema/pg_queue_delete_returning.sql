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
    seq            bigint      PRIMARY KEY,         -- completed once: a second archive is refused
    id             bigint      NOT NULL,
    enqueued_at_us bigint      NOT NULL,
    payload        bytea       NOT NULL,
    created_at     timestamptz NOT NULL,
    -- clock_timestamp(), not now(): now() is the claim's transaction start.
    completed_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);
-- One queued row per sequence number: an enqueue retried after an error of unknown
-- outcome adds nothing twice.
CREATE UNIQUE INDEX IF NOT EXISTS queue_jobs_dr_seq ON queue_jobs_dr (seq);
-- An archive made by qbench before the audit by identity is keyed by id: give it the
-- unique seq that completion fencing and the retry check rely on.
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_index i
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
        WHERE i.indrelid = 'queue_jobs_archive'::regclass
          AND i.indisunique AND i.indnatts = 1 AND a.attname = 'seq'
    ) THEN
        CREATE UNIQUE INDEX queue_jobs_archive_seq ON queue_jobs_archive (seq);
    END IF;
END
$$;

\quit

-- name: enqueue
INSERT INTO queue_jobs_dr (seq, enqueued_at_us, payload)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bytea[])
ON CONFLICT (seq) DO NOTHING

-- name: enqueue_retry
-- After an error of unknown outcome: the job may already have been claimed and archived
-- (its queued row deleted), so the archive is checked as well (its primary key).
INSERT INTO queue_jobs_dr (seq, enqueued_at_us, payload)
SELECT u.seq, u.t, u.p FROM unnest($1::bigint[], $2::bigint[], $3::bytea[]) AS u(seq, t, p)
WHERE NOT EXISTS (SELECT 1 FROM queue_jobs_archive a WHERE a.seq = u.seq)
ON CONFLICT (seq) DO NOTHING

-- name: enqueue_retry_undo
-- The same transaction's next statement, with a fresh snapshot: a worker that was moving
-- the job to the archive while the insert above ran made ON CONFLICT wait, then let the
-- insert through once its DELETE committed. Its archive row is visible now; the copy
-- goes before anyone could see it.
DELETE FROM queue_jobs_dr q USING queue_jobs_archive a
WHERE q.seq = ANY($1::bigint[]) AND a.seq = q.seq

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
-- The finished jobs, inserted before COMMIT in the claim's transaction. A job archived
-- already (it was delivered twice) is refused, not archived again: returns the seqs kept.
INSERT INTO queue_jobs_archive (id, seq, enqueued_at_us, payload, created_at)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bytea[], $5::timestamptz[])
ON CONFLICT (seq) DO NOTHING
RETURNING seq

-- name: depth
-- Rows deleted by an open transaction still count: those jobs are in flight, not done.
SELECT count(*) FROM queue_jobs_dr

-- name: unlocked
-- Rows no transaction holds; depth minus this is the number in flight.
SELECT count(*) FROM (SELECT 1 FROM queue_jobs_dr FOR UPDATE SKIP LOCKED) AS free

-- name: archived
SELECT count(*) FROM queue_jobs_archive

-- name: left
-- Every queued job by seq, once at the end of a process (rows an open claim holds are
-- in flight: still here).
SELECT seq, enqueued_at_us FROM queue_jobs_dr

-- name: completed
SELECT seq FROM queue_jobs_archive

-- name: sabotage
-- The audit's self-check, not the design: removes the newest job no open claim holds
-- (a claimed row is locked by its worker's transaction) behind qbench's back; returns
-- its seq.
DELETE FROM queue_jobs_dr WHERE id = (
    SELECT id FROM queue_jobs_dr ORDER BY id DESC LIMIT 1 FOR UPDATE SKIP LOCKED
)
RETURNING seq

-- name: reset
TRUNCATE queue_jobs_dr, queue_jobs_archive RESTART IDENTITY
