//! The seed README's "Expected Patterns", every bullet checked against what was measured:
//! confirmed, refuted or not measurable here, with the figure and its interval. It is
//! what a reader of the seed asks first.

use super::pairs::{self, Entry};
use crate::format::capacity::{DesignCapacity, Outcome};
use crate::format::summary::Comparison;
use crate::format::verdict::{Expectation, CLEAR, WITHIN_NOISE};

pub const CONFIRMED: &str = "confirmed";
pub const REFUTED: &str = "refuted";
pub const UNMEASURABLE: &str = "not measurable here";

/// What the checks read: one durability tier's entries, comparisons and sweeps (a
/// ratio across tiers would compare durability, not designs).
pub struct Facts<'a> {
    pub entries: &'a [Entry<'a>],
    pub comparisons: &'a [Comparison],
    pub capacity: &'a [DesignCapacity],
    pub tier: &'a str,
}

/// A measured ratio `y / x` of one figure in one scenario: `(ratio, interval,
/// confidence, the practical threshold as |ln ratio|)`.
type Measured = (f64, Option<(f64, f64)>, String, f64);

impl<'a> Facts<'a> {
    fn ratio(&self, figure: &str, scenario: &str, x: &str, y: &str) -> Option<Measured> {
        let in_scenario = |v: &str| {
            self.entries()
                .any(|e| e.scenario == scenario && e.variant == v && !e.clean.is_empty())
        };
        if !(in_scenario(x) && in_scenario(y)) {
            return None;
        }
        let here: Vec<Comparison> = self
            .comparisons
            .iter()
            .filter(|c| c.scenario == scenario && c.tier == self.tier)
            .cloned()
            .collect();
        let (c, r, ci) = pairs::find(&here, figure, x, y)?;
        Some((r, ci, c.confidence.clone(), c.threshold))
    }

    /// The best of a backend in a scenario on `figure`: by p99 among those within
    /// capacity, by completed throughput among all (an over-capacity test's throughput
    /// is what it could do; one within capacity did what was offered, a lower bound).
    fn best(&self, backend: &str, scenario: &str, figure: &str) -> Option<String> {
        let by_throughput = figure == "throughput";
        let f = if by_throughput {
            pairs::THROUGHPUT
        } else {
            pairs::P99
        };
        self.entries()
            .filter(|e| e.scenario == scenario && e.backend == backend)
            .filter(|e| by_throughput || !e.over_capacity())
            .filter_map(|e| Some((crate::stats::confidence::median(&e.values(f))?, e)))
            .min_by(|a, b| {
                if by_throughput {
                    b.0.total_cmp(&a.0)
                } else {
                    a.0.total_cmp(&b.0)
                }
            })
            .map(|(_, e)| e.variant.clone())
    }

    fn best_pg(&self, scenario: &str) -> Option<String> {
        self.best("postgresql", scenario, "p99")
    }

    /// This tier's entries.
    fn entries(&self) -> impl Iterator<Item = &Entry<'a>> + '_ {
        self.entries.iter().filter(|e| e.tier == self.tier)
    }

    fn scenarios(&self) -> Vec<String> {
        let mut s: Vec<String> = self.entries().map(|e| e.scenario.clone()).collect();
        s.dedup();
        s
    }
}

fn text(m: &Measured) -> String {
    let ci = m.1.map_or(String::new(), |(l, h)| {
        format!(" (95 % CI ×{l:.2}–×{h:.2})")
    });
    format!("×{:.2}{ci}, {}", m.0, m.2)
}

