-- qbench: what the db_stats sampler reads once per second. Nothing to create.
-- The statements after \quit are embedded into qbench, each after a "-- name:" line.
\quit

-- name: sample
-- Cumulative counters of this database, the queue tables' tuples and autovacuum runs,
-- and sessions waiting on a lock: qbench's own (application_name 'qbench') apart from
-- everyone else's (pgbench's during a load test). $1 is a regular expression that
-- names the tables of the design under test only.
-- Its cost: one row from pg_stat_database, the design's rows of pg_stat_user_tables,
-- and a pass over pg_stat_activity (one row per session).
SELECT d.xact_commit, d.xact_rollback, d.tup_inserted, d.tup_updated, d.tup_deleted,
       d.blks_hit, d.blks_read,
       t.live, t.dead, t.autovacuums,
       a.qbench_waiting, a.other_waiting
FROM pg_stat_database d,
     LATERAL (SELECT coalesce(sum(n_live_tup), 0)::bigint AS live,
                     coalesce(sum(n_dead_tup), 0)::bigint AS dead,
                     coalesce(sum(autovacuum_count), 0)::bigint AS autovacuums
              FROM pg_stat_user_tables
              WHERE relname ~ $1) AS t,
     LATERAL (SELECT count(*) FILTER (WHERE application_name = 'qbench') AS qbench_waiting,
                     count(*) FILTER (WHERE application_name <> 'qbench') AS other_waiting
              FROM pg_stat_activity
              WHERE datname = current_database() AND wait_event_type = 'Lock') AS a
WHERE d.datname = current_database()
