//! The events of a test, from its per-second files: what the server did (vacuums,
//! checkpoints, lock waits, AOF rewrites, RDB saves, slow fsyncs, latency-monitor
//! stalls) and what the test did (outages, pgbench beside it, the warmup's end).
//!
//! A sample at `t` says what was under way at that instant, or what finished in the
//! second before it: an event seen at samples `a..=b` began in `(a-1, a]` and ended in
//! `[b, b+1)`, and is given that whole span, `[a-1, b+1]`.

use crate::format::manifest::Manifest;
use crate::format::metrics::Summary;
use crate::format::server_stats::{DbRow, ValkeyRow};
use crate::text::thousands;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Event {
    /// `autovacuum`, `vacuum`, `autoanalyze`, `checkpoint`, `lock_wait`, `aof_rewrite`,
    /// `rdb_save`, `fsync_delay`, `latency_monitor`, `outage`, `pgbench`, `warmup_end`.
    pub kind: &'static str,
    pub start_s: f64,
    pub end_s: f64,
    pub label: String,
    /// A phase of the test (pgbench beside it, the warmup's end), drawn but never named
    /// as the cause of a spike: it spans the whole test, so it would explain them all.
    pub phase: bool,
    /// How long the server itself reported being stalled (Valkey's latency monitor):
    /// an event far shorter than a spike cannot be its cause alone.
    pub stall_ms: Option<f64>,
    /// Seen, but a symptom of something else, never a cause: a lock wait whose blocker
    /// the server did not name.
    pub symptom: bool,
}

impl Event {
    fn at(kind: &'static str, t_s: f64, label: String) -> Event {
        Event {
            kind,
            start_s: (t_s - 1.0).max(0.0),
            end_s: t_s,
            label,
            phase: false,
            stall_ms: None,
            symptom: false,
        }
    }
}

/// Spans of consecutive samples for which `on` holds: `(first index, last index)`.
fn spans<R>(rows: &[R], on: impl Fn(&R) -> bool) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = vec![];
    for (i, r) in rows.iter().enumerate() {
        if !on(r) {
            continue;
        }
        match out.last_mut() {
            Some((_, b)) if *b + 1 == i => *b = i,
            _ => out.push((i, i)),
        }
    }
    out
}

/// The time span samples `a..=b` stand for: from the sample before `a` to the one after `b`.
fn span_of(ts: &[f64], (a, b): (usize, usize)) -> (f64, f64) {
    let start = if a == 0 { ts[a] - 1.0 } else { ts[a - 1] };
    let end = ts.get(b + 1).copied().unwrap_or(ts[b]);
    (start.max(0.0), end)
}

/// The design's tables' dead tuples just before sample `i` (whatever table the event
/// is on: the label says which it is).
fn dead_before(rows: &[DbRow], i: usize) -> String {
    let dead = rows[i.saturating_sub(1)].dead_tuples;
    thousands(dead as f64)
}

/// Whether the vacuum `name` seen over `span` was on the design's own tables; `None`
/// from a file written before the sampler listed them apart.
fn on_queue(rows: &[DbRow], (a, b): (usize, usize), name: &str) -> Option<bool> {
    let here = &rows[a..=b];
    here.iter().all(|r| r.queue_vacuums_listed).then(|| {
        here.iter()
            .any(|r| r.queue_vacuums_running.split(';').any(|v| v == name))
    })
}