/// Whether a ratio lies in `[lo, hi]`: confirmed or refuted when the measurement is
/// clear or likely; a difference within the noise refutes only an expectation that lies
/// wholly outside the noise band (×1 ± the threshold), and is unresolved otherwise
/// ("slightly more CPU" may hide in the noise).
fn judge(m: &Measured, lo: f64, hi: f64) -> &'static str {
    let inside = (lo..=hi).contains(&m.0);
    let band = ((-m.3).exp(), m.3.exp());
    // An interval that reaches the expected range does not refute it.
    let reaches = m.1.is_some_and(|(l, h)| l <= hi && h >= lo);
    match m.2.as_str() {
        WITHIN_NOISE if hi < band.0 || lo > band.1 => REFUTED,
        CLEAR | "likely" if inside => CONFIRMED,
        _ if reaches => UNMEASURABLE,
        CLEAR | "likely" => REFUTED,
        _ => UNMEASURABLE,
    }
}

/// A check run in every scenario: confirmed when each confirms, refuted when any
/// refutes, else not measurable; the measurements named per scenario.
fn per_scenario(
    f: &Facts,
    expected: &str,
    each: impl Fn(&str) -> Option<(String, &'static str)>,
    none: &str,
) -> Expectation {
    let got: Vec<(String, (String, &'static str))> = f
        .scenarios()
        .into_iter()
        .filter_map(|sc| Some((sc.clone(), each(&sc)?)))
        .collect();
    let verdict = combine(&got.iter().map(|g| g.1 .1).collect::<Vec<_>>());
    Expectation {
        expected: expected.into(),
        verdict: verdict.into(),
        measured: if got.is_empty() {
            none.into()
        } else {
            got.iter()
                .map(|(sc, (t, v))| format!("{sc}: {t} ({v})"))
                .collect::<Vec<_>>()
                .join("; ")
        },
    }
}

/// Valkey's figure over the best PostgreSQL design's, in `[lo, hi]`.
fn valkey_vs_pg(f: &Facts, expected: &str, figure: &str, lo: f64, hi: f64) -> Expectation {
    per_scenario(
        f,
        expected,
        |sc| {
            let pick = if figure == "throughput" {
                "throughput"
            } else {
                "p99"
            };
            let (pg, vk) = (f.best("postgresql", sc, pick)?, f.best("valkey", sc, pick)?);
            let m = f.ratio(figure, sc, &pg, &vk)?;
            Some((
                format!(
                    "Valkey / best PostgreSQL {} against ×{lo:.2}–×{hi:.2} expected",
                    text(&m)
                ),
                judge(&m, lo, hi),
            ))
        },
        "needs Valkey and PostgreSQL tests of one scenario that kept up",
    )
}

/// One design's figure over another's, above 1.
fn design_vs(f: &Facts, expected: &str, figure: &str, x: &str, y: &str) -> Expectation {
    per_scenario(
        f,
        expected,
        |sc| {
            let m = f.ratio(figure, sc, x, y)?;
            Some((
                format!("{y} / {x} {}", text(&m)),
                judge(&m, 1.0 + 1e-9, f64::MAX),
            ))
        },
        &format!("needs {x} and {y} in one scenario"),
    )
}

/// A design's p99 in scenario `b` over scenario `a`, above 1, for every design. These
/// ratios cross scenarios, so they are not among the verdict's comparisons: each is
/// judged on its own interval and the p99 threshold. A rise within the noise refutes
/// only when the expectation says "significantly" (`noise_refutes`).
fn scenario_vs(f: &Facts, expected: &str, a: &str, b: &str, noise_refutes: bool) -> Expectation {
    let designs: Vec<String> = {
        let mut d: Vec<String> = f.entries().map(|e| e.variant.clone()).collect();
        d.sort();
        d.dedup();
        d
    };
    let mut parts = vec![];
    let mut verdicts = vec![];
    for d in &designs {
        // An over-capacity p99 measures a backlog, not a degradation.
        let p99 = |sc: &str| {
            f.entries()
                .filter(|e| !e.over_capacity())
                .find(|e| e.scenario == sc && &e.variant == d)
                .map(|e| e.values(pairs::P99))
                .filter(|v| !v.is_empty())
        };
        let (Some(x), Some(y)) = (p99(a), p99(b)) else {
            continue;
        };
        let Some(r) = crate::stats::confidence::ratio(&y, &x) else {
            continue;
        };
        let beyond = r.ratio.ln().abs() > crate::stats::noise::threshold("p99");
        let excludes_one = r.low.zip(r.high).is_some_and(|(l, h)| l > 1.0 || h < 1.0);
        let word = match (beyond, excludes_one) {
            (false, _) => WITHIN_NOISE,
            (true, true) => CLEAR,
            (true, false) => "likely",
        };
        let v = match (beyond, r.ratio > 1.0) {
            (true, true) => CONFIRMED,
            (true, false) => REFUTED,
            (false, _) if noise_refutes => REFUTED,
            (false, _) => UNMEASURABLE,
        };
        let ci = r.low.zip(r.high).map_or(String::new(), |(l, h)| {
            format!(" (95 % CI ×{l:.2}–×{h:.2})")
        });
        parts.push(format!("{d} ×{:.2}{ci}, {word}", r.ratio));
        verdicts.push(v);
    }
    Expectation {
        expected: expected.into(),
        verdict: combine(&verdicts).into(),
        measured: if parts.is_empty() {
            format!("needs {a} and {b} tests of the same designs")
        } else {
            format!("p99 {b} / {a}: {}", parts.join("; "))
        },
    }
}

/// Many verdicts in one: refuted if any refutes, confirmed if all confirm, else not
/// measurable.
fn combine(v: &[&'static str]) -> &'static str {
    if v.is_empty() {
        UNMEASURABLE
    } else if v.contains(&REFUTED) {
        REFUTED
    } else if v.iter().all(|x| *x == CONFIRMED) {
        CONFIRMED
    } else {
        UNMEASURABLE
    }
}

/// The sweeps that found an MST and recorded their workload, in groups of the same
/// load (tier, workers, processing time, payload, batch): only within a group do two
/// designs' MSTs compare.
fn same_load_groups<'a>(f: &Facts<'a>) -> Vec<Vec<&'a DesignCapacity>> {
    let found: Vec<&'a DesignCapacity> = f
        .capacity
        .iter()
        .filter(|c| c.tier == f.tier && c.outcome == Outcome::Found)
        .filter(|c| c.mst_jobs_s.is_some() && c.workload.is_some())
        .collect();
    let mut groups: Vec<Vec<&'a DesignCapacity>> = vec![];
    for c in found {
        let w = c.workload.as_ref();
        match groups.iter_mut().find(|g| {
            g[0].workload
                .as_ref()
                .zip(w)
                .is_some_and(|(a, b)| a.same_load(b))
                && g[0].smoke == c.smoke
                && g[0].slo_p99_ms == c.slo_p99_ms
        }) {
            Some(g) => g.push(c),
            None => groups.push(vec![c]),
        }
    }
    groups
}

fn best_of<'a>(g: &[&'a DesignCapacity], backend: &str) -> Option<&'a DesignCapacity> {
    g.iter()
        .copied()
        .filter(|c| c.backend == backend)
        .max_by(|a, b| {
            a.mst_jobs_s
                .unwrap_or(0.0)
                .total_cmp(&b.mst_jobs_s.unwrap_or(0.0))
        })
}

