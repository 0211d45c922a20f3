-- qbench design "partitioned": the skip_locked design split over N list partitions
-- (16 by default; `SET qbench.partitions = N` before running this file to change it).
-- The producer puts job seq into partition seq % N. Worker i claims from its home child
-- table queue_jobs_part_<i mod N> directly, and steals through the parent when home is empty.
-- Lease, reaper and attempts work exactly as in pg_queue_basic.sql.
--
-- `psql -f pg_queue_partitioned.sql` creates the schema and stops at \quit.
-- Everything after \quit is the statements qbench prepares, each after a "-- name:" line;
-- {part} stands for a partition number and {batch} for the dequeue batch, filled in by
-- qbench when it prepares the statement (a literal LIMIT keeps one cheap generic plan; see
-- pg_queue_basic.sql).

CREATE TABLE IF NOT EXISTS queue_jobs_part (
    id             bigserial,
    part           smallint    NOT NULL,            -- seq % N, the list partition key
    seq            bigint      NOT NULL,            -- producer sequence number
    enqueued_at_us bigint      NOT NULL,            -- intended enqueue time, µs since the Unix epoch
    payload        bytea       NOT NULL,
    status         text        NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'processing', 'completed')),
    attempts       integer     NOT NULL DEFAULT 0,
    leased_at      timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    completed_at   timestamptz,
    PRIMARY KEY (part, id)
) PARTITION BY LIST (part);
-- Partitioned indexes: every child gets its own copy.
CREATE INDEX IF NOT EXISTS queue_jobs_part_pending ON queue_jobs_part (id) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS queue_jobs_part_leased ON queue_jobs_part (leased_at) WHERE status = 'processing';
-- One row per sequence number (part is seq % N, so (part, seq) is unique exactly when seq
-- is; a unique index of a partitioned table must hold the partition key).
CREATE UNIQUE INDEX IF NOT EXISTS queue_jobs_part_seq ON queue_jobs_part (part, seq);

DO $$
DECLARE
    n int := coalesce(nullif(current_setting('qbench.partitions', true), ''), '16')::int;
BEGIN
    FOR i IN 0 .. n - 1 LOOP
        EXECUTE format(
            'CREATE TABLE IF NOT EXISTS queue_jobs_part_%s PARTITION OF queue_jobs_part FOR VALUES IN (%s)',
            i, i);
    END LOOP;
END
$$;

\quit

-- name: enqueue
-- $4 is the number of partitions.
INSERT INTO queue_jobs_part (part, seq, enqueued_at_us, payload)
SELECT (u.seq % $4::bigint)::smallint, u.seq, u.t, u.p
FROM unnest($1::bigint[], $2::bigint[], $3::bytea[]) AS u(seq, t, p)
ON CONFLICT (part, seq) DO NOTHING

-- name: claim_home
-- The worker's home child table, queried directly: no partition routing at all.
WITH next AS MATERIALIZED (
    SELECT id FROM queue_jobs_part_{part}
    WHERE status = 'pending'
    ORDER BY id
    LIMIT {batch}
    FOR UPDATE SKIP LOCKED
)
UPDATE queue_jobs_part_{part} q
SET status = 'processing', attempts = q.attempts + 1, leased_at = now()
FROM next
WHERE q.id = next.id
RETURNING q.id, q.part, q.seq, q.enqueued_at_us, q.attempts, q.payload

-- name: claim_any
-- Stealing: the oldest pending jobs of any partition (a merge of the children's indexes).
WITH next AS MATERIALIZED (
    SELECT part, id FROM queue_jobs_part
    WHERE status = 'pending'
    ORDER BY id
    LIMIT {batch}
    FOR UPDATE SKIP LOCKED
)
UPDATE queue_jobs_part q
SET status = 'processing', attempts = q.attempts + 1, leased_at = now()
FROM next
WHERE q.part = next.part AND q.id = next.id
RETURNING q.id, q.part, q.seq, q.enqueued_at_us, q.attempts, q.payload

-- name: complete
-- $1 prunes to one child table at execution time. Fenced as in pg_queue_basic.sql: only
-- rows still held at the attempts they were claimed at ($3); returns the ids completed.
UPDATE queue_jobs_part q SET status = 'completed', completed_at = now()
FROM unnest($2::bigint[], $3::int[]) AS c(id, attempts)
WHERE q.part = $1::smallint AND q.id = c.id
  AND q.status = 'processing' AND q.attempts = c.attempts
RETURNING q.id

-- name: reap
UPDATE queue_jobs_part SET status = 'pending', leased_at = NULL
WHERE status = 'processing' AND leased_at < now() - make_interval(secs => $1::float8)

-- name: depth
SELECT (SELECT count(*) FROM queue_jobs_part WHERE status = 'pending')
     + (SELECT count(*) FROM queue_jobs_part WHERE status = 'processing')

-- name: state
SELECT count(*) FILTER (WHERE status = 'pending'),
       count(*) FILTER (WHERE status = 'processing'),
       count(*) FILTER (WHERE status = 'completed'),
       count(*)
FROM queue_jobs_part

-- name: snapshot
SELECT seq, enqueued_at_us, status = 'completed' FROM queue_jobs_part

-- name: sabotage
-- The audit's self-check, not the design: removes the newest waiting job (see
-- pg_queue_basic.sql) behind qbench's back; returns its seq.
DELETE FROM queue_jobs_part WHERE (part, id) = (
    SELECT part, id FROM queue_jobs_part WHERE status = 'pending'
    ORDER BY id DESC LIMIT 1 FOR UPDATE SKIP LOCKED
)
RETURNING seq

-- name: partition_count
SELECT count(*) FROM pg_inherits WHERE inhparent = to_regclass('queue_jobs_part')

-- name: reset
TRUNCATE queue_jobs_part RESTART IDENTITY

-- name: drop
DROP TABLE IF EXISTS queue_jobs_part CASCADE
