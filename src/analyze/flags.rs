//! Red flags per test, and the comparability of the hosts behind the results: everything
//! that makes a row's numbers untrustworthy or not comparable, said in plain words.

use super::load::Folder;
use crate::format::summary::Row;

/// The flags of one row; `rows` are all rows (the load scenario is held against warm).
fn flags_of(r: &Row, rows: &[Row], missing: &[String]) -> Vec<String> {
    let mut f: Vec<String> = vec![];
    if !r.complete {
        f.push("incomplete (interrupted or failed): left out of the findings".into());
    }
    audit_flags(r, &mut f);
    match r.state.as_str() {
        "over_capacity" => f.push(format!(
            "over capacity ({}): its latency measures the backlog and the test's length, so it is ranked by completed throughput",
            r.state_reason
        )),
        "stalled" => f.push(format!(
            "stalled ({}): its tail is the stall's, and it ranks by that latency",
            r.state_reason
        )),
        _ => {}
    }
    if r.closed_loop {
        f.push("closed loop (--rate max): jobs were stamped when sent, so queueing behind the server is not in its latencies".into());
    }
    if r.scenario == "load" {
        load_drop(r, rows, &mut f);
    }
    if let (Some(p50), Some(p99)) = (r.p50_ms, r.p99_ms) {
        if p50 > 0.0 && p99 > 10.0 * p50 {
            f.push(format!(
                "p99 is {:.0}× p50 ({p99:.1} vs {p50:.1} ms): queueing",
                p99 / p50
            ));
        }
    }
    resource_flags(r, &mut f);
    protocol_flag(r, &mut f);
    library_wakeup_flag(r, &mut f);
    if r.p50_ms.is_none() {
        f.push("missing metrics: no completed job was measured".into());
    }
    if !missing.is_empty() {
        f.push(format!("missing metrics: {}", missing.join(", ")));
    }
    f
}

/// What the audit by identity found.
fn audit_flags(r: &Row, f: &mut Vec<String>) {
    if let Some(l) = r.lost.filter(|l| *l > 0) {
        f.push(format!("{l} job(s) LOST (seqs {})", r.lost_seqs));
    }
    if r.audit == "inconclusive" {
        f.push(format!("audit inconclusive: {}", r.audit_note));
    }
    if let Some(d) = r.duplicated.filter(|d| *d > 0) {
        f.push(format!("{d} job(s) completed more than once"));
    }
    if let Some(left) = r.left_in_queue.filter(|l| *l > 0) {
        f.push(format!(
            "{left} job(s) not drained when the test ended: kept in the latencies as censored samples (e2e_censored p99 {})",
            crate::text::ms_unit(r.censored_p99_ms, 1)
        ));
    }
    if let Some(n) = r.late_completions.filter(|n| *n > 0) {
        f.push(format!(
            "{n} completion(s) refused, the job handed to another worker or completed already: the work was done twice (with a lease: visibility_timeout_s too short)"
        ));
    }
    if let Some(n) = r.foreign.filter(|n| *n > 0) {
        f.push(format!(
            "{n} job(s) this test did not produce were in the queue (an earlier run's, or its warmup's, left over): they are in its latencies"
        ));
    }
    if !r.clamped.is_empty() {
        f.push(format!(
            "latencies above an hour, recorded as an hour: {}",
            r.clamped
        ));
    }
    if !r.negative.is_empty() {
        f.push(format!(
            "negative latencies (hosts' clocks apart), recorded as 0: {}",
            r.negative
        ));
    }
    if let Some(ms) = r.started_late_max_ms.filter(|ms| *ms > 1000.0) {
        f.push(format!(
            "a process began {:.1} s after --start-at (still connecting, or its host's clock is behind): the processes did not start together",
            ms / 1000.0
        ));
    }
    if let (Some(skew), Some(n)) = (r.shard_skew.filter(|s| *s > 1.25), r.shards) {
        f.push(format!(
            "the cluster's {n} primaries shared the work unevenly (skew {skew:.2}: the busiest processed {skew:.2}× the mean commands; jobs completed per primary {}): each runs commands on one thread, so the cluster's capacity is its busiest primary's",
            r.shard_completed
        ));
    }
    if let Some(s) = r.clock_spread_ms.filter(|s| *s > 1.0) {
        f.push(format!(
            "the processes' clocks differ by {s:.1} ms against the server: latencies that cross hosts carry that error (synchronise them with NTP)"
        ));
    }
}

