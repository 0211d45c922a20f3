//! Red flags per test, comparability of hosts, and the answers to the seed's five research
//! questions — with the measured numbers, and saying so when the data cannot answer.

use crate::format::durability::{Durability, Tier};
use crate::format::summary::{best_pg, Finding, Row};

pub const QUESTIONS: [&str; 5] = [
    "1. Does Valkey Streams reduce database contention compared to DB queues?",
    "2. How does tail latency change under load?",
    "3. Does Valkey preserve throughput when PostgreSQL is busy?",
    "4. Which DB queue optimization performs best?",
    "5. How large is the performance gap under real contention?",
];

fn find<'a>(rows: &'a [&Row], design: &str, scenario: &str) -> Option<&'a Row> {
    rows.iter()
        .copied()
        .find(|r| r.design() == design && r.scenario == scenario)
}

fn ms(v: Option<f64>) -> String {
    crate::text::ms_unit(v, 1)
}

/// CPU in cores (1 = one core busy), as findings print it.
fn cores(v: Option<f64>) -> String {
    v.map_or("-".into(), |c| format!("{c:.2} cores"))
}

/// The PostgreSQL designs among the rows (a design woken by NOTIFY counts apart), in
/// their order.
fn pg_designs(rows: &[&Row]) -> Vec<String> {
    let mut out: Vec<String> = vec![];
    for r in rows.iter().filter(|r| r.backend == "postgresql") {
        if !out.contains(&r.design()) {
            out.push(r.design());
        }
    }
    out
}

/// The Valkey design's name among the rows (valkey_streams).
fn valkey_design(rows: &[&Row]) -> Option<String> {
    rows.iter()
        .find(|r| r.backend == "valkey")
        .map(|r| r.design())
}

/// The durability tiers among complete rows, strictest first (empty: not recorded).
fn tiers(all: &[Row]) -> Vec<String> {
    let mut t: Vec<String> = all
        .iter()
        .filter(|r| r.complete)
        .map(|r| r.durability_tier.clone())
        .collect();
    t.sort_by_key(|x| crate::format::durability::strictness(x));
    t.dedup();
    t
}

/// The findings, within one durability tier at a time: rows of different tiers are
/// never ranked together. When each backend ran in one tier and the two differ (the
/// seed's mix), the five questions are answered once and the answers that compare the
/// two backends carry the mismatch banner; when a backend ran in several tiers, the
/// questions are asked per tier.
pub fn findings(all: &[Row]) -> (Vec<Finding>, Vec<String>) {
    let tiers = tiers(all);
    let one_each = ["postgresql", "valkey"].iter().all(|b| {
        let mut t: Vec<&str> = all
            .iter()
            .filter(|r| r.complete && r.backend == *b)
            .map(|r| r.durability_tier.as_str())
            .collect();
        t.dedup();
        t.len() <= 1
    });
    if tiers.len() <= 1 || one_each {
        let (mut f, c) = findings_in(all);
        if tier_banner(all).is_some() {
            // 1, 3 and 5 compare PostgreSQL with Valkey: each says it is across tiers.
            let (pg, vk) = (tier_of(all, "postgresql"), tier_of(all, "valkey"));
            for i in [0, 2, 4] {
                f[i].answer = format!(
                    "{} NOT LIKE FOR LIKE: PostgreSQL ran {pg} and Valkey {vk} (see the durability banner).",
                    f[i].answer
                );
            }
        }
        return (f, c);
    }
    let (mut out, mut caveats) = (vec![], vec![]);
    for t in &tiers {
        let rows: Vec<Row> = all
            .iter()
            .filter(|r| &r.durability_tier == t || !r.complete)
            .cloned()
            .collect();
        let (f, c) = findings_in(&rows);
        let label = if t.is_empty() { "tier not recorded" } else { t };
        out.extend(f.into_iter().map(|f| Finding {
            question: format!("[{label}] {}", f.question),
            answer: f.answer,
        }));
        for c in c {
            if !caveats.contains(&c) {
                caveats.push(c);
            }
        }
    }
    (out, caveats)
}