/// Throughput: at a fixed offered rate below capacity every design completes what is
/// offered, so only capacity measurements of the same load (MSTs) or over-capacity
/// tests can say.
fn throughput(f: &Facts, expected: &str, lo: f64, hi: f64) -> Expectation {
    for g in same_load_groups(f) {
        let (Some(v), Some(p)) = (best_of(&g, "valkey"), best_of(&g, "postgresql")) else {
            continue;
        };
        let (vm, pm) = (v.mst_jobs_s.unwrap_or(0.0), p.mst_jobs_s.unwrap_or(0.0));
        let r = vm / pm;
        let verdict = if (lo..=hi).contains(&r) {
            CONFIRMED
        } else {
            REFUTED
        };
        let load = v.workload.as_ref().map_or(String::new(), |w| w.describe());
        return Expectation {
            expected: expected.into(),
            verdict: verdict.into(),
            measured: format!(
                "MST of the same load: Valkey {vm:.0} jobs/s against {}'s {pm:.0} (×{r:.2} against ×{lo:.2}–×{hi:.2} expected; one sweep each, no interval; {load})",
                p.queue
            ),
        };
    }
    valkey_vs_pg_throughput(f).unwrap_or_else(|| Expectation {
        expected: expected.into(),
        verdict: UNMEASURABLE.into(),
        measured: "every test kept up with the offered rate, so throughput equals it by construction, and no Valkey and PostgreSQL sweeps of the same load found an MST; run-suite --capacity measures each design's MST for the suite's workload".into(),
    })
}