/// The seed's flag: throughput more than 50 % lower under pgbench than warm (or cold).
fn load_drop(r: &Row, rows: &[Row], f: &mut Vec<String>) {
    let reference = ["warm", "cold"].iter().find_map(|sc| {
        rows.iter().find(|o| {
            o.design() == r.design()
                && o.durability_tier == r.durability_tier
                && o.scenario == *sc
                && o.complete
        })
    });
    let (Some(refr), Some(t)) = (reference, r.throughput_jobs_s) else {
        return;
    };
    if let Some(base) = refr.throughput_jobs_s.filter(|b| *b > 0.0) {
        if t < 0.5 * base {
            f.push(format!(
                "throughput {:.0}% lower under load ({t:.0} vs {base:.0} jobs/s {})",
                (1.0 - t / base) * 100.0,
                refr.scenario
            ));
        }
    }
}

/// CPU over the measured window, one server thread's saturation, and memory's source.
fn resource_flags(r: &Row, f: &mut Vec<String>) {
    if let Some(c) = r.cpu_pct.filter(|c| *c >= 95.0) {
        f.push(format!(
            "CPU at {c:.0}% of all cores over the measured window (≥ 95%): bottlenecked"
        ));
    }
    if let Some(t) = r.server_busiest_thread_cores.filter(|t| *t >= 0.9) {
        f.push(format!(
            "the server's busiest thread used {t:.2} of one core for 3 s (≥ 0.9): a server that runs commands on one thread (Valkey) is saturated there, whatever its total CPU says"
        ));
    }
    if r.server_mem_source == "rss" {
        f.push(
            "server memory is RSS (PSS was unreadable): shared memory is counted once per process"
                .into(),
        );
    }
}

/// A design whose protocol caps its workers' rate (River: one fetch of at most MaxWorkers
/// jobs per FetchCooldown; pg-boss: a batch per worker per polling interval) ran at 90 % of that cap or more while more was asked of it (no
/// offered rate, one at or above the cap, or a test that fell behind): its throughput is
/// the protocol's setting, not the server's capacity. A test that kept up with a rate
/// below the cap is not flagged: its throughput is the offered rate.
fn protocol_flag(r: &Row, f: &mut Vec<String>) {
    let (Some(bound), Some(tput)) = (r.protocol_bound_jobs_s, r.throughput_jobs_s) else {
        return;
    };
    let pushed = r.offered_rate.is_none_or(|o| o >= bound)
        || matches!(r.state.as_str(), "over_capacity" | "stalled");
    if bound > 0.0 && tput >= 0.9 * bound && pushed {
        f.push(format!(
            "bound by its own protocol: {tput:.0} jobs/s against the {bound:.0} its settings allow its workers (the design's options say which: more workers, or a shorter fetch cooldown or polling interval, raise it), not the server's limit"
        ));
    }
}

/// A library design whose library wakes by LISTEN/NOTIFY as it ships, run with
/// `--wakeup poll`: its latency is the library's poll-only mode's, not its default's.
fn library_wakeup_flag(r: &Row, f: &mut Vec<String>) {
    if r.library_wakeup == "notify" && r.wakeup == "poll" {
        f.push(format!(
            "ran with --wakeup poll, the poll-only mode of the library {} models: the library wakes its workers by LISTEN/NOTIFY as it ships (--wakeup notify runs it so)",
            r.queue
        ));
    }
}

/// The seed's red flags, plus what makes a row untrustworthy.
pub fn red_flags(rows: &mut [Row], missing: &[(String, Vec<String>)]) {
    let snapshot: Vec<Row> = rows.to_vec();
    for r in rows.iter_mut() {
        let m = missing
            .iter()
            .find(|(t, _)| *t == r.test)
            .map(|(_, m)| m.clone())
            .unwrap_or_default();
        r.red_flags = flags_of(r, &snapshot, &m).join("; ");
    }
}