/// The tier one backend's complete rows ran in (the first, when findings are asked
/// once: each backend then has one).
fn tier_of(all: &[Row], backend: &str) -> String {
    all.iter()
        .find(|r| r.complete && r.backend == backend)
        .map(|r| match r.durability_tier.as_str() {
            "" => "in a tier not recorded".to_string(),
            t => t.to_string(),
        })
        .unwrap_or_default()
}

/// The red banner owed when PostgreSQL and Valkey rows exist but never in one tier.
pub fn tier_banner(all: &[Row]) -> Option<String> {
    let tiers_of = |backend: &str| {
        let mut t: Vec<&str> = all
            .iter()
            .filter(|r| r.complete && r.backend == backend)
            .map(|r| match r.durability_tier.as_str() {
                "" => "tier not recorded",
                t => t,
            })
            .collect();
        t.sort_unstable();
        t.dedup();
        t
    };
    let (pg, vk) = (tiers_of("postgresql"), tiers_of("valkey"));
    if pg.is_empty() || vk.is_empty() || pg.iter().any(|t| vk.contains(t)) {
        return None;
    }
    Some(format!(
        "MISMATCHED DURABILITY: PostgreSQL ran {} and Valkey {}; a crash loses different things on each side, so this is not like for like (run both with the same --durability).",
        pg.join("/"),
        vk.join("/")
    ))
}

/// Encryption costs CPU and round-trip time: say so when the backends differ in it.
fn tls_mismatch(all: &[Row]) -> Option<String> {
    let on = |b: &str| {
        let mut v: Vec<bool> = all
            .iter()
            .filter(|r| r.complete && r.backend == b)
            // Empty: a summary written before TLS support, when all was plaintext.
            .filter_map(|r| match r.server_tls.as_str() {
                "" | "off" => Some(false),
                "unknown" => None,
                _ => Some(true),
            })
            .collect();
        v.dedup();
        v
    };
    let (pg, vk) = (on("postgresql"), on("valkey"));
    let word = |v: &[bool]| match v {
        [true] => "encrypted",
        [false] => "plaintext",
        _ => "partly encrypted",
    };
    (!pg.is_empty() && !vk.is_empty() && pg != vk).then(|| {
        format!(
            "NOT LIKE FOR LIKE in TLS: PostgreSQL's sessions were {} and Valkey's {} \
             (server_tls in summary.csv); comparisons across the backends include TLS's cost \
             on one side only",
            word(&pg),
            word(&vk)
        )
    })
}

/// A Valkey Cluster against one PostgreSQL server: more server processes on one side.
fn cluster_caveat(all: &[Row]) -> Option<String> {
    let n = all
        .iter()
        .filter(|r| r.complete && r.backend == "valkey")
        .filter_map(|r| r.shards)
        .max()?;
    let pg = all.iter().any(|r| r.complete && r.backend == "postgresql");
    Some(format!(
        "Valkey ran as a cluster of {n} primaries{}: each primary is its own single-threaded \
         server, so on shared cores the comparison is of {n} servers against one{}",
        if pg {
            " and PostgreSQL as one server"
        } else {
            ""
        },
        if pg {
            "; it is not like for like in servers"
        } else {
            ""
        }
    ))
}

