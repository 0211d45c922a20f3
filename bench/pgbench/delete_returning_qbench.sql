-- Exactly qbench's delete_returning statements (schema/pg_queue_delete_returning.sql):
-- BEGIN + claim, then archive + COMMIT. Needs -M prepared (the payload travels as a parameter).
BEGIN;
WITH next AS MATERIALIZED (SELECT id FROM queue_jobs_dr ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) DELETE FROM queue_jobs_dr q USING next WHERE q.id = next.id RETURNING q.id, q.seq, q.enqueued_at_us, q.payload, q.created_at \gset
INSERT INTO queue_jobs_archive (id, seq, enqueued_at_us, payload, created_at) SELECT * FROM unnest(ARRAY[:id]::bigint[], ARRAY[:seq]::bigint[], ARRAY[:enqueued_at_us]::bigint[], ARRAY[:payload]::bytea[], ARRAY[:created_at]::timestamptz[]) ON CONFLICT (seq) DO NOTHING RETURNING seq;
COMMIT;
