//! `capacity_comparison`: each design's MST within the latency goal beside its burn-down
//! (closed loop), and what limited it.

use std::path::{Path, PathBuf};

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::graph::bars::{bar_panel, fmt, tick, upper, Bar};
use crate::graph::inputs::CapacityData;
use crate::graph::style::{self, color, legend_of};
use crate::graph::{render, Chart, Inputs};

pub const CHART: crate::graph::charts::Chart = crate::graph::charts::Chart {
    name: "capacity_comparison",
    draw: crate::graph::charts::Draw::Page(draw),
};

/// Drawn when the analysis holds a sweep.
fn draw(inputs: &Inputs, dir: &Path) -> Result<Vec<PathBuf>> {
    let d = &inputs.capacity;
    if d.steps.is_empty() {
        return Ok(vec![]);
    }
    render(&CapacityComparison(d), dir)
}

struct CapacityComparison<'a>(&'a CapacityData);

impl Chart for CapacityComparison<'_> {
    fn name(&self) -> String {
        "capacity_comparison".into()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let d = self.0;
        let names = d.designs();
        let first = |id: &str| d.steps.iter().find(|s| s.sweep == id);
        let mut slos: Vec<String> = d.steps.iter().map(|s| tick(s.slo_p99_ms)).collect();
        slos.dedup();
        let body = style::open(
            root,
            "Maximum sustainable throughput within the latency goal",
            &format!("highest offered rate that passed (p99 ≤ {} ms, completions ≥ 99 %, flat depth, clean audit); pale bar: burn-down, closed loop", slos.join(" / ")),
            &d.note(),
            &legend_of(&names),
        )?;
        let (mut bars, mut notes, mut groups) = (vec![], vec![], vec![]);
        let mut max = 0.0f64;
        for (g, (q, id, name)) in names.iter().enumerate() {
            let Some(s) = first(id) else { continue };
            groups.push(name.clone());
            let c = color(q);
            let mst = s.mst_jobs_s.unwrap_or(0.0);
            max = max.max(mst).max(s.burndown_jobs_s.unwrap_or(0.0));
            bars.push(Bar {
                group: g,
                slot: 0,
                slots: 2,
                value: mst,
                err: None,
                color: c,
                label: match (s.outcome.as_str(), s.confirmed) {
                    ("found", Some(false)) => format!("{} (approximate)", fmt(mst)),
                    ("found", _) => fmt(mst),
                    ("no_failure", _) => format!("≥ {}", fmt(mst)),
                    (o, _) => format!("no MST ({o})"),
                },
            });
            if let Some(b) = s.burndown_jobs_s {
                bars.push(Bar {
                    group: g,
                    slot: 1,
                    slots: 2,
                    value: b,
                    err: None,
                    color: c.mix(0.35).to_rgba().into_rgb(),
                    label: format!("{} (burn-down)", fmt(b)),
                });
            }
            notes.push(match (s.outcome.as_str(), s.limited_by.as_str()) {
                ("no_failure", _) => "no failure up to --max-rate".to_string(),
                (_, "") => "not limited".to_string(),
                (_, l) => format!("limited by {l}"),
            });
        }
        bar_panel(
            &body,
            None,
            &groups,
            &bars,
            "jobs/s",
            upper(max) * 1.1,
            &[],
            "Design",
            &notes,
        )
    }
}

trait IntoRgb {
    fn into_rgb(self) -> RGBColor;
}

impl IntoRgb for RGBAColor {
    /// The colour blended onto white at its alpha (a bar needs an opaque colour).
    fn into_rgb(self) -> RGBColor {
        let a = self.3;
        let mix = |c: u8| (f64::from(c) * a + 255.0 * (1.0 - a)).round() as u8;
        RGBColor(mix(self.0), mix(self.1), mix(self.2))
    }
}

