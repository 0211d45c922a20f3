-- qbench: what the db_stats sampler reads once per second. Nothing to create.
-- The statements after \quit are embedded into qbench, each after a "-- name:" line.
\quit

-- name: sample
-- Cumulative counters of this database, and the queue tables' tuples and autovacuum runs.
SELECT d.xact_commit, d.xact_rollback, d.tup_inserted, d.tup_updated, d.tup_deleted,
       d.blks_hit, d.blks_read,
       t.live, t.dead, t.autovacuums,
       (SELECT count(*) FROM pg_stat_activity
         WHERE datname = current_database() AND wait_event_type = 'Lock') AS lock_waiting
FROM pg_stat_database d,
     LATERAL (SELECT coalesce(sum(n_live_tup), 0)::bigint AS live,
                     coalesce(sum(n_dead_tup), 0)::bigint AS dead,
                     coalesce(sum(autovacuum_count), 0)::bigint AS autovacuums
              FROM pg_stat_user_tables
              WHERE relname LIKE 'queue\_jobs%') AS t
WHERE d.datname = current_database()
