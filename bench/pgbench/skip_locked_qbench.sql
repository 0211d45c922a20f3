-- Exactly qbench's skip_locked statements (schema/pg_queue_basic.sql: claim, fenced complete),
-- one job per claim, as `qbench work --dequeue-batch 1` sends them.
WITH next AS MATERIALIZED (SELECT id FROM queue_jobs WHERE status = 'pending' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) UPDATE queue_jobs q SET status = 'processing', attempts = q.attempts + 1, leased_at = now() FROM next WHERE q.id = next.id RETURNING q.id, q.seq, q.enqueued_at_us, q.attempts, q.payload \gset
UPDATE queue_jobs q SET status = 'completed', completed_at = now() FROM unnest(ARRAY[:id]::bigint[], ARRAY[:attempts]::int[]) AS c(id, attempts) WHERE q.id = c.id AND q.status = 'processing' AND q.attempts = c.attempts RETURNING q.id;