/// The findings over rows of one tier. Latency comparisons take the rows that describe
/// their design and kept up or stalled (a stall's tail is a finding); rows over capacity
/// count by completed throughput; every row left out is named with why.
fn findings_in(all: &[Row]) -> (Vec<Finding>, Vec<String>) {
    let rows: Vec<&Row> = all.iter().filter(|r| r.ranks_by_latency()).collect();
    let throughput_rows: Vec<&Row> = all.iter().filter(|r| r.comparable()).collect();
    let mut caveats = left_out(all);
    if all.iter().any(|r| r.smoke) {
        caveats.push(
            "the data comes from smoke runs (--quick: seconds per test): fit to check the tool, not to decide anything".into(),
        );
    }
    let below = capacity_caveat(&rows, all, &mut caveats);
    if let Some(c) = durability(&rows) {
        caveats.push(c);
    }
    if let Some(c) = tls_mismatch(all) {
        caveats.push(c);
    }
    if let Some(c) = cluster_caveat(all) {
        caveats.push(c);
    }

    let answers = [
        contention(&throughput_rows, all),
        tail_under_load(&rows, all),
        valkey_throughput(&throughput_rows, below, all),
        best_pg_design(&throughput_rows),
        gap(&rows, all),
    ];
    let out = QUESTIONS
        .iter()
        .zip(answers)
        .map(|(q, answer)| Finding {
            question: (*q).into(),
            answer,
        })
        .collect();
    (out, caveats)
}

/// What was left out of the findings, and why.
fn left_out(all: &[Row]) -> Vec<String> {
    let mut out = vec![];
    let names = |f: &dyn Fn(&Row) -> bool| {
        all.iter()
            .filter(|r| f(r))
            .map(|r| r.test.as_str())
            .collect::<Vec<_>>()
    };
    let incomplete = names(&|r| !r.complete);
    if !incomplete.is_empty() {
        out.push(format!(
            "left out as incomplete: {} (re-run them: run-suite skips finished tests)",
            incomplete.join(", ")
        ));
    }
    let unaccounted = names(&|r| {
        r.complete
            && (r.lost.unwrap_or(0) > 0
                || r.duplicated.unwrap_or(0) > 0
                || r.left_in_queue.unwrap_or(0) > 0
                || r.audit == "inconclusive")
    });
    if !unaccounted.is_empty() {
        out.push(format!(
            "left out because not every job was completed exactly once (lost, duplicated, undrained or unknown): {}",
            unaccounted.join(", ")
        ));
    }
    let over = names(&|r| r.comparable() && r.over_capacity());
    if !over.is_empty() {
        out.push(format!(
            "over capacity, so ranked by completed throughput and kept out of latency comparisons (their latency measures the backlog): {}",
            over.join(", ")
        ));
    }
    out
}