/// PostgreSQL's events, from `TEST_db_stats.csv`'s rows on the test's clock.
pub fn of_postgres(rows: &[DbRow]) -> Vec<Event> {
    let ts: Vec<f64> = rows.iter().map(|r| r.t_s).collect();
    let mut out = vec![];
    // Each vacuum seen under way, per table.
    let mut running: Vec<&str> = rows
        .iter()
        .flat_map(|r| r.vacuums_running.split(';'))
        .filter(|v| !v.is_empty())
        .collect();
    running.sort_unstable();
    running.dedup();
    for name in &running {
        for span in spans(rows, |r| r.vacuums_running.split(';').any(|v| v == *name)) {
            let (start_s, end_s) = span_of(&ts, span);
            let kind = if name.starts_with("autovacuum") {
                "autovacuum"
            } else {
                "vacuum"
            };
            // Only a vacuum of the design's own tables is said with their dead tuples.
            let label = match on_queue(rows, span, name) {
                Some(true) => format!(
                    "{name} (queue tables: {} dead tuples)",
                    dead_before(rows, span.0)
                ),
                Some(false) => format!("{name} (not a queue table)"),
                None => name.to_string(),
            };
            out.push(Event {
                kind,
                start_s,
                end_s,
                label,
                ..Event::default()
            });
        }
    }
    // Runs on the queue tables that began and ended between two samples.
    let seen = |out: &[Event], kind: &str, t_s: f64| {
        out.iter()
            .any(|e| e.kind == kind && e.start_s <= t_s && e.end_s >= t_s - 1.0)
    };
    for (i, r) in rows.iter().enumerate() {
        if r.autovacuum_runs > 0 && !seen(&out, "autovacuum", r.t_s) {
            let label = format!(
                "autovacuum of the queue tables ({} dead tuples)",
                dead_before(rows, i)
            );
            out.push(Event::at("autovacuum", r.t_s, label));
        }
        if r.vacuum_runs > 0 && !seen(&out, "vacuum", r.t_s) {
            let label = format!(
                "vacuum of the queue tables ({} dead tuples)",
                dead_before(rows, i)
            );
            out.push(Event::at("vacuum", r.t_s, label));
        }
        if r.autoanalyze_runs > 0 {
            out.push(Event::at("autoanalyze", r.t_s, "autoanalyze".into()));
        }
    }
    out.extend(checkpoints(rows, &ts));
    for span in spans(rows, |r| r.lock_waiting_sessions > 0) {
        out.push(lock_wait(rows, &ts, span));
    }
    out
}

/// Lock waits over `span`: a cause when the server named who blocked them (the blocker
/// is then the event), a symptom otherwise.
fn lock_wait(rows: &[DbRow], ts: &[f64], span: (usize, usize)) -> Event {
    let (start_s, end_s) = span_of(ts, span);
    let here = &rows[span.0..=span.1];
    let most = here
        .iter()
        .map(|r| r.lock_waiting_sessions)
        .max()
        .unwrap_or(0);
    let mut blockers: Vec<&str> = here
        .iter()
        .flat_map(|r| r.lock_blockers.split(';'))
        .filter(|b| !b.is_empty())
        .collect();
    blockers.sort_unstable();
    blockers.dedup();
    let label = if blockers.is_empty() {
        format!("lock waits (up to {most} qbench sessions; the server named no blocker: a symptom)")
    } else {
        format!(
            "lock waits (up to {most} qbench sessions) behind {}",
            blockers.join("; ")
        )
    };
    Event {
        kind: "lock_wait",
        start_s,
        end_s,
        label,
        symptom: blockers.is_empty(),
        ..Event::default()
    }
}

/// A checkpoint is the samples where the checkpointer was busy, or one began, joined;
/// kept only if one began or finished in it (a busy checkpointer alone may be another
/// chore). Its write and sync times are reported when it finishes.
fn checkpoints(rows: &[DbRow], ts: &[f64]) -> Vec<Event> {
    let begun = |r: &DbRow| r.checkpoints_timed + r.checkpoints_requested > 0;
    let finished = |r: &DbRow| r.checkpoint_write_ms + r.checkpoint_sync_ms > 0.0;
    let mut out = vec![];
    for (a, b) in spans(rows, |r| r.checkpointing || begun(r) || finished(r)) {
        // The finish is reported in the sample after the checkpointer went idle.
        let b = if rows.get(b + 1).is_some_and(finished) {
            b + 1
        } else {
            b
        };
        let during = &rows[a..=b];
        if !during.iter().any(|r| begun(r) || finished(r)) {
            continue;
        }
        let (start_s, end_s) = span_of(ts, (a, b));
        let requested = during.iter().any(|r| r.checkpoints_requested > 0);
        let write: f64 = during.iter().map(|r| r.checkpoint_write_ms).sum();
        let sync: f64 = during.iter().map(|r| r.checkpoint_sync_ms).sum();
        out.push(Event {
            kind: "checkpoint",
            start_s,
            end_s,
            label: format!(
                "checkpoint ({}{})",
                if requested { "requested" } else { "timed" },
                if write + sync > 0.0 {
                    format!(", write {write:.0} ms, sync {sync:.0} ms")
                } else {
                    String::new()
                }
            ),
            phase: false,
            stall_ms: None,
            symptom: false,
        });
    }
    out
}

