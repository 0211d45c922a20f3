-- The textbook job-at-a-time SKIP LOCKED loop (claim and complete in one transaction),
-- run on qbench's own queue_jobs table: the ceiling qbench's skip_locked drain is held to.
BEGIN;
SELECT id, payload FROM queue_jobs WHERE status = 'pending' ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1 \gset
UPDATE queue_jobs SET status = 'completed', completed_at = now() WHERE id = :id;
COMMIT;