/// Why no row of `backend` in `scenario` answers a question, and what to do.
fn absent(all: &[Row], backend: &str, scenario: &str) -> String {
    let side = if backend == "valkey" {
        "Valkey"
    } else {
        "PostgreSQL"
    };
    let here: Vec<&Row> = all
        .iter()
        .filter(|r| r.backend == backend && r.scenario == scenario)
        .collect();
    if here.is_empty() {
        return format!(
            "no {side} {scenario} test ran (run-suite --backend all --scenarios {scenario} runs one)"
        );
    }
    here.iter()
        .map(|r| format!("{} was left out: {}", r.test, why_out(r)))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why a row is not in the latency comparisons, with what to do about it.
fn why_out(r: &Row) -> String {
    if !r.complete {
        "incomplete (interrupted or failed): re-run it".into()
    } else if r.lost.unwrap_or(0) > 0 {
        format!("it lost {} job(s)", r.lost.unwrap_or(0))
    } else if r.duplicated.unwrap_or(0) > 0 || r.left_in_queue.unwrap_or(0) > 0 {
        "not every job was completed exactly once (raise benchmark.drain_timeout_s if it did not drain)".into()
    } else if r.audit != "exact" {
        format!("its audit was {} ({})", r.audit, r.audit_note)
    } else if r.over_capacity() {
        format!(
            "over capacity ({}), so its latency measures the backlog: offer less (--rate)",
            r.state_reason
        )
    } else {
        "it has no latency measured".into()
    }
}

/// Whether the comparable rows were offered less than their workers' capacity, and the
/// caveat that goes with it. Never says "by construction" of an over-capacity row.
fn capacity_caveat(rows: &[&Row], all: &[Row], caveats: &mut Vec<String>) -> bool {
    let below = rows
        .iter()
        .all(|r| match (r.offered_rate, r.capacity_jobs_s) {
            (Some(o), Some(c)) => o <= c,
            _ => true,
        });
    let offered = rows
        .iter()
        .find_map(|r| r.offered_rate.zip(r.capacity_jobs_s));
    let any_over = all.iter().any(|r| r.comparable() && r.over_capacity());
    if let Some((o, c)) = offered {
        if below && !any_over {
            caveats.push(format!(
                "the offered load ({o:.0} jobs/s) was below the workers' capacity ({c:.0} jobs/s): every design's throughput equals the offered rate by construction, so throughput cannot rank them; latency and resource use can"
            ));
        } else if !below {
            caveats.push(format!(
                "the offered load ({o:.0} jobs/s) exceeded the workers' capacity ({c:.0} jobs/s): queues grew during the tests and latency partly measures the tests' length"
            ));
        }
    }
    below && !any_over
}

fn contention(rows: &[&Row], all: &[Row]) -> String {
    let loads: Vec<&Row> = rows
        .iter()
        .copied()
        .filter(|r| r.scenario == "load" && r.pgbench_tps.is_some())
        .collect();
    if loads.is_empty() {
        return format!(
            "Cannot answer: it needs load tests with pgbench beside them: {}; {}.",
            absent(all, "postgresql", "load"),
            absent(all, "valkey", "load")
        );
    }
    if loads.iter().all(|r| r.pgbench_alone_tps.is_none()) {
        return "Cannot answer: pgbench was not measured alone (its baseline right before each load test) to compare with."
            .into();
    }
    // Each load test has its own pgbench-alone run right before it, as long as the test.
    let parts: Vec<String> = loads
        .iter()
        .map(|r| {
            format!(
                "{} {:.0} tps beside the queue against {} alone ({:+.1}%)",
                r.design(),
                r.pgbench_tps.unwrap_or(0.0),
                r.pgbench_alone_tps
                    .map_or("-".into(), |b| format!("{b:.0}")),
                r.pgbench_tps_change_pct.unwrap_or(0.0)
            )
        })
        .collect();
    let mut s = format!("pgbench ran at: {}.", parts.join("; "));
    let vk = loads.iter().find(|r| r.backend == "valkey");
    let best_pg = loads
        .iter()
        .filter(|r| r.backend != "valkey")
        .max_by(|a, b| {
            a.pgbench_tps
                .unwrap_or(0.0)
                .total_cmp(&b.pgbench_tps.unwrap_or(0.0))
        });
    match (vk, best_pg) {
        (Some(v), Some(p)) => {
            let (dv, dp) = (
                v.pgbench_tps_change_pct.unwrap_or(0.0),
                p.pgbench_tps_change_pct.unwrap_or(0.0),
            );
            if dv > dp {
                s.push_str(&format!(
                    " Yes, on these numbers: beside Valkey the database lost {:.1} points less throughput than beside the least disruptive PostgreSQL queue ({}).",
                    dv - dp,
                    p.design()
                ));
            } else {
                s.push_str(&format!(
                    " No measurable reduction: pgbench did as well or better beside {} ({dp:+.1}%) than beside Valkey ({dv:+.1}%).",
                    p.design()
                ));
            }
            s.push_str(" Beside Valkey, pgbench competes only for the machine (CPU, memory), not for the database.");
        }
        (None, _) => s.push_str(&format!(
            " Cannot compare with Valkey: {}.",
            absent(all, "valkey", "load")
        )),
        (_, None) => s.push_str(&format!(
            " Cannot compare with PostgreSQL: {}.",
            absent(all, "postgresql", "load")
        )),
    }
    s
}

fn tail_under_load(rows: &[&Row], all: &[Row]) -> String {
    let mut parts = vec![];
    for q in pg_designs(rows).into_iter().chain(valkey_design(rows)) {
        let q = q.as_str();
        let (Some(l), Some(reference)) = (
            find(rows, q, "load"),
            find(rows, q, "warm").or_else(|| find(rows, q, "cold")),
        ) else {
            continue;
        };
        if let (Some(a), Some(b)) = (reference.p99_ms, l.p99_ms) {
            parts.push(format!(
                "{q}: p99 {a:.1} ms ({}) → {b:.1} ms under load (×{:.2})",
                reference.scenario,
                if a > 0.0 { b / a } else { 0.0 }
            ));
        }
    }
    for r in all
        .iter()
        .filter(|r| r.scenario == "load" && !r.ranks_by_latency())
    {
        parts.push(format!("{}: {}", r.design(), why_out(r)));
    }
    if parts.is_empty() {
        return format!(
            "Cannot answer: it needs a load test and a warm (or cold) test of the same design: {}; {}.",
            absent(all, "postgresql", "load"),
            absent(all, "valkey", "load")
        );
    }
    format!("{}.", parts.join("; "))
}

fn valkey_throughput(rows: &[&Row], below_capacity: bool, all: &[Row]) -> String {
    let vk = valkey_design(rows).unwrap_or_else(|| "valkey_streams".into());
    let vk = vk.as_str();
    let Some(l) = find(rows, vk, "load") else {
        return format!("Cannot answer: {}.", absent(all, "valkey", "load"));
    };
    let reference = find(rows, vk, "warm").or_else(|| find(rows, vk, "cold"));
    let t = l.throughput_jobs_s.unwrap_or(0.0);
    let mut s = format!(
        "Under pgbench load Valkey completed {} of {} jobs at {t:.0} jobs/s",
        l.completed.unwrap_or(0),
        l.produced.unwrap_or(0)
    );
    if let Some(r) = reference {
        s.push_str(&format!(
            " ({} without load: {:.0} jobs/s)",
            r.scenario,
            r.throughput_jobs_s.unwrap_or(0.0)
        ));
    }
    s.push('.');
    match l.state.as_str() {
        "over_capacity" => s.push_str(&format!(
            " It was over capacity: {}; that rate is what this machine sustained, not what Valkey can do on a larger one.",
            l.state_reason
        )),
        "stalled" => s.push_str(&format!(" It stalled: {}.", l.state_reason)),
        _ => {}
    }
    if below_capacity {
        s.push_str(&format!(
            " The offered {:.0} jobs/s was below capacity, so this only shows that Valkey kept up; its latency moved from {} to {} at p99.",
            l.offered_rate.unwrap_or(0.0),
            ms(reference.and_then(|r| r.p99_ms)),
            ms(l.p99_ms)
        ));
    }
    s
}

/// Per scenario, the PostgreSQL designs that kept up (or stalled) ranked by p99, then
/// those over capacity ranked by completed throughput: an over-capacity p99 measures the
/// backlog, so it never beats a design that kept up.
fn best_pg_design(rows: &[&Row]) -> String {
    let pg = pg_designs(rows);
    let mut wins: Vec<(&str, usize)> = pg.iter().map(|q| (q.as_str(), 0)).collect();
    let mut lines = vec![];
    for sc in ["cold", "warm", "load"] {
        let cands: Vec<&Row> = pg.iter().filter_map(|q| find(rows, q, sc)).collect();
        if cands.len() < 2 {
            continue;
        }
        let ranked = rank_pg(cands);
        if let Some(w) = wins.iter_mut().find(|(q, _)| *q == ranked[0].design()) {
            w.1 += 1;
        }
        lines.push(format!(
            "{sc}: {}",
            ranked
                .iter()
                .map(|r| pg_entry(r))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if lines.is_empty() {
        return "Cannot answer: it needs at least two PostgreSQL designs in one scenario.".into();
    }
    // Stable: ties keep the seed's order of designs.
    wins.sort_by_key(|w| std::cmp::Reverse(w.1));
    format!(
        "By p99 end-to-end latency among designs that kept up, then by throughput among those over capacity: {}. First in the most scenarios: {} ({} of {}).",
        lines.join("; "),
        wins[0].0,
        wins[0].1,
        lines.len()
    )
}

fn rank_pg(mut cands: Vec<&Row>) -> Vec<&Row> {
    cands.sort_by(|a, b| {
        a.over_capacity().cmp(&b.over_capacity()).then_with(|| {
            if a.over_capacity() {
                b.throughput_jobs_s
                    .unwrap_or(0.0)
                    .total_cmp(&a.throughput_jobs_s.unwrap_or(0.0))
            } else {
                a.p99_ms
                    .unwrap_or(f64::MAX)
                    .total_cmp(&b.p99_ms.unwrap_or(f64::MAX))
            }
        })
    });
    cands
}

fn pg_entry(r: &Row) -> String {
    let state = if r.state.is_empty() || r.state == crate::analyze::state::SUSTAINED {
        String::new()
    } else {
        format!(", {}", r.state)
    };
    format!(
        "{} p99 {} ({:.0} jobs/s, server CPU {}{state})",
        r.design(),
        ms(r.p99_ms),
        r.throughput_jobs_s.unwrap_or(0.0),
        cores(r.server_cores)
    )
}

/// Valkey against the best PostgreSQL design with the same kind of wakeup: Valkey's
/// claim blocks until a job arrives, like a worker woken by NOTIFY; a polling worker
/// carries a floor of `poll_interval_ms`. Without NOTIFY rows, the polling ones, said so.
fn gap(rows: &[&Row], all: &[Row]) -> String {
    let vk = valkey_design(rows).unwrap_or_else(|| "valkey_streams".into());
    let sc = "load";
    let Some(v) = find(rows, &vk, sc) else {
        return format!("Cannot answer: {}.", absent(all, "valkey", sc));
    };
    let at_load = || rows.iter().copied().filter(|r| r.scenario == sc);
    let notified = best_pg(at_load().filter(|r| r.wakeup == "notify"));
    let (best, how) = match notified {
        Some(p) => (Some(p), "both woken as jobs arrive (PostgreSQL by LISTEN/NOTIFY, Valkey by its blocking read)".to_string()),
        None => (
            best_pg(at_load()),
            "PostgreSQL polled while Valkey's read blocks, so part of PostgreSQL's latency is the poll interval (run --wakeup poll,notify to compare like with like)".to_string(),
        ),
    };
    let Some(p) = best else {
        return format!("Cannot answer: {}.", absent(all, "postgresql", sc));
    };
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("×{:.2}", a / b),
        _ => "-".into(),
    };
    format!(
        "Under load, against the best PostgreSQL design ({}; {how}): p50 {} vs {} ({} for PostgreSQL), p99 {} vs {} ({}), throughput {:.0} vs {:.0} jobs/s, server CPU {} vs {}.",
        p.design(),
        ms(p.p50_ms),
        ms(v.p50_ms),
        ratio(p.p50_ms, v.p50_ms),
        ms(p.p99_ms),
        ms(v.p99_ms),
        ratio(p.p99_ms, v.p99_ms),
        p.throughput_jobs_s.unwrap_or(0.0),
        v.throughput_jobs_s.unwrap_or(0.0),
        cores(p.server_cores),
        cores(v.server_cores),
    )
}

/// What the crash trials measured, per design and tier: the durability column stated
/// from crashes, not from settings.
pub fn measured_durability(files: &[crate::format::crash::CrashFile]) -> Option<String> {
    if files.is_empty() {
        return None;
    }
    let parts: Vec<String> = files
        .iter()
        .map(|f| {
            let unproven = match f.inconclusive() {
                0 => String::new(),
                n => format!(", {n} trial(s) not audited exactly"),
            };
            format!(
                "{} ({}): {} acknowledged job(s) lost over {} crash(es), at most {} in one{unproven}",
                f.queue,
                f.tier,
                f.lost_total(),
                f.trials.len(),
                f.max_lost()
            )
        })
        .collect();
    Some(format!(
        "Durability measured by crashing the servers (exact audit after each restart): {}. The crash was of the server's processes only: what they had written but not fsynced survived in the operating system, so a power cut can lose more than this (most of all in the relaxed tier).",
        parts.join("; ")
    ))
}

/// Compares what each side risks in a crash, from the settings the manifests recorded.
fn durability(rows: &[&Row]) -> Option<String> {
    let is_valkey = |r: &Row| r.backend == "valkey";
    let both_ran = rows.iter().any(|r| is_valkey(r)) && rows.iter().any(|r| !is_valkey(r));
    if !both_ran {
        return None;
    }
    let recorded = |valkey: bool| {
        rows.iter()
            .filter(|r| is_valkey(r) == valkey && !r.server_durability.is_empty())
            .map(|r| r.server_durability.as_str())
            .next()
    };
    let tier = |text: Option<&str>| text.and_then(|t| Some(Durability::parse(t)?.tier()));
    let (pg, vk) = (recorded(false), recorded(true));
    let (Some(pg), Some(pg_tier), Some(vk), Some(vk_tier)) = (pg, tier(pg), vk, tier(vk)) else {
        return Some("the servers' durability settings were not recorded (older result files, or Valkey's CONFIG disabled): check that PostgreSQL and Valkey were equally durable before comparing them".into());
    };
    let pg_durable = pg_tier == Tier::Strict;
    let pg_says = if pg_durable {
        format!("PostgreSQL committed every job durably ({pg})")
    } else {
        format!("PostgreSQL could lose its last commits in a crash ({pg})")
    };
    Some(match vk_tier {
        Tier::Volatile => format!(
            "Valkey ran without persistence ({vk}) while {pg_says}: {}",
            if pg_durable {
                "that compares a memory store with a database; a fair pair is Valkey with appendonly yes against PostgreSQL, or PostgreSQL with synchronous_commit=off"
            } else {
                "neither side kept every job through a crash"
            }
        ),
        Tier::Strict => format!("Valkey fsynced every write ({vk}) and {pg_says}"),
        Tier::Relaxed => format!(
            "Valkey's append-only file was not fsynced on every write ({vk}): a crash can lose up to a second of jobs, while {pg_says}"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::super::flags::red_flags;
    use super::*;

    const VK: &str = "valkey_streams";

    fn row(queue: &str, scenario: &str, p50: f64, p99: f64, tput: f64) -> Row {
        Row {
            test: format!("{queue}_{scenario}"),
            backend: if queue == VK { "valkey" } else { "postgresql" }.into(),
            queue: queue.into(),
            scenario: scenario.into(),
            complete: true,
            offered_rate: Some(1000.0),
            capacity_jobs_s: Some(2000.0),
            throughput_jobs_s: Some(tput),
            p50_ms: Some(p50),
            p99_ms: Some(p99),
            cpu_pct: Some(40.0),
            audit: "exact".into(),
            lost: Some(0),
            duplicated: Some(0),
            left_in_queue: Some(0),
            foreign: Some(0),
            ..Default::default()
        }
    }

    #[test]
    fn red_flags_follow_the_seed() {
        let mut rows = vec![
            row("skip_locked", "warm", 10.0, 20.0, 1000.0),
            row("skip_locked", "load", 10.0, 150.0, 400.0),
        ];
        rows[1].cpu_pct = Some(99.0);
        rows[1].lost = Some(3);
        red_flags(
            &mut rows,
            &[("skip_locked_load".into(), vec!["system.csv".into()])],
        );
        assert!(rows[0].red_flags.is_empty(), "{}", rows[0].red_flags);
        let f = &rows[1].red_flags;
        for want in [
            "60% lower under load",
            "15× p50",
            "CPU at 99% of all cores",
            "3 job(s) LOST",
            "missing metrics: system.csv",
        ] {
            assert!(f.contains(want), "{want}: {f}");
        }
    }

    #[test]
    fn findings_say_when_the_data_cannot_answer() {
        let rows = vec![
            row("skip_locked", "warm", 10.0, 20.0, 1000.0),
            row(VK, "warm", 5.0, 8.0, 1000.0),
        ];
        let (f, caveats) = findings(&rows);
        assert!(f[0].answer.starts_with("Cannot answer"), "{}", f[0].answer);
        assert!(f[1].answer.starts_with("Cannot answer"));
        assert!(f[2].answer.starts_with("Cannot answer"));
        assert!(f[4].answer.starts_with("Cannot answer"));
        assert!(caveats.iter().any(|c| c.contains("by construction")));
        assert!(caveats.iter().any(|c| c.contains("were not recorded")));
    }

    #[test]
    fn tls_on_one_side_only_is_a_caveat() {
        let caveats = |pg: &str, vk: &str| {
            let mut rows = vec![
                row("skip_locked", "warm", 10.0, 20.0, 1000.0),
                row(VK, "warm", 5.0, 8.0, 1000.0),
            ];
            rows[0].server_tls = pg.into();
            rows[1].server_tls = vk.into();
            findings(&rows).1
        };
        let c = caveats("TLSv1.3 TLS_AES_256_GCM_SHA384", "off");
        assert!(
            c.iter().any(|c| c.contains("NOT LIKE FOR LIKE in TLS: PostgreSQL's sessions were encrypted and Valkey's plaintext")),
            "{c:?}"
        );
        for (pg, vk) in [("off", "off"), ("TLSv1.3 X", "rediss")] {
            let c = caveats(pg, vk);
            assert!(!c.iter().any(|c| c.contains("in TLS")), "{pg}/{vk}: {c:?}");
        }
    }

    #[test]
    fn durability_is_compared_from_the_recorded_settings() {
        let caveat = |pg: &str, vk: &str| {
            let mut rows = [
                row("skip_locked", "warm", 10.0, 20.0, 1000.0),
                row(VK, "warm", 5.0, 8.0, 1000.0),
            ];
            rows[0].server_durability = pg.into();
            rows[1].server_durability = vk.into();
            let refs: Vec<&Row> = rows.iter().collect();
            durability(&refs).unwrap_or_default()
        };
        let on = "fsync=on synchronous_commit=on";
        let c = caveat(on, r#"appendonly="no" appendfsync="everysec" save="""#);
        assert!(
            c.starts_with("Valkey ran without persistence") && c.contains("memory store"),
            "{c}"
        );
        let c = caveat(on, r#"appendonly="yes" appendfsync="always" save="""#);
        assert!(
            c.starts_with("Valkey fsynced every write") && c.contains("durably"),
            "{c}"
        );
        let c = caveat(on, r#"appendonly="yes" appendfsync="everysec" save="""#);
        assert!(c.contains("up to a second"), "{c}");
        let c = caveat(
            "fsync=on synchronous_commit=off",
            r#"appendonly="no" appendfsync="everysec" save="""#,
        );
        assert!(c.contains("neither side"), "{c}");
        assert!(caveat("", on).contains("were not recorded"));
    }

    #[test]
    fn above_capacity_is_said_and_best_design_is_named() {
        let mut rows = vec![
            row("skip_locked", "warm", 10.0, 30.0, 1000.0),
            row("partitioned", "warm", 10.0, 20.0, 1000.0),
        ];
        for r in &mut rows {
            r.offered_rate = Some(5000.0);
        }
        let (f, caveats) = findings(&rows);
        assert!(caveats
            .iter()
            .any(|c| c.contains("exceeded the workers' capacity")));
        assert!(
            f[3].answer
                .contains("First in the most scenarios: partitioned"),
            "{}",
            f[3].answer
        );
    }

    #[test]
    fn incomplete_rows_stay_out_of_the_findings() {
        let mut rows = vec![row("skip_locked", "warm", 10.0, 20.0, 1000.0)];
        rows[0].complete = false;
        let (f, caveats) = findings(&rows);
        assert!(caveats.iter().any(|c| c.contains("left out as incomplete")));
        assert!(f[3].answer.starts_with("Cannot answer"));
    }
}
