//! `valkey_vs_best_pg`: Valkey against the PostgreSQL design with the lowest p99 in each
//! scenario, with PostgreSQL/Valkey ratios.

use std::path::{Path, PathBuf};

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::graph::bars::{Getter, PERCENTILES, fmt, upper, Bar, bar_panel};
use crate::graph::style::{self, color};
use crate::graph::{render, Chart, Data, Inputs};
use crate::format::summary::Row;

pub const CHART: crate::graph::charts::Chart = crate::graph::charts::Chart {
    name: "valkey_vs_best_pg",
    draw: crate::graph::charts::Draw::Page(draw),
};

/// Drawn from the seed's scenarios in one tier, when the analysis has any.
fn draw(inputs: &Inputs, dir: &Path) -> Result<Vec<PathBuf>> {
    match &inputs.seed {
        Some(d) => render(&ValkeyVsBestPg(d), dir),
        None => Ok(vec![]),
    }
}

struct ValkeyVsBestPg<'a>(&'a Data);

/// The PostgreSQL design with the lowest p99 in a scenario.
fn best_pg<'a>(d: &'a Data, sc: &str) -> Option<&'a Row> {
    crate::format::summary::best_pg(d.rows.iter().filter(|r| r.scenario == sc))
}

impl Chart for ValkeyVsBestPg<'_> {
    fn name(&self) -> String {
        "valkey_vs_best_pg".into()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let d = self.0;
        let pairs: Vec<(&str, &Row, &Row)> = d
            .scenarios
            .iter()
            .filter_map(|sc| Some((sc.as_str(), best_pg(d, sc)?, d.valkey(sc)?)))
            .collect();
        let pcts = PERCENTILES;
        let subtitle = match largest_gap(&pairs) {
            Some((ratio, sc, pct)) => format!(
                "×: PostgreSQL's latency / Valkey's; largest gap {pct} {sc} ×{ratio:.2} — {}",
                d.load_text()
            ),
            None => d.load_text(),
        };
        let body = style::header(
            root,
            "Valkey Streams against the best PostgreSQL design (lowest p99) per scenario",
            &subtitle,
            &d.note(),
        )?;
        if pairs.is_empty() {
            let missing = if d.rows.iter().any(|r| r.backend == "valkey") {
                "PostgreSQL"
            } else {
                "Valkey"
            };
            return style::message(
                &body,
                &format!("Needs Valkey and PostgreSQL results in the same scenario: {missing} results are missing."),
            );
        }
        let mut items: Vec<(String, RGBColor)> = vec![];
        for (_, p, _) in &pairs {
            let label = format!("{} (best PostgreSQL)", p.queue);
            if !items.iter().any(|(l, _)| *l == label) {
                items.push((label, color(&p.queue)));
            }
        }
        if let Some((_, _, v)) = pairs.first() {
            items.push((v.queue.clone(), color(&v.queue)));
        }
        let body = style::legend(&body, &items)?;
        let panels = body.split_evenly((1, pairs.len()));
        let err = |r: &Row, sc: &str, get: Getter| d.interval(&r.variant(), sc, get);
        let ymax = upper(
            pairs
                .iter()
                .flat_map(|(sc, p, v)| {
                    [p, v].map(|r| err(r, sc, |r| r.p99_ms).map_or(r.p99_ms, |e| Some(e.1)))
                })
                .flatten()
                .fold(0.0f64, f64::max),
        );
        let groups: Vec<String> = pcts.iter().map(|(n, _)| n.to_string()).collect();
        for ((sc, p, v), panel) in pairs.iter().zip(panels.iter()) {
            let bars = pair_bars(d, sc, p, v);
            // PostgreSQL's latency over Valkey's, above each pair.
            let ratios: Vec<String> = pcts
                .iter()
                .map(|(_, get)| match (get(p), get(v)) {
                    (Some(a), Some(b)) if b > 0.0 => format!("×{:.2}", a / b),
                    _ => String::new(),
                })
                .collect();
            bar_panel(
                panel,
                Some(&format!("{sc}: {} vs {}", p.queue, v.queue)),
                &groups,
                &bars,
                "end-to-end latency (ms)",
                ymax * 1.12,
                &[],
                "Percentile",
                &ratios,
            )?;
        }
        Ok(())
    }
}


/// The largest gap: PostgreSQL's latency over Valkey's, any scenario and percentile.
fn largest_gap<'a>(pairs: &[(&'a str, &Row, &Row)]) -> Option<(f64, &'a str, &'static str)> {
    let mut largest: Option<(f64, &str, &str)> = None;
    for (sc, p, v) in pairs {
        for (name, get) in &PERCENTILES {
            if let (Some(a), Some(b)) = (get(p), get(v)) {
                if b > 0.0 && largest.is_none_or(|(x, _, _)| a / b > x) {
                    largest = Some((a / b, sc, name));
                }
            }
        }
    }
    largest
}

/// A scenario's bars: PostgreSQL's and Valkey's latency at each percentile, with their
/// intervals across repeats.
fn pair_bars(d: &Data, sc: &str, p: &Row, v: &Row) -> Vec<Bar> {
    let mut bars = vec![];
    for (g, (_, get)) in PERCENTILES.iter().enumerate() {
        for (slot, r) in [p, v].iter().enumerate() {
            if let Some(val) = get(r) {
                bars.push(Bar {
                    group: g,
                    slot,
                    slots: 2,
                    value: val,
                    err: d.interval(&r.variant(), sc, *get),
                    color: color(&r.queue),
                    label: fmt(val),
                });
            }
        }
    }
    bars
}
