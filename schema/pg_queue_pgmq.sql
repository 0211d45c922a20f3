-- qbench design "pgmq": the database protocol of the pgmq extension, version 1.11.0
-- (github.com/pgmq/pgmq, pgmq-extension/sql/pgmq.sql at b84659a), rewritten in qbench's
-- words. pgmq itself is not installed: these are one queue's tables as pgmq's create()
-- makes them, and functions doing what pgmq's send_batch, read, archive and delete do.
--
-- Like pgmq's, each function builds its statement as text and EXECUTEs it, so the server
-- parses and plans it again at every call: a cost every pgmq client pays. The call chains
-- are pgmq's too: a function checks and lower-cases the table name at every call
-- (format_table_name), and a batch is validated by one function and inserted by another
-- (send_batch → _validate_batch_params, _send_batch): three statements inside the call,
-- where a single send runs one.
--
-- Where qbench differs from pgmq, on purpose:
-- * the job's sequence number and intended enqueue time travel in the message (jsonb),
--   beside the payload, as a user's job fields would;
-- * read takes the visibility timeout in seconds as a float (pgmq: whole seconds), so
--   that tests can use leases under a second, as a parameter (pgmq writes the interval
--   into the statement's text); read's `conditional` filter is left out (pgmq's default,
--   '{}', makes it a constant the planner folds away);
-- * archive and delete take an array of ids (pgmq's array overloads) for every batch,
--   one id included;
-- * the tables live in the current schema, not `pgmq`; no pgmq.meta row (read by no call
--   on the path of a job), no notify trigger (poll only, for now);
-- * in the volatile tier only the queue table is UNLOGGED, as pgmq's create_unlogged
--   makes it; the archive stays logged.
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

-- format_table_name: a queue name with characters that could escape a statement is
-- refused; the table is the prefix and the name, lower-cased.
CREATE OR REPLACE FUNCTION qbench_pgmq_table(queue text, prefix text) RETURNS text
LANGUAGE plpgsql AS $fn$
BEGIN
    IF queue ~ '[$;'']|--' THEN
        RAISE EXCEPTION 'queue name % has a character that is not allowed', queue;
    END IF;
    RETURN lower('pgmq_' || prefix || '_' || queue);
END
$fn$;

-- send: one message, one INSERT … VALUES, visible at once (vt is the clock now: pgmq's
-- send without a delay). Returns the new id.
CREATE OR REPLACE FUNCTION qbench_pgmq_send(msg jsonb) RETURNS SETOF bigint
LANGUAGE plpgsql AS $fn$
DECLARE
    qtable text := qbench_pgmq_table('qbench', 'q');
BEGIN
    RETURN QUERY EXECUTE format(
        'INSERT INTO %I (vt, message, headers) VALUES (clock_timestamp(), $1, NULL) '
        'RETURNING msg_id', qtable)
    USING msg;
END
$fn$;

-- _validate_batch_params: a batch must hold a message.
CREATE OR REPLACE FUNCTION qbench_pgmq_check_batch(msgs jsonb[]) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    IF msgs IS NULL OR array_length(msgs, 1) IS NULL THEN
        RAISE EXCEPTION 'a batch needs at least one message';
    END IF;
END
$fn$;

-- _send_batch: one INSERT of every message, sharing one vt.
CREATE OR REPLACE FUNCTION qbench_pgmq_insert_batch(msgs jsonb[]) RETURNS SETOF bigint
LANGUAGE plpgsql AS $fn$
DECLARE
    qtable text := qbench_pgmq_table('qbench', 'q');
BEGIN
    RETURN QUERY EXECUTE format(
        'INSERT INTO %I (vt, message, headers) '
        'SELECT clock_timestamp(), m, NULL FROM unnest($1) AS m '
        'RETURNING msg_id', qtable)
    USING msgs;
END
$fn$;

-- send_batch: checked by one function, inserted by the other.
CREATE OR REPLACE FUNCTION qbench_pgmq_send_batch(msgs jsonb[]) RETURNS SETOF bigint
LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM qbench_pgmq_check_batch(msgs);
    RETURN QUERY SELECT * FROM qbench_pgmq_insert_batch(msgs);
END
$fn$;

-- read: lock up to qty visible messages nobody else holds, oldest id first, and hide
-- them for vt_s seconds, counting the read. The only mark of a claim is a vt in the
-- future: no worker id, no status.
CREATE OR REPLACE FUNCTION qbench_pgmq_read(vt_s double precision, qty integer)
RETURNS SETOF pgmq_q_qbench
LANGUAGE plpgsql AS $fn$
DECLARE
    qtable text := qbench_pgmq_table('qbench', 'q');
BEGIN
    RETURN QUERY EXECUTE format(
        'WITH visible AS ('
        '  SELECT msg_id FROM %1$I WHERE vt <= clock_timestamp() '
        '  ORDER BY msg_id LIMIT $1 FOR UPDATE SKIP LOCKED) '
        'UPDATE %1$I q SET vt = clock_timestamp() + make_interval(secs => $2), '
        '  read_ct = q.read_ct + 1, last_read_at = clock_timestamp() '
        'FROM visible WHERE q.msg_id = visible.msg_id '
        'RETURNING q.*', qtable)
    USING qty, vt_s;
END
$fn$;

-- archive: in one statement, delete the messages and insert them into the archive.
-- Whoever holds them (or nobody) does not matter: pgmq checks no lease.
CREATE OR REPLACE FUNCTION qbench_pgmq_archive(ids bigint[]) RETURNS SETOF bigint
LANGUAGE plpgsql AS $fn$
DECLARE
    qtable text := qbench_pgmq_table('qbench', 'q');
    atable text := qbench_pgmq_table('qbench', 'a');
BEGIN
    RETURN QUERY EXECUTE format(
        'WITH moved AS ('
        '  DELETE FROM %I WHERE msg_id = ANY($1) '
        '  RETURNING msg_id, vt, read_ct, enqueued_at, last_read_at, message, headers) '
        'INSERT INTO %I (msg_id, vt, read_ct, enqueued_at, last_read_at, message, headers) '
        'SELECT msg_id, vt, read_ct, enqueued_at, last_read_at, message, headers FROM moved '
        'RETURNING msg_id', qtable, atable)
    USING ids;
END
$fn$;

-- delete: the messages go, with no record kept.
CREATE OR REPLACE FUNCTION qbench_pgmq_delete(ids bigint[]) RETURNS SETOF bigint
LANGUAGE plpgsql AS $fn$
DECLARE
    qtable text := qbench_pgmq_table('qbench', 'q');
BEGIN
    RETURN QUERY EXECUTE format(
        'DELETE FROM %I WHERE msg_id = ANY($1) RETURNING msg_id', qtable)
    USING ids;
END
$fn$;

\quit

-- name: enqueue_one
-- $1: the message as text. A batch of one job is pgmq's send (one statement inside).
SELECT * FROM qbench_pgmq_send($1::text::jsonb)

-- name: enqueue
-- $1: the messages as text, one per job: send_batch, one round trip per batch.
SELECT * FROM qbench_pgmq_send_batch($1::text[]::jsonb[])

-- name: enqueue_retry
-- qbench's, not pgmq's (whose send is not idempotent): after an error of unknown
-- outcome, only the messages whose seq is neither queued nor archived. Unindexed: a
-- scan of both tables, paid on a retry only, never on the measured path.
SELECT qbench_pgmq_send_batch(array_agg(m.msg))
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

-- name: state_delete
-- The delete mode keeps no record: completed is the messages ever sent since the last
-- reset (the identity's last value) minus those queued, in one statement. A failed or
-- uncommitted INSERT burns ids too (and a crash skips up to 32), so it is an upper bound.
SELECT count(*) FILTER (WHERE vt <= clock_timestamp()),
       count(*) FILTER (WHERE vt > clock_timestamp()),
       (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM pgmq_q_qbench_msg_id_seq)
         - count(*)
FROM pgmq_q_qbench

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
