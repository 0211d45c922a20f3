-- qbench design "pgmq": the database protocol of the pgmq extension, version 1.11.0
-- (github.com/pgmq/pgmq, pgmq-extension/sql/pgmq.sql at b84659a), rewritten in qbench's
-- words. pgmq itself is not installed: these are one queue's tables as pgmq's create()
-- makes them, and functions doing what pgmq's send_batch, read, archive and delete do.
--
-- Like pgmq's, each function builds its statement as text and EXECUTEs it, so the server
-- parses and plans it again at every call: a cost every pgmq client pays.
--
-- Where qbench differs from pgmq, on purpose:
-- * the job's sequence number and intended enqueue time travel in the message (jsonb),
--   beside the payload, as a user's job fields would;
-- * read takes the visibility timeout in seconds as a float (pgmq: whole seconds), so
--   that tests can use leases under a second;
-- * archive and delete take an array of ids (pgmq's array overloads) for every batch,
--   one id included;
-- * no pgmq.meta row, no ALTER EXTENSION, no notify trigger (poll only, for now).
--
-- `psql -f pg_queue_pgmq.sql` creates the schema and stops at \quit.
-- Everything after \quit is the statements qbench prepares, each after a "-- name:" line.

-- The queue table (pgmq.sql, create_non_partitioned): an identity key, the visibility
-- time, the read count, and the message; one more index, on vt.
CREATE TABLE IF NOT EXISTS pgmq_q_qbench (
    msg_id       bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    read_ct      integer     NOT NULL DEFAULT 0,
    enqueued_at  timestamptz NOT NULL DEFAULT now(),
    last_read_at timestamptz,
    vt           timestamptz NOT NULL,
    message      jsonb,
    headers      jsonb
);
CREATE INDEX IF NOT EXISTS pgmq_q_qbench_vt_idx ON pgmq_q_qbench (vt);

-- The archive (same function): finished messages moved here whole, stamped; indexed on
-- the stamp. Nothing prunes it: pgmq leaves that to the user.
CREATE TABLE IF NOT EXISTS pgmq_a_qbench (
    msg_id       bigint      PRIMARY KEY,
    read_ct      integer     NOT NULL DEFAULT 0,
    enqueued_at  timestamptz NOT NULL DEFAULT now(),
    last_read_at timestamptz,
    archived_at  timestamptz NOT NULL DEFAULT now(),
    vt           timestamptz NOT NULL,
    message      jsonb,
    headers      jsonb
);
CREATE INDEX IF NOT EXISTS pgmq_a_qbench_archived_idx ON pgmq_a_qbench (archived_at);

-- send / send_batch: one INSERT of every message given, visible at once (vt is the
-- clock now: pgmq's send without a delay). Returns the new ids.
CREATE OR REPLACE FUNCTION qbench_pgmq_send(msgs jsonb[]) RETURNS SETOF bigint
LANGUAGE plpgsql AS $fn$
BEGIN
    RETURN QUERY EXECUTE format(
        'INSERT INTO %I (vt, message, headers) '
        'SELECT clock_timestamp(), m, NULL FROM unnest($1) AS m '
        'RETURNING msg_id', 'pgmq_q_qbench')
    USING msgs;
END
$fn$;

-- read: lock up to qty visible messages nobody else holds, oldest id first, and hide
-- them for vt_s seconds, counting the read. The only mark of a claim is a vt in the
-- future: no worker id, no status.
CREATE OR REPLACE FUNCTION qbench_pgmq_read(vt_s double precision, qty integer)
RETURNS SETOF pgmq_q_qbench
LANGUAGE plpgsql AS $fn$
BEGIN
    RETURN QUERY EXECUTE format(
        'WITH visible AS ('
        '  SELECT msg_id FROM %1$I WHERE vt <= clock_timestamp() '
        '  ORDER BY msg_id LIMIT $1 FOR UPDATE SKIP LOCKED) '
        'UPDATE %1$I q SET vt = clock_timestamp() + make_interval(secs => $2), '
        '  read_ct = q.read_ct + 1, last_read_at = clock_timestamp() '
        'FROM visible WHERE q.msg_id = visible.msg_id '
        'RETURNING q.*', 'pgmq_q_qbench')
    USING qty, vt_s;
END
$fn$;

-- archive: in one statement, delete the messages and insert them into the archive.
-- Whoever holds them (or nobody) does not matter: pgmq checks no lease.
CREATE OR REPLACE FUNCTION qbench_pgmq_archive(ids bigint[]) RETURNS SETOF bigint
LANGUAGE plpgsql AS $fn$
BEGIN
    RETURN QUERY EXECUTE format(
        'WITH moved AS ('
        '  DELETE FROM %I WHERE msg_id = ANY($1) '
        '  RETURNING msg_id, vt, read_ct, enqueued_at, last_read_at, message, headers) '
        'INSERT INTO %I (msg_id, vt, read_ct, enqueued_at, last_read_at, message, headers) '
        'SELECT msg_id, vt, read_ct, enqueued_at, last_read_at, message, headers FROM moved '
        'RETURNING msg_id', 'pgmq_q_qbench', 'pgmq_a_qbench')
    USING ids;
END
$fn$;

-- delete: the messages go, with no record kept.
CREATE OR REPLACE FUNCTION qbench_pgmq_delete(ids bigint[]) RETURNS SETOF bigint
LANGUAGE plpgsql AS $fn$
BEGIN
    RETURN QUERY EXECUTE format(
        'DELETE FROM %I WHERE msg_id = ANY($1) RETURNING msg_id', 'pgmq_q_qbench')
    USING ids;
END
$fn$;

\quit

-- name: enqueue
-- $1: the messages as text, one per job. One round trip per batch, as send_batch.
SELECT qbench_pgmq_send($1::text[]::jsonb[])

-- name: enqueue_retry
-- qbench's, not pgmq's (whose send is not idempotent): after an error of unknown
-- outcome, only the messages whose seq is neither queued nor archived. Unindexed: a
-- scan of both tables, paid on a retry only, never on the measured path.
SELECT qbench_pgmq_send(array_agg(m.msg))
FROM unnest($1::text[]::jsonb[]) AS m(msg)
WHERE NOT EXISTS (SELECT 1 FROM pgmq_q_qbench q WHERE q.message->'seq' = m.msg->'seq')
  AND NOT EXISTS (SELECT 1 FROM pgmq_a_qbench a WHERE a.message->'seq' = m.msg->'seq')
HAVING count(*) > 0

-- name: claim
-- $1 the visibility timeout (s), $2 the batch. pgmq's clients read this way.
SELECT msg_id, read_ct, message FROM qbench_pgmq_read($1, $2)

-- name: archive
SELECT * FROM qbench_pgmq_archive($1)

-- name: delete
SELECT * FROM qbench_pgmq_delete($1)

-- name: claim_plan
-- What read EXECUTEs, with the default lease and {batch}, for the horizon scenario's
-- EXPLAIN (run in a transaction that is rolled back).
WITH visible AS (
  SELECT msg_id FROM pgmq_q_qbench WHERE vt <= clock_timestamp()
  ORDER BY msg_id LIMIT {batch} FOR UPDATE SKIP LOCKED)
UPDATE pgmq_q_qbench q SET vt = clock_timestamp() + make_interval(secs => 30),
  read_ct = q.read_ct + 1, last_read_at = clock_timestamp()
FROM visible WHERE q.msg_id = visible.msg_id
RETURNING q.*

-- name: depth
-- Messages not finished: visible or hidden by a read.
SELECT count(*) FROM pgmq_q_qbench

-- name: state
-- Visible, hidden by a read, archived. A message whose lease ran out is visible again.
SELECT count(*) FILTER (WHERE vt <= clock_timestamp()),
       count(*) FILTER (WHERE vt > clock_timestamp()),
       (SELECT count(*) FROM pgmq_a_qbench)
FROM pgmq_q_qbench

-- name: sent
-- Messages ever sent since the last reset (the identity's last value): the delete mode
-- keeps no record, so its completed count is this minus the depth. A failed INSERT
-- burns ids too, so after errors it overcounts.
SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM pgmq_q_qbench_msg_id_seq

-- name: left
-- Every queued job by seq, once at the end of a process.
SELECT (message->>'seq')::bigint, (message->>'enqueued_at_us')::bigint FROM pgmq_q_qbench

-- name: completed
SELECT (message->>'seq')::bigint FROM pgmq_a_qbench

-- name: sabotage
-- The audit's self-check, not the design: removes the newest visible message (locked
-- here so no read takes it meanwhile) behind qbench's back; returns its seq.
DELETE FROM pgmq_q_qbench WHERE msg_id = (
    SELECT msg_id FROM pgmq_q_qbench WHERE vt <= clock_timestamp()
    ORDER BY msg_id DESC LIMIT 1 FOR UPDATE SKIP LOCKED
)
RETURNING (message->>'seq')::bigint

-- name: reset
TRUNCATE pgmq_q_qbench, pgmq_a_qbench RESTART IDENTITY