fn valkey_vs_pg_throughput(f: &Facts) -> Option<Expectation> {
    let any_over = f.entries().any(|e| e.over_capacity());
    any_over.then(|| {
        valkey_vs_pg(
            f,
            "Valkey should be 20-40% higher than PostgreSQL (throughput)",
            "throughput",
            1.2,
            1.4,
        )
    })
}

/// Every bullet of the seed's Expected Patterns.
pub fn check(f: &Facts) -> Vec<Expectation> {
    vec![
        throughput(f, "Throughput: Valkey should be 20-40% higher than PostgreSQL", 1.2, 1.4),
        fastest_pg(f),
        scenario_vs(f, "Throughput: under load, all implementations degrade somewhat (p99 load / warm)", "warm", "load", false),
        valkey_vs_pg(f, "Latency: Valkey should have 50-70% lower p95/p99 latency (p99)", "p99", 0.3, 0.5),
        scenario_vs(f, "Latency: cold start has higher latency than warm (p99 cold / warm)", "warm", "cold", false),
        scenario_vs(f, "Latency: under load, tail latency (p99) increases significantly", "warm", "load", true),
        valkey_vs_pg(f, "CPU: Valkey typically uses 30-50% less CPU (server CPU per job)", "server CPU per job", 0.5, 0.7),
        design_vs(f, "CPU: partitioned queue uses slightly more CPU (server CPU per job against skip_locked)", "server CPU per job", "skip_locked", "partitioned"),
        design_vs(f, "CPU: DELETE RETURNING may show higher CPU due to archiving (server CPU per job against skip_locked)", "server CPU per job", "skip_locked", "delete_returning"),
    ]
}

