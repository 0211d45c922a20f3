-- Exactly qbench's partitioned statements (schema/pg_queue_partitioned.sql), as its workers
-- run them: client i claims from home partition i % 16 directly, steals through the parent
-- when home is empty, then completes. One branch per partition keeps -M prepared possible
-- (a table name cannot be a parameter). Written out for the default 16 partitions.
\set id 0
\set part 0
\set home :client_id % 16
\if :home = 0
WITH next AS MATERIALIZED (SELECT id FROM queue_jobs_part_0 WHERE status = 'pending' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) UPDATE queue_jobs_part_0 q SET status = 'processing', attempts = q.attempts + 1, leased_at = now() FROM next WHERE q.id = next.id RETURNING q.id, q.part, q.attempts \aset
\elif :home = 1
WITH next AS MATERIALIZED (SELECT id FROM queue_jobs_part_1 WHERE status = 'pending' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) UPDATE queue_jobs_part_1 q SET status = 'processing', attempts = q.attempts + 1, leased_at = now() FROM next WHERE q.id = next.id RETURNING q.id, q.part, q.attempts \aset
\elif :home = 2
WITH next AS MATERIALIZED (SELECT id FROM queue_jobs_part_2 WHERE status = 'pending' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) UPDATE queue_jobs_part_2 q SET status = 'processing', attempts = q.attempts + 1, leased_at = now() FROM next WHERE q.id = next.id RETURNING q.id, q.part, q.attempts \aset
\elif :home = 3
WITH next AS MATERIALIZED (SELECT id FROM queue_jobs_part_3 WHERE status = 'pending' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) UPDATE queue_jobs_part_3 q SET status = 'processing', attempts = q.attempts + 1, leased_at = now() FROM next WHERE q.id = next.id RETURNING q.id, q.part, q.attempts \aset
\elif :home = 4
WITH next AS MATERIALIZED (SELECT id FROM queue_jobs_part_4 WHERE status = 'pending' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) UPDATE queue_jobs_part_4 q SET status = 'processing', attempts = q.attempts + 1, leased_at = now() FROM next WHERE q.id = next.id RETURNING q.id, q.part, q.attempts \aset
\elif :home = 5
WITH next AS MATERIALIZED (SELECT id FROM queue_jobs_part_5 WHERE status = 'pending' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) UPDATE queue_jobs_part_5 q SET status = 'processing', attempts = q.attempts + 1, leased_at = now() FROM next WHERE q.id = next.id RETURNING q.id, q.part, q.attempts \aset
\elif :home = 6
WITH next AS MATERIALIZED (SELECT id FROM queue_jobs_part_6 WHERE status = 'pending' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) UPDATE queue_jobs_part_6 q SET status = 'processing', attempts = q.attempts + 1, leased_at = now() FROM next WHERE q.id = next.id RETURNING q.id, q.part, q.attempts \aset
\elif :home = 7
WITH next AS MATERIALIZED (SELECT id FROM queue_jobs_part_7 WHERE status = 'pending' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) UPDATE queue_jobs_part_7 q SET status = 'processing', attempts = q.attempts + 1, leased_at = now() FROM next WHERE q.id = next.id RETURNING q.id, q.part, q.attempts \aset
\elif :home = 8
WITH next AS MATERIALIZED (SELECT id FROM queue_jobs_part_8 WHERE status = 'pending' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) UPDATE queue_jobs_part_8 q SET status = 'processing', attempts = q.attempts + 1, leased_at = now() FROM next WHERE q.id = next.id RETURNING q.id, q.part, q.attempts \aset
\elif :home = 9
WITH next AS MATERIALIZED (SELECT id FROM queue_jobs_part_9 WHERE status = 'pending' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) UPDATE queue_jobs_part_9 q SET status = 'processing', attempts = q.attempts + 1, leased_at = now() FROM next WHERE q.id = next.id RETURNING q.id, q.part, q.attempts \aset
\elif :home = 10
WITH next AS MATERIALIZED (SELECT id FROM queue_jobs_part_10 WHERE status = 'pending' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) UPDATE queue_jobs_part_10 q SET status = 'processing', attempts = q.attempts + 1, leased_at = now() FROM next WHERE q.id = next.id RETURNING q.id, q.part, q.attempts \aset
\elif :home = 11
WITH next AS MATERIALIZED (SELECT id FROM queue_jobs_part_11 WHERE status = 'pending' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) UPDATE queue_jobs_part_11 q SET status = 'processing', attempts = q.attempts + 1, leased_at = now() FROM next WHERE q.id = next.id RETURNING q.id, q.part, q.attempts \aset
\elif :home = 12
WITH next AS MATERIALIZED (SELECT id FROM queue_jobs_part_12 WHERE status = 'pending' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) UPDATE queue_jobs_part_12 q SET status = 'processing', attempts = q.attempts + 1, leased_at = now() FROM next WHERE q.id = next.id RETURNING q.id, q.part, q.attempts \aset
\elif :home = 13
WITH next AS MATERIALIZED (SELECT id FROM queue_jobs_part_13 WHERE status = 'pending' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) UPDATE queue_jobs_part_13 q SET status = 'processing', attempts = q.attempts + 1, leased_at = now() FROM next WHERE q.id = next.id RETURNING q.id, q.part, q.attempts \aset
\elif :home = 14
WITH next AS MATERIALIZED (SELECT id FROM queue_jobs_part_14 WHERE status = 'pending' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) UPDATE queue_jobs_part_14 q SET status = 'processing', attempts = q.attempts + 1, leased_at = now() FROM next WHERE q.id = next.id RETURNING q.id, q.part, q.attempts \aset
\elif :home = 15
WITH next AS MATERIALIZED (SELECT id FROM queue_jobs_part_15 WHERE status = 'pending' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) UPDATE queue_jobs_part_15 q SET status = 'processing', attempts = q.attempts + 1, leased_at = now() FROM next WHERE q.id = next.id RETURNING q.id, q.part, q.attempts \aset
\endif
\if :id = 0
WITH next AS MATERIALIZED (SELECT part, id FROM queue_jobs_part WHERE status = 'pending' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) UPDATE queue_jobs_part q SET status = 'processing', attempts = q.attempts + 1, leased_at = now() FROM next WHERE q.part = next.part AND q.id = next.id RETURNING q.id, q.part, q.attempts \aset
\endif
UPDATE queue_jobs_part q SET status = 'completed', completed_at = now() FROM unnest(ARRAY[:id]::bigint[], ARRAY[:attempts]::int[]) AS c(id, attempts) WHERE q.part = :part AND q.id = c.id AND q.status = 'processing' AND q.attempts = c.attempts RETURNING q.id;