/// Valkey's events, from `TEST_valkey_stats.csv`'s rows on the test's clock.
pub fn of_valkey(rows: &[ValkeyRow]) -> Vec<Event> {
    let ts: Vec<f64> = rows.iter().map(|r| r.t_s).collect();
    let mut out = vec![];
    type Flag = fn(&ValkeyRow) -> bool;
    let kinds: [(&'static str, &str, Flag); 2] = [
        ("aof_rewrite", "AOF rewrite", |r| r.aof_rewrite_in_progress),
        ("rdb_save", "RDB save", |r| r.rdb_bgsave_in_progress),
    ];
    for (kind, label, on) in kinds {
        for span in spans(rows, on) {
            let (start_s, end_s) = span_of(&ts, span);
            out.push(Event {
                kind,
                start_s,
                end_s,
                label: label.into(),
                phase: false,
                stall_ms: None,
                symptom: false,
            });
        }
    }
    for r in rows {
        if r.aof_delayed_fsync > 0 {
            let label = format!("{} writes waited on a slow fsync", r.aof_delayed_fsync);
            out.push(Event::at("fsync_delay", r.t_s, label));
        }
        if !r.latency_events.is_empty() {
            let what = r.latency_events.replace(':', " ").replace(';', " ms, ");
            let longest = r
                .latency_events
                .split(';')
                .filter_map(|e| e.rsplit_once(':')?.1.parse::<f64>().ok())
                .fold(0.0, f64::max);
            out.push(Event {
                stall_ms: Some(longest),
                symptom: false,
                ..Event::at(
                    "latency_monitor",
                    r.t_s,
                    format!("latency monitor: {what} ms"),
                )
            });
        }
    }
    out
}

/// Outages are seen by every process of a test: overlapping ones are one.
pub fn merge_outages(events: Vec<Event>) -> Vec<Event> {
    let (mut outages, mut rest): (Vec<Event>, Vec<Event>) =
        events.into_iter().partition(|e| e.kind == "outage");
    outages.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
    let mut merged: Vec<Event> = vec![];
    for o in outages {
        match merged.last_mut() {
            Some(m) if o.start_s <= m.end_s => m.end_s = m.end_s.max(o.end_s),
            _ => merged.push(o),
        }
    }
    rest.extend(merged);
    rest
}

/// An event under way for more than half the test (a spread checkpoint, a vacuum of a
/// big table) would be named beside every spike: it is shown as a background phase,
/// and said so, not given as a cause.
pub fn background(events: &mut [Event], test_s: f64) {
    for e in events.iter_mut().filter(|e| !e.phase) {
        let share = (e.end_s - e.start_s) / test_s.max(1.0);
        if share > 0.5 {
            e.phase = true;
            e.label = format!(
                "{} (under way for {:.0} % of the test: background, not named as a cause)",
                e.label,
                share.min(1.0) * 100.0
            );
        }
    }
}

/// The test's own events: outages, pgbench beside it, the warmup before it. `t0` is
/// the test's start, seconds since the epoch.
pub fn of_test(m: &Manifest, summary: &Summary, t0: f64) -> Vec<Event> {
    let mut out = vec![];
    let end = summary.duration_s;
    for o in &summary.outages {
        let start_s = (o.start_epoch_s - t0).max(0.0);
        out.push(Event {
            kind: "outage",
            start_s,
            end_s: o
                .end_epoch_s
                .or(summary.window_end_epoch_s)
                .map_or(end.max(start_s), |e| e - t0),
            label: format!("server unreachable ({} failed calls)", o.errors),
            phase: false,
            stall_ms: None,
            symptom: false,
        });
    }
    if let Some(p) = m.extra.get("pgbench") {
        let window = p["window_s"].as_f64().unwrap_or(end);
        out.push(Event {
            kind: "pgbench",
            start_s: 0.0,
            end_s: window,
            label: "pgbench beside the queue".into(),
            phase: true,
            stall_ms: None,
            symptom: false,
        });
    }
    if m.extra.contains_key("warmup") {
        out.push(Event {
            kind: "warmup_end",
            start_s: 0.0,
            end_s: 0.0,
            label: "warmup end".into(),
            phase: true,
            stall_ms: None,
            symptom: false,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(t_s: f64) -> DbRow {
        crate::format::read::parse_csv::<DbRow>(
            format!(
                "t_s,commits_s,rollbacks_s,tup_inserted_s,tup_updated_s,tup_deleted_s,live_tuples,dead_tuples,autovacuum_runs,autovacuum_total,lock_waiting_sessions,other_lock_waiting_sessions,cache_hit_ratio\n{t_s},0,0,0,0,0,0,0,0,0,0,0,\n"
            )
            .as_bytes(),
            std::path::Path::new("x"),
        )
        .expect("row")
        .remove(0)
    }

    #[test]
    fn a_vacuum_seen_running_spans_the_samples_around_it() {
        let mut rows: Vec<DbRow> = (1..=10).map(|t| row(t as f64)).collect();
        rows[3].dead_tuples = 85_000;
        for r in &mut rows[4..7] {
            r.vacuums_running = "autovacuum queue_jobs".into();
        }
        rows[7].autovacuum_runs = 1;
        // A file from before the queue's vacuums were listed apart: named, no more.
        let ev = of_postgres(&rows);
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert_eq!((ev[0].start_s, ev[0].end_s), (4.0, 8.0));
        assert_eq!(ev[0].kind, "autovacuum");
        assert_eq!(ev[0].label, "autovacuum queue_jobs");
        for r in &mut rows {
            r.queue_vacuums_listed = true;
            r.queue_vacuums_running = r.vacuums_running.clone();
        }
        let ev = of_postgres(&rows);
        assert!(ev[0].label.contains("85,000 dead"), "{}", ev[0].label);
    }

    #[test]
    fn a_run_between_samples_and_a_requested_checkpoint_are_events() {
        let mut rows: Vec<DbRow> = (1..=10).map(|t| row(t as f64)).collect();
        rows[2].vacuum_runs = 1;
        rows[5].checkpoints_requested = 1;
        rows[5].checkpoint_write_ms = 12.0;
        // A busy checkpointer with no checkpoint begun or finished is not one.
        rows[8].checkpointing = true;
        let ev = of_postgres(&rows);
        let kinds: Vec<(&str, f64, f64)> =
            ev.iter().map(|e| (e.kind, e.start_s, e.end_s)).collect();
        assert_eq!(kinds, vec![("vacuum", 2.0, 3.0), ("checkpoint", 5.0, 7.0)]);
        assert!(
            ev[1].label.contains("requested, write 12 ms"),
            "{}",
            ev[1].label
        );
    }

    #[test]
    fn outages_seen_by_two_processes_are_one_and_long_events_are_background() {
        let ev = |kind: &'static str, a: f64, b: f64| Event {
            kind,
            start_s: a,
            end_s: b,
            label: kind.into(),
            phase: false,
            stall_ms: None,
            symptom: false,
        };
        let merged = merge_outages(vec![
            ev("outage", 5.0, 8.0),
            ev("outage", 5.3, 8.4),
            ev("vacuum", 1.0, 2.0),
        ]);
        let outages: Vec<(f64, f64)> = merged
            .iter()
            .filter(|e| e.kind == "outage")
            .map(|e| (e.start_s, e.end_s))
            .collect();
        assert_eq!(outages, vec![(5.0, 8.4)]);
        let mut events = vec![ev("checkpoint", 10.0, 170.0), ev("vacuum", 1.0, 2.0)];
        background(&mut events, 180.0);
        assert!(events[0].phase && events[0].label.contains("background"));
        assert!(!events[1].phase);
    }

    #[test]
    fn a_vacuum_of_another_table_is_named_so_and_a_named_blocker_is_the_cause() {
        let mut rows: Vec<DbRow> = (1..=6).map(|t| row(f64::from(t))).collect();
        rows[2].vacuums_running = "vacuum pgbench_accounts;vacuum queue_jobs".into();
        rows[2].queue_vacuums_running = "vacuum queue_jobs".into();
        for r in &mut rows {
            r.queue_vacuums_listed = true;
        }
        rows[3].lock_waiting_sessions = 4;
        rows[3].lock_blockers =
            "pid 42 (psql): LOCK TABLE queue_jobs IN ACCESS EXCLUSIVE MODE".into();
        rows[5].lock_waiting_sessions = 2;
        let ev = of_postgres(&rows);
        let label = |want: &str| {
            ev.iter()
                .find(|e| e.label.starts_with(want))
                .map(|e| e.label.clone())
        };
        assert_eq!(
            label("vacuum pgbench_accounts").as_deref(),
            Some("vacuum pgbench_accounts (not a queue table)")
        );
        assert!(
            label("vacuum queue_jobs").is_some_and(|l| l.contains("queue tables")),
            "{ev:?}"
        );
        let locks: Vec<&Event> = ev.iter().filter(|e| e.kind == "lock_wait").collect();
        assert_eq!(locks.len(), 2, "{ev:?}");
        assert!(
            !locks[0].symptom && locks[0].label.contains("behind pid 42 (psql): LOCK TABLE"),
            "{locks:?}"
        );
        assert!(
            locks[1].symptom && locks[1].label.contains("symptom"),
            "{locks:?}"
        );
    }
}
