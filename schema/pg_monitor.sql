-- qbench: what the db_stats sampler reads once per second. Nothing to create.
-- The statements after \quit are embedded into qbench, each after a "-- name:" line.
\quit

-- name: sample
-- Cumulative counters of this database, the queue tables' tuples, autovacuum,
-- autoanalyze and manual VACUUM runs, the vacuums running in this database now (from
-- pg_stat_progress_vacuum, named "autovacuum TABLE" or "vacuum TABLE"), whether the
-- checkpointer is busy, WAL bytes, and sessions waiting on a lock: qbench's own
-- (application_name 'qbench') apart from everyone else's (pgbench's during a load test),
-- and who blocks qbench's waiting sessions (pg_blocking_pids: "pid N (application):
-- query", the query cut to 100 characters). $1 is a regular expression that names the
-- tables of the design under test only: the vacuums running on them are listed again
-- apart, so a vacuum of another table (pgbench_accounts) is never called the queue's.
-- Its cost: one row from pg_stat_database and pg_stat_wal, the design's rows of
-- pg_stat_user_tables, the (usually empty) progress view, and a pass over
-- pg_stat_activity (one row per session).
SELECT d.xact_commit, d.xact_rollback, d.tup_inserted, d.tup_updated, d.tup_deleted,
       d.blks_hit, d.blks_read,
       t.live, t.dead, t.autovacuums,
       a.qbench_waiting, a.other_waiting,
       t.autoanalyzes, t.vacuums,
       (SELECT wal_bytes::bigint FROM pg_stat_wal) AS wal_bytes,
       -- Without pg_read_all_stats another user's vacuum shows no relid or backend type:
       -- it is still counted, as "vacuum (a table this user cannot see)".
       (SELECT string_agg(CASE WHEN s.backend_type = 'autovacuum worker'
                               THEN 'autovacuum ' ELSE 'vacuum ' END
                          || coalesce(c.relname, '(a table this user cannot see)'), ';'
                          ORDER BY c.relname)
        FROM pg_stat_progress_vacuum p
        LEFT JOIN pg_class c ON c.oid = p.relid
        LEFT JOIN pg_stat_activity s ON s.pid = p.pid
        WHERE p.datname = current_database()) AS vacuums_running,
       (SELECT string_agg(CASE WHEN s.backend_type = 'autovacuum worker'
                               THEN 'autovacuum ' ELSE 'vacuum ' END || c.relname, ';'
                          ORDER BY c.relname)
        FROM pg_stat_progress_vacuum p
        JOIN pg_class c ON c.oid = p.relid
        LEFT JOIN pg_stat_activity s ON s.pid = p.pid
        WHERE p.datname = current_database() AND c.relname ~ $1) AS queue_vacuums_running,
       -- Who blocks qbench's waiting sessions, followed down the chain (a LOCK TABLE
       -- waiting behind a long transaction blocks the workers, and the transaction is
       -- the root): the holders that wait on no lock themselves are named. With no
       -- qbench session waiting (the usual case) pg_blocking_pids is never called. The
       -- query's own ";" become "," (the list is ";"-separated). UNION ends a cycle.
       (WITH RECURSIVE chain(pid) AS (
            SELECT unnest(pg_blocking_pids(w.pid))
            FROM pg_stat_activity w
            WHERE w.datname = current_database() AND w.wait_event_type = 'Lock'
              AND w.application_name = 'qbench'
            UNION
            SELECT unnest(pg_blocking_pids(c.pid)) FROM chain c)
        SELECT string_agg(DISTINCT 'pid ' || b.pid || ' (' || coalesce(nullif(b.application_name, ''), b.backend_type, '?')
                          || '): ' || left(translate(regexp_replace(coalesce(b.query, ''), '\s+', ' ', 'g'), ';', ','), 100), ';')
        FROM chain JOIN pg_stat_activity b ON b.pid = chain.pid
        WHERE b.wait_event_type IS DISTINCT FROM 'Lock') AS lock_blockers,
       -- Idle, the checkpointer waits on CheckpointerMain; anything else is a checkpoint
       -- under way (CheckpointWriteDelay while it spreads its writes, I/O while it syncs).
       (SELECT coalesce(bool_or(wait_event IS DISTINCT FROM 'CheckpointerMain'), false)
        FROM pg_stat_activity WHERE backend_type = 'checkpointer') AS checkpointing
FROM pg_stat_database d,
     LATERAL (SELECT coalesce(sum(n_live_tup), 0)::bigint AS live,
                     coalesce(sum(n_dead_tup), 0)::bigint AS dead,
                     coalesce(sum(autovacuum_count), 0)::bigint AS autovacuums,
                     coalesce(sum(autoanalyze_count), 0)::bigint AS autoanalyzes,
                     coalesce(sum(vacuum_count), 0)::bigint AS vacuums
              FROM pg_stat_user_tables
              WHERE relname ~ $1) AS t,
     LATERAL (SELECT count(*) FILTER (WHERE application_name = 'qbench') AS qbench_waiting,
                     count(*) FILTER (WHERE application_name <> 'qbench') AS other_waiting
              FROM pg_stat_activity
              WHERE datname = current_database() AND wait_event_type = 'Lock') AS a
WHERE d.datname = current_database()

-- name: checkpoints_before_17
-- Checkpoints begun (timed, requested) and the milliseconds spent writing and syncing,
-- cumulative; PostgreSQL 14-16 keep them in pg_stat_bgwriter.
SELECT checkpoints_timed, checkpoints_req,
       checkpoint_write_time::float8, checkpoint_sync_time::float8
FROM pg_stat_bgwriter

-- name: checkpoints
-- The same from PostgreSQL 17 on, where they moved to pg_stat_checkpointer.
SELECT num_timed, num_requested, write_time::float8, sync_time::float8
FROM pg_stat_checkpointer
