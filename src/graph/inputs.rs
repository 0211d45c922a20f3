//! Everything the charts draw, read from an analysis folder: summary.csv and the CSVs
//! analyze writes beside it. Charts read these, never a results folder's raw files
//! (the per-test timelines read the folder each row names).

use std::path::Path;

use anyhow::Result;

use super::Data;
use crate::format::capacity::{ScalingRow, StepRow, CAPACITY_CSV, SCALING_CSV};
use crate::format::horizon::{TimelineRow, TIMELINE_CSV};
use crate::format::summary::Row;

/// What one `graph` run draws from.
pub struct Inputs {
    /// The seed's scenarios (cold, warm, load) in one tier; `None` when there are none.
    pub seed: Option<Data>,
    /// Every test of summary.csv, for the per-test charts.
    pub rows: Vec<Row>,
    pub capacity: CapacityData,
    pub horizon: Timelines,
    /// Draw a chart per test (`--timelines`, or a folder of tests run by hand).
    pub per_test: bool,
}

impl Inputs {
    /// Reads the analysis beside `summary`: the seed's rows in `tier` (else the
    /// strictest both backends ran in), sweeps, horizon runs and every test.
    pub fn read(summary: &Path, tier: Option<&str>, timelines: bool) -> Result<Inputs> {
        let capacity = CapacityData::beside(summary)?;
        let horizon = Timelines::beside(summary)?;
        // analyze writes an empty summary.csv when its folders held sweeps or crashes only.
        let empty = std::fs::metadata(summary).is_ok_and(|m| m.len() == 0);
        let rows = if empty {
            vec![]
        } else {
            super::read_summary(summary)?
        };
        let seed = Data::from_rows(rows.clone(), tier)?;
        Ok(Inputs {
            per_test: timelines || (seed.is_none() && !rows.is_empty()),
            seed,
            rows,
            capacity,
            horizon,
        })
    }

    /// Nothing any chart could draw.
    pub fn is_empty(&self) -> bool {
        self.seed.is_none()
            && self.rows.is_empty()
            && self.capacity.is_empty()
            && self.horizon.0.is_empty()
    }
}

/// What the capacity charts draw.
#[derive(Debug, Default)]
pub struct CapacityData {
    pub steps: Vec<StepRow>,
    pub scaling: Vec<ScalingRow>,
}

impl CapacityData {
    /// Reads the two CSVs beside `summary` if they are there.
    pub fn beside(summary: &Path) -> Result<CapacityData> {
        let dir = summary.parent().unwrap_or(Path::new("."));
        let read = |name: &str| dir.join(name);
        let steps = match read(CAPACITY_CSV) {
            p if p.exists() => crate::format::read::read_csv(&p)?,
            _ => vec![],
        };
        let scaling = match read(SCALING_CSV) {
            p if p.exists() => crate::format::read::read_csv(&p)?,
            _ => vec![],
        };
        Ok(CapacityData { steps, scaling })
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty() && self.scaling.is_empty()
    }

    /// A design's series name: its queue, with the tier when several tiers were swept.
    pub fn series<'a>(
        &self,
        rows: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> Vec<(String, String, String)> {
        let all: Vec<(&str, &str)> = rows.collect();
        let several = all.iter().any(|(_, t)| *t != all[0].1);
        let mut out: Vec<(String, String, String)> = vec![];
        for (q, t) in all {
            let name = if several {
                format!("{q} ({t})")
            } else {
                q.to_string()
            };
            if !out.iter().any(|(_, _, n)| *n == name) {
                out.push((q.to_string(), t.to_string(), name));
            }
        }
        out
    }

    pub fn designs(&self) -> Vec<(String, String, String)> {
        self.series(
            self.steps
                .iter()
                .map(|s| (s.queue.as_str(), s.tier.as_str())),
        )
    }

    pub fn note(&self) -> String {
        if self.steps.iter().any(|s| s.smoke) {
            "smoke sweep (--quick): not for conclusions".into()
        } else {
            String::new()
        }
    }
}

/// Every horizon test's seconds, in test order.
pub struct Timelines(pub Vec<(String, Vec<TimelineRow>)>);

impl Timelines {
    /// Reads `horizon_timeline.csv` beside `summary` if it is there.
    pub fn beside(summary: &Path) -> Result<Timelines> {
        let path = summary
            .parent()
            .unwrap_or(Path::new("."))
            .join(TIMELINE_CSV);
        if !path.exists() {
            return Ok(Timelines(vec![]));
        }
        let rows: Vec<TimelineRow> = crate::format::read::read_csv(&path)?;
        // One panel per test run: a run's rows are consecutive, its clock only rises (two
        // folders may hold tests of the same name).
        let mut tests: Vec<(String, Vec<TimelineRow>)> = vec![];
        for r in rows {
            match tests.last_mut() {
                Some((t, v)) if *t == r.test && v.last().is_some_and(|p| p.t_s < r.t_s) => {
                    v.push(r)
                }
                _ => tests.push((r.test.clone(), vec![r])),
            }
        }
        Ok(Timelines(tests))
    }
}