/// "Partitioned queue should be fastest PostgreSQL variant": by MST where sweeps ran,
/// else by the p99 ranking of each scenario.
fn fastest_pg(f: &Facts) -> Expectation {
    let expected = "Throughput: partitioned queue should be fastest PostgreSQL variant";
    for g in same_load_groups(f) {
        let pg: Vec<&&DesignCapacity> = g.iter().filter(|c| c.backend == "postgresql").collect();
        let Some(top) = best_of(&g, "postgresql").filter(|_| pg.len() >= 2) else {
            continue;
        };
        let list: Vec<String> = pg
            .iter()
            .map(|c| format!("{} {:.0}", c.queue, c.mst_jobs_s.unwrap_or(0.0)))
            .collect();
        return Expectation {
            expected: expected.into(),
            verdict: if top.queue == "partitioned" {
                CONFIRMED
            } else {
                REFUTED
            }
            .into(),
            measured: format!(
                "MST of the same load (jobs/s): {}; one sweep each, no interval",
                list.join(", ")
            ),
        };
    }
    per_scenario(
        f,
        expected,
        |sc| {
            let best = f.best_pg(sc)?;
            if best == "partitioned" {
                return Some(("lowest p99: partitioned".into(), CONFIRMED));
            }
            let m = f.ratio("p99", sc, &best, "partitioned")?;
            let v = if m.2 == WITHIN_NOISE {
                UNMEASURABLE
            } else {
                REFUTED
            };
            Some((
                format!("lowest p99: {best} (partitioned ×{:.2}, {})", m.0, m.2),
                v,
            ))
        },
        "needs two PostgreSQL designs in one scenario, or their capacity sweeps",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::summary::Row;

    /// Five warm runs of `queue` with this p99 and server CPU per job (small spread).
    fn runs(queue: &str, p99: f64, cpu: f64) -> Vec<Row> {
        let backend = if queue.starts_with("valkey") {
            "valkey"
        } else {
            "postgresql"
        };
        (1..=5)
            .map(|k| {
                let wobble = 1.0 + 0.01 * (f64::from(k) - 3.0);
                Row {
                    test: format!("{queue}_warm.r{k}"),
                    group: format!("{queue}_warm"),
                    repeat: Some(k),
                    queue: queue.into(),
                    backend: backend.into(),
                    scenario: "warm".into(),
                    durability_tier: "strict".into(),
                    complete: true,
                    audit: "exact".into(),
                    lost: Some(0),
                    duplicated: Some(0),
                    left_in_queue: Some(0),
                    foreign: Some(0),
                    state: "sustained".into(),
                    p99_ms: Some(p99 * wobble),
                    p50_ms: Some(p99 * wobble / 3.0),
                    server_cpu_us_per_job: Some(cpu * wobble),
                    throughput_jobs_s: Some(1000.0),
                    ..Row::default()
                }
            })
            .collect()
    }

    fn checked(rows: &[Row]) -> Vec<Expectation> {
        let entries = pairs::entries(rows);
        let comparisons = pairs::all(&entries, &|_| 0.1);
        check(&Facts {
            entries: &entries,
            comparisons: &comparisons,
            capacity: &[],
            tier: "strict",
        })
    }

    fn verdict_of<'a>(e: &'a [Expectation], starts: &str) -> &'a Expectation {
        e.iter()
            .find(|x| x.expected.starts_with(starts))
            .expect(starts)
    }

    #[test]
    fn the_seeds_expectations_move_with_what_was_measured() {
        // Valkey's p99 0.4× the best PostgreSQL design's, partitioned using 1.5× the CPU.
        let mut rows = runs("skip_locked", 20.0, 500.0);
        rows.extend(runs("partitioned", 25.0, 750.0));
        rows.extend(runs("valkey_streams", 8.0, 300.0));
        let e = checked(&rows);
        assert_eq!(e.len(), 9, "all nine bullets: {e:#?}");
        let latency = verdict_of(&e, "Latency: Valkey should have 50-70% lower");
        assert_eq!(latency.verdict, CONFIRMED, "{latency:?}");
        assert!(latency.measured.contains("×0.40"), "{latency:?}");
        let cpu = verdict_of(&e, "CPU: partitioned queue uses slightly more CPU");
        assert_eq!(cpu.verdict, CONFIRMED, "{cpu:?}");
        let fastest = verdict_of(&e, "Throughput: partitioned queue should be fastest");
        assert_eq!(fastest.verdict, REFUTED, "{fastest:?}");
        let throughput = verdict_of(&e, "Throughput: Valkey should be 20-40% higher");
        assert_eq!(
            throughput.verdict, UNMEASURABLE,
            "kept up: equal by construction"
        );
        let archive = verdict_of(&e, "CPU: DELETE RETURNING");
        assert_eq!(
            archive.verdict, UNMEASURABLE,
            "no delete_returning ran: {archive:?}"
        );

        // Sabotage: Valkey as slow as PostgreSQL, partitioned's CPU the same as
        // skip_locked's. The first is refuted; the second cannot be told from noise.
        let mut rows = runs("skip_locked", 20.0, 500.0);
        rows.extend(runs("partitioned", 25.0, 500.0));
        rows.extend(runs("valkey_streams", 20.0, 300.0));
        let e = checked(&rows);
        assert_eq!(verdict_of(&e, "Latency: Valkey should").verdict, REFUTED);
        let cpu = verdict_of(&e, "CPU: partitioned queue uses slightly more CPU");
        assert_eq!(cpu.verdict, UNMEASURABLE, "{cpu:?}");
    }
}
