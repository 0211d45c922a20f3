-- qbench design "skip_locked": one table with a status column.
-- A job goes pending -> processing (leased to a worker) -> completed. A lease older than
-- the visibility timeout is put back to pending by the reaper; attempts counts deliveries.
--
-- `psql -f pg_queue_basic.sql` creates the schema and stops at \quit.
-- Everything after \quit is the statements qbench prepares, each after a "-- name:" line.
-- qbench embeds this very file: change a statement here and the binary changes with it.

CREATE TABLE IF NOT EXISTS queue_jobs (
    id             bigserial   PRIMARY KEY,
    seq            bigint      NOT NULL,            -- producer sequence number
    enqueued_at_us bigint      NOT NULL,            -- intended enqueue time, µs since the Unix epoch
    payload        bytea       NOT NULL,
    status         text        NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'processing', 'completed')),
    attempts       integer     NOT NULL DEFAULT 0,  -- deliveries so far
    leased_at      timestamptz,                     -- when the current lease began
    created_at     timestamptz NOT NULL DEFAULT now(),
    completed_at   timestamptz
);
-- Claims scan only pending rows, in id order; the reaper scans only leased ones.
CREATE INDEX IF NOT EXISTS queue_jobs_pending ON queue_jobs (id) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS queue_jobs_leased ON queue_jobs (leased_at) WHERE status = 'processing';
-- One row per sequence number: an enqueue retried after an error of unknown outcome adds
-- nothing twice. Completed rows stay, so the index covers every job since the last reset.
CREATE UNIQUE INDEX IF NOT EXISTS queue_jobs_seq ON queue_jobs (seq);

\quit

-- name: enqueue
-- One round trip for a whole batch of jobs that fell due together; a seq already there
-- (a retry) is skipped.
INSERT INTO queue_jobs (seq, enqueued_at_us, payload)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bytea[])
ON CONFLICT (seq) DO NOTHING

-- name: claim
-- One round trip: lock up to {batch} pending rows nobody else holds, then lease them.
-- {batch} is the dequeue batch, written in as a literal when the statement is prepared:
-- with LIMIT $1 the generic plan assumes 10% of the table (a hash join over a sequential
-- scan), so PostgreSQL re-plans every claim; measured here at +100 µs server CPU per job.
WITH next AS MATERIALIZED (
    SELECT id FROM queue_jobs
    WHERE status = 'pending'
    ORDER BY id
    LIMIT {batch}
    FOR UPDATE SKIP LOCKED
)
UPDATE queue_jobs q
SET status = 'processing', attempts = q.attempts + 1, leased_at = now()
FROM next
WHERE q.id = next.id
RETURNING q.id, q.seq, q.enqueued_at_us, q.attempts, q.payload

-- name: complete
-- Fenced: only rows this worker still holds ($2 the attempts it claimed them at). A lease
-- that ran out was put back (pending) or taken again (attempts + 1): that completion is
-- refused and counted late. Returns the ids completed.
UPDATE queue_jobs q SET status = 'completed', completed_at = now()
FROM unnest($1::bigint[], $2::int[]) AS c(id, attempts)
WHERE q.id = c.id AND q.status = 'processing' AND q.attempts = c.attempts
RETURNING q.id

-- name: reap
-- Leases older than the visibility timeout ($1 seconds) go back to pending.
UPDATE queue_jobs SET status = 'pending', leased_at = NULL
WHERE status = 'processing' AND leased_at < now() - make_interval(secs => $1::float8)

-- name: depth
-- Jobs not yet completed; both counts use the partial indexes.
SELECT (SELECT count(*) FROM queue_jobs WHERE status = 'pending')
     + (SELECT count(*) FROM queue_jobs WHERE status = 'processing')

-- name: state
SELECT count(*) FILTER (WHERE status = 'pending'),
       count(*) FILTER (WHERE status = 'processing'),
       count(*) FILTER (WHERE status = 'completed'),
       count(*)
FROM queue_jobs

-- name: snapshot
-- Every job by seq, once at the end of a process: left (with its intended enqueue time)
-- or completed.
SELECT seq, enqueued_at_us, status = 'completed' FROM queue_jobs

-- name: sabotage
-- The audit's self-check, not the design: removes the newest job that waits (no worker
-- holds it; locked here so none can claim it meanwhile) behind qbench's back, as a bug
-- or an operator would. Returns its seq, which the audit must then name lost.
DELETE FROM queue_jobs WHERE id = (
    SELECT id FROM queue_jobs WHERE status = 'pending'
    ORDER BY id DESC LIMIT 1 FOR UPDATE SKIP LOCKED
)
RETURNING seq

-- name: reset
TRUNCATE queue_jobs RESTART IDENTITY
