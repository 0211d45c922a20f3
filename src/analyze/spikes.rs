//! Where each test's tail comes from: its timeline (seconds and server events, from
//! its files), the spikes in it with their causes (`spikes.csv`, `events.csv`),
//! summary.csv's `p99_outside_spikes_ms`, `spikes` and `spike_time_share`, and a
//! finding for each test whose tail is not its steady state.

use super::load::TestGroup;
use super::{Finding, Row};
use crate::format::timeline::{EventRow, SpikeRow};
use crate::text::ms_prose as ms;
use crate::timeline::{self, spikes, Timeline};

/// A p99 this many times the p50 is a tail worth explaining.
const HEAVY_TAIL: f64 = 5.0;

#[derive(Debug, Default)]
pub struct Built {
    pub spikes: Vec<SpikeRow>,
    pub events: Vec<EventRow>,
    pub findings: Vec<Finding>,
    /// Tests whose per-second files could not be read: named, with the file.
    pub warnings: Vec<String>,
}

/// Reads every test's timeline, finds its spikes with `factor`, and fills the rows.
pub fn build(groups: &[&TestGroup], rows: &mut [Row], factor: f64) -> Built {
    let mut out = Built::default();
    for g in groups {
        let dir = super::summary::results_dir(&g.folder);
        let Some(row) = rows
            .iter_mut()
            .find(|r| r.test == g.test && r.results_dir == dir)
        else {
            continue;
        };
        let t = match timeline::load(&g.folder, &g.test) {
            Ok(t) => t,
            Err(e) => {
                out.warnings.push(format!(
                    "no timeline for {}: {}",
                    g.test,
                    crate::error::one_line(&e, &[])
                ));
                continue;
            }
        };
        let s = spikes::find(&t, factor);
        row.p99_outside_spikes_ms = s.p99_outside_ms.map(|v| round(v, 3));
        row.spikes = Some(s.list.len() as u64);
        row.spike_time_share = Some(round(s.time_share, 4));
        row.spike_factor = Some(factor);
        out.findings.extend(finding(row, &t, &s));
        out.events.extend(t.events.iter().map(|e| EventRow {
            test: t.test.clone(),
            results_dir: dir.clone(),
            kind: e.kind.into(),
            start_s: e.start_s,
            end_s: e.end_s,
            label: e.label.clone(),
            phase: e.phase,
        }));
        out.spikes.extend(s.list.iter().map(|sp| SpikeRow {
            test: t.test.clone(),
            results_dir: dir.clone(),
            start_s: sp.start_s,
            end_s: sp.end_s,
            duration_s: sp.duration_s(),
            peak_p99_ms: round(sp.peak_p99_ms, 3),
            threshold_ms: s.threshold_ms.map_or(0.0, |v| round(v, 3)),
            stalled_s: sp.stalled_s,
            cause: sp.cause(&t.events),
            producer_lag_p99_ms: sp.producer_lag_p99_ms.map(|v| round(v, 3)),
        }));
    }
    out
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// A finding for a test whose p99 is over 5× its p50, or whose spikes carry its p99.
fn finding(row: &Row, t: &Timeline, s: &spikes::Spikes) -> Option<Finding> {
    let (p50, p99) = (row.p50_ms?, row.p99_ms?);
    let heavy = p99 > HEAVY_TAIL * p50;
    let outside = s.p99_outside_ms;
    let carried = !s.list.is_empty() && outside.is_some_and(|o| o < 0.8 * p99);
    if !heavy && !carried {
        return None;
    }
    let answer = match spikes::story(s, &t.events).filter(|_| carried) {
        Some(story) => format!(
            "{}: p99 {}, {story}; outside spikes p99 was {} ({:.0} % of the test's seconds were in spikes).",
            t.test,
            ms(Some(p99)),
            ms(outside),
            s.time_share * 100.0
        ),
        None => format!(
            "{}: p99 {} is {:.0}× its p50, and the tail is the steady state, not one event: {} (median per-second p99 {}, spikes over {:.0}× it).",
            t.test,
            ms(Some(p99)),
            p99 / p50.max(1e-9),
            match s.list.len() {
                0 => "no second stands out".to_string(),
                n => format!("outside its {n} spike(s) p99 was still {}", ms(outside)),
            },
            ms(s.median_p99_ms),
            s.factor
        ),
    };
    Some(Finding {
        question: format!("What drives {}'s tail?", t.test),
        answer,
    })
}
