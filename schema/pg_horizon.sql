-- qbench: what the horizon scenario runs: the holder's statements, and what it reads
-- once per second. Nothing to create.
-- The statements after \quit are embedded into qbench, each after a "-- name:" line.
\quit

-- name: settings
-- The settings that decide how vacuum keeps up and whether the server ends a holder,
-- recorded in the manifest (names absent from this server's version are left out).
SELECT name, setting || coalesce(unit, '')
FROM pg_settings
WHERE name IN ('autovacuum', 'autovacuum_naptime', 'autovacuum_max_workers',
               'autovacuum_vacuum_threshold', 'autovacuum_vacuum_scale_factor',
               'autovacuum_vacuum_insert_threshold', 'autovacuum_vacuum_insert_scale_factor',
               'autovacuum_vacuum_cost_delay', 'autovacuum_vacuum_cost_limit',
               'vacuum_cost_limit', 'idle_in_transaction_session_timeout',
               'statement_timeout', 'old_snapshot_threshold', 'hot_standby_feedback',
               'server_version')
ORDER BY name

-- name: hold_xid
-- The forgotten BEGIN: a transaction id, then idle in transaction.
BEGIN; SELECT txid_current()

-- name: hold_snapshot
-- A REPEATABLE READ transaction keeps the snapshot of its first read until it ends,
-- without taking a transaction id.
BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1 FROM {table} LIMIT 1

-- name: analytics
-- One long analytics query: a statement's snapshot lives as long as the statement, and
-- the sleep keeps it running for $1 seconds.
SELECT (SELECT count(*) FROM {table}) AS jobs, pg_sleep($1::float8)

-- name: sample
-- The oldest snapshot or transaction id that holds this database's rows back (what
-- vacuum must keep rows for): this database's sessions, walsenders (a standby's
-- hot_standby_feedback), replication slots and prepared transactions. Then vacuums
-- running on the design's tables ($1, a regular expression; one whose table a user
-- without pg_read_all_stats cannot see is counted too) and their phases, and the wait
-- events of qbench's active sessions (the holder is not one).
-- Its cost: two passes over pg_stat_activity (one row per session) and the progress view.
SELECT greatest(
         (SELECT max(greatest(age(backend_xmin), age(backend_xid)))
          FROM pg_stat_activity
          WHERE datname = current_database() OR backend_type = 'walsender'),
         (SELECT max(greatest(age(xmin), age(catalog_xmin))) FROM pg_replication_slots
          WHERE database IS NULL OR database = current_database()),
         (SELECT max(age(transaction)) FROM pg_prepared_xacts
          WHERE database = current_database()))::bigint AS xmin_age,
       (SELECT count(*) FROM pg_stat_progress_vacuum p LEFT JOIN pg_class c ON c.oid = p.relid
        WHERE p.datname = current_database() AND (c.relname ~ $1 OR c.oid IS NULL)) AS vacuums,
       (SELECT string_agg(c.relname || ':' || replace(p.phase, ' ', '_'), ' ' ORDER BY c.relname)
        FROM pg_stat_progress_vacuum p JOIN pg_class c ON c.oid = p.relid
        WHERE p.datname = current_database() AND c.relname ~ $1) AS phases,
       (SELECT string_agg(w, ' ' ORDER BY w)
        FROM (SELECT wait_event_type || ':' || wait_event || '=' || count(*) AS w
              FROM pg_stat_activity
              WHERE datname = current_database() AND application_name = 'qbench'
                AND state = 'active' AND wait_event IS NOT NULL
              GROUP BY wait_event_type, wait_event) x) AS waits

-- name: relations
-- Each of the design's tables ($1) and their indexes: tuples (tables only), size in
-- bytes, and autovacuum runs so far. A partitioned parent holds no rows: its
-- partitions are listed instead.
SELECT c.relname::text,
       CASE WHEN c.relkind = 'i' THEN 'index' ELSE 'table' END,
       coalesce(s.n_live_tup, 0)::bigint,
       coalesce(s.n_dead_tup, 0)::bigint,
       pg_relation_size(c.oid)::bigint,
       coalesce(s.autovacuum_count, 0)::bigint
FROM pg_class t
JOIN pg_namespace n ON n.oid = t.relnamespace
CROSS JOIN LATERAL (SELECT t.oid AS oid
                    UNION ALL
                    SELECT indexrelid FROM pg_index WHERE indrelid = t.oid) r
JOIN pg_class c ON c.oid = r.oid
LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
WHERE t.relkind = 'r' AND t.relname ~ $1 AND n.nspname = current_schema()
ORDER BY c.relname