/// Differences between the hosts behind the folders; the seed requires identical VMs.
pub fn comparability(folders: &[Folder]) -> Vec<String> {
    let mut hosts = vec![];
    for f in folders {
        for g in &f.tests {
            for p in &g.parts {
                let h = &p.manifest.host;
                let key = (
                    p.manifest.backend.as_str(),
                    h.hostname.clone(),
                    h.cpu_model.clone(),
                    h.logical_cores,
                    h.memory_mb,
                );
                if !hosts.contains(&key) {
                    hosts.push(key);
                }
            }
        }
    }
    let mut out = vec![];
    let pg: Vec<_> = hosts.iter().filter(|h| h.0 == "postgresql").collect();
    let vk: Vec<_> = hosts.iter().filter(|h| h.0 == "valkey").collect();
    for a in &pg {
        for b in &vk {
            let mut diffs = vec![];
            if a.2 != b.2 {
                diffs.push(format!("CPU {:?} vs {:?}", a.2, b.2));
            }
            if a.3 != b.3 {
                diffs.push(format!("{} vs {} cores", a.3, b.3));
            }
            let (ma, mb) = (a.4 as f64, b.4 as f64);
            if (ma - mb).abs() > 0.05 * ma.max(mb) {
                diffs.push(format!("{} vs {} MB of memory", a.4, b.4));
            }
            if !diffs.is_empty() {
                out.push(format!(
                    "the PostgreSQL results ({}) and the Valkey results ({}) come from different machines: {}; the seed requires identical VMs, so the comparison mixes hardware with design",
                    a.1,
                    b.1,
                    diffs.join(", ")
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> Row {
        Row {
            test: "t".into(),
            queue: "skip_locked".into(),
            complete: true,
            audit: "exact".into(),
            p50_ms: Some(10.0),
            p99_ms: Some(20.0),
            lost: Some(0),
            duplicated: Some(0),
            left_in_queue: Some(0),
            ..Row::default()
        }
    }

    /// The protocol flag on known truth: 195 jobs/s against a bound of 200 is flagged when
    /// more was asked; 150 (75 %), a row without a bound, and a test that kept up with a
    /// rate under the bound are not.
    #[test]
    fn a_protocol_bound_run_is_flagged_from_ninety_percent() {
        let at = |tput: f64, bound: Option<f64>, offered: Option<f64>, state: &str| {
            let r = Row {
                throughput_jobs_s: Some(tput),
                protocol_bound_jobs_s: bound,
                offered_rate: offered,
                state: state.into(),
                ..row()
            };
            flags_of(&r, &[], &[])
                .iter()
                .any(|l| l.contains("bound by its own protocol"))
        };
        // A burn-down, and a rate over the bound.
        assert!(at(195.0, Some(200.0), None, "sustained"));
        assert!(at(180.0, Some(200.0), Some(300.0), "over_capacity"));
        assert!(!at(150.0, Some(200.0), None, "sustained"));
        assert!(!at(195.0, None, None, "sustained"));
        // Kept up with 190 jobs/s offered under a bound of 200: the rate is the producer's.
        assert!(!at(190.0, Some(200.0), Some(190.0), "sustained"));
        assert!(at(190.0, Some(200.0), Some(190.0), "stalled"));
    }

    /// A library that notifies as it ships, run with poll, is flagged; with notify it is
    /// not, nor is a design whose library has no such default.
    #[test]
    fn a_notifying_library_run_with_poll_is_flagged() {
        let flagged = |library_wakeup: &str, wakeup: &str| {
            let r = Row {
                queue: "river".into(),
                library_wakeup: library_wakeup.into(),
                wakeup: wakeup.into(),
                ..row()
            };
            flags_of(&r, &[], &[])
                .iter()
                .any(|l| l.contains("poll-only mode"))
        };
        assert!(flagged("notify", "poll"));
        assert!(!flagged("notify", "notify"));
        assert!(!flagged("", "poll"));
    }

    /// The skew flag on known truth: 4 streams on 3 primaries, each job's commands
    /// alone (1.5) is flagged; an even spread (1.0) and the threshold itself are not.
    #[test]
    fn an_uneven_cluster_is_flagged_above_a_quarter() {
        for (skew, flagged) in [(1.5, true), (1.251, true), (1.25, false), (1.0, false)] {
            let mut r = row();
            r.shards = Some(3);
            r.shard_skew = Some(skew);
            r.shard_completed = "a=200 b=100 c=100".into();
            let f = flags_of(&r, std::slice::from_ref(&r), &[]);
            assert_eq!(
                f.iter().any(|l| l.contains("unevenly")),
                flagged,
                "{skew}: {f:?}"
            );
        }
    }

    #[test]
    fn every_way_a_job_goes_wrong_is_flagged() {
        let mut r = row();
        r.duplicated = Some(2);
        r.late_completions = Some(3);
        r.foreign = Some(4);
        r.audit = "inconclusive".into();
        r.audit_note = "the queue could not be read at the end: timeout".into();
        r.clamped = "e2e:1".into();
        r.negative = "queue_wait:2".into();
        r.clock_spread_ms = Some(3.5);
        r.started_late_max_ms = Some(2500.0);
        r.state = "over_capacity".into();
        r.state_reason =
            "completions fell behind arrivals (900 of 1000 jobs/s while the load was steady)"
                .into();
        r.server_busiest_thread_cores = Some(0.97);
        let mut rows = vec![r, row()];
        red_flags(&mut rows, &[]);
        let f = &rows[0].red_flags;
        for want in [
            "2 job(s) completed more than once",
            "3 completion(s) refused",
            "4 job(s) this test did not produce",
            "audit inconclusive: the queue could not be read",
            "e2e:1",
            "queue_wait:2",
            "a process began 2.5 s after --start-at",
            "clocks differ by 3.5 ms",
            "over capacity (completions fell behind",
            "busiest thread used 0.97",
        ] {
            assert!(f.contains(want), "{want}: {f}");
        }
        assert!(rows[1].red_flags.is_empty(), "{}", rows[1].red_flags);
        assert!(!rows[0].comparable() && rows[1].comparable());
    }
}
