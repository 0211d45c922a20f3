//! One test's seconds and its server's events on one clock, from its files only: the
//! per-second histograms of every process's `.hlog` merged (exact, never averaged), the
//! counts and depth of `metrics.jsonl`, and the server's per-second statistics. analyze
//! finds and attributes the spikes in it; graph draws it.

pub mod events;
pub mod spikes;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use hdrhistogram::Histogram;

pub use self::events::Event;
use crate::format::manifest::Manifest;
use crate::format::metrics::read_metrics;
use crate::format::read::{bad, parse_csv, read_manifest};
use crate::format::server_stats::{DbRow, ValkeyRow, DB_STATS, VALKEY_STATS};
use crate::stats::{new_histogram, Metric};

/// One second of the test: `t_s` is its end, in whole seconds since the first process
/// of the test started.
#[derive(Debug, Clone)]
pub struct Second {
    pub t_s: f64,
    pub e2e: Histogram<u64>,
    pub schedule_lag: Histogram<u64>,
    pub produced: u64,
    pub completed: u64,
    pub depth: Option<u64>,
    pub dead_tuples: Option<i64>,
    pub valkey_memory_mb: Option<f64>,
}

impl Second {
    fn new(t_s: f64) -> Second {
        Second {
            t_s,
            e2e: new_histogram(),
            schedule_lag: new_histogram(),
            produced: 0,
            completed: 0,
            depth: None,
            dead_tuples: None,
            valkey_memory_mb: None,
        }
    }
}

/// A quantile of a histogram of microseconds, in ms; none if it is empty.
pub fn quantile_ms(h: &Histogram<u64>, q: f64) -> Option<f64> {
    (!h.is_empty()).then(|| h.value_at_quantile(q) as f64 / 1000.0)
}

#[derive(Debug, Clone)]
pub struct Timeline {
    pub test: String,
    pub queue: String,
    pub backend: String,
    pub smoke: bool,
    pub seconds: Vec<Second>,
    /// The server's events and the test's own (outages, pgbench, the warmup's end).
    pub events: Vec<Event>,
}

/// The test's seconds by their end, in whole seconds: processes that started a
/// fraction of a second apart share them.
#[derive(Default)]
struct Seconds(BTreeMap<i64, Second>);

impl Seconds {
    fn at(&mut self, t_s: f64) -> &mut Second {
        let k = t_s.round().max(1.0) as i64;
        self.0.entry(k).or_insert_with(|| Second::new(k as f64))
    }

    /// A collect that waited on a stalled server covers several seconds and lands on
    /// the last: the seconds it skipped are added, empty, with the depth before them,
    /// so a stall keeps its length.
    fn fill_gaps(&mut self) {
        let (Some(&a), Some(&b)) = (self.0.keys().next(), self.0.keys().next_back()) else {
            return;
        };
        let mut depth = None;
        for k in a..=b {
            match self.0.get(&k) {
                Some(s) => depth = s.depth.or(depth),
                None => {
                    let mut s = Second::new(k as f64);
                    s.depth = depth;
                    self.0.insert(k, s);
                }
            }
        }
    }
}

/// One process's files of the test.
struct Part {
    manifest: Manifest,
    stem: String,
}

/// Reads test `test` of results folder `folder`: every process's files of it. A file
/// that is missing or truncated is an error naming it.
pub fn load(folder: &Path, test: &str) -> Result<Timeline> {
    let parts = parts(folder, test)?;
    let file = |p: &Part, kind: &str| folder.join(format!("{}_{kind}", p.stem));
    let mut hlogs = vec![];
    for p in &parts {
        let path = file(p, "latency.hlog");
        if !path.exists() {
            return Err(bad(&path, "is missing (named by its manifest)"));
        }
        hlogs.push(crate::format::hlog::read(&path)?);
    }
    // Each process's clock starts at its first interval; the test's at the earliest.
    let starts: Vec<Option<f64>> = hlogs
        .iter()
        .map(|h| h.iter().map(|i| i.start_epoch_s).min_by(f64::total_cmp))
        .collect();
    let t0 = starts
        .iter()
        .flatten()
        .copied()
        .min_by(f64::total_cmp)
        .ok_or_else(|| bad(&file(&parts[0], "latency.hlog"), "holds no intervals"))?;
    let mut secs = Seconds::default();
    let mut events = vec![];
    // Every process of a test samples the same server: one process's rows are enough,
    // and more would count each vacuum once per process.
    let mut server_read = false;
    for ((p, hlog), start) in parts.iter().zip(&hlogs).zip(&starts) {
        let offset = start.map_or(0.0, |s| s - t0);
        for i in hlog {
            let s = secs.at(i.start_epoch_s - t0 + i.length_s);
            let into = match i.metric {
                Some(Metric::E2e) => &mut s.e2e,
                Some(Metric::ScheduleLag) => &mut s.schedule_lag,
                _ => continue,
            };
            into.add(&i.histogram)
                .map_err(|e| bad(&file(p, "latency.hlog"), format!("{e:?}")))?;
        }
        let metrics = file(p, "metrics.jsonl");
        if !metrics.exists() {
            return Err(bad(&metrics, "is missing (named by its manifest)"));
        }
        let (intervals, summary) = read_metrics(&metrics)?;
        for iv in intervals {
            let s = secs.at(iv.t_s + offset);
            s.produced += iv.produced;
            s.completed += iv.completed;
            s.depth = s.depth.max(iv.depth);
        }
        if !server_read {
            let server = server_events(folder, p, offset, &mut secs)?;
            server_read = server.is_some();
            events.extend(server.unwrap_or_default());
        }
        events.extend(events::of_test(&p.manifest, &summary, t0));
    }
    secs.fill_gaps();
    let span = secs.0.keys().next_back().map_or(0.0, |k| *k as f64);
    let mut events = events::merge_outages(events);
    events::background(&mut events, span);
    events.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
    let m = &parts[0].manifest;
    Ok(Timeline {
        test: test.to_string(),
        queue: m.queue.clone(),
        backend: m.backend.clone(),
        smoke: m.smoke,
        seconds: secs.0.into_values().collect(),
        events,
    })
}

/// The manifests of `test` in `folder`, with each one's file stem.
fn parts(folder: &Path, test: &str) -> Result<Vec<Part>> {
    let listing =
        std::fs::read_dir(folder).map_err(|e| bad(folder, format!("cannot list: {e}")))?;
    let mut paths: Vec<PathBuf> = listing
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with("_manifest.json"))
        })
        .collect();
    paths.sort();
    let mut parts = vec![];
    for path in paths {
        let manifest = read_manifest(&path)?;
        if manifest.test != test {
            continue;
        }
        let stem = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix("_manifest.json"))
            .unwrap_or_default()
            .to_string();
        parts.push(Part { manifest, stem });
    }
    if parts.is_empty() {
        return Err(bad(
            &folder.join(format!("{test}_manifest.json")),
            "is missing: no manifest of this test in the folder",
        ));
    }
    Ok(parts)
}

/// A per-second CSV must end with a whole line: a cut one could still parse.
fn read_whole_csv<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    if !path.exists() {
        return Err(bad(path, "is missing (named by its manifest)"));
    }
    let bytes = std::fs::read(path).map_err(|e| bad(path, format!("cannot read: {e}")))?;
    if bytes.last() != Some(&b'\n') {
        return Err(bad(
            path,
            "the last line is incomplete: the file is truncated",
        ));
    }
    parse_csv(&bytes, path)
}

/// The server's events from the per-second statistics the part wrote; none if its
/// manifest names no such file.
fn server_events(
    folder: &Path,
    p: &Part,
    offset: f64,
    secs: &mut Seconds,
) -> Result<Option<Vec<Event>>> {
    let names = |kind: &str| p.manifest.files.iter().any(|f| f.ends_with(kind));
    let path = |kind: &str| folder.join(format!("{}_{kind}", p.stem));
    if names(DB_STATS) {
        let mut rows: Vec<DbRow> = read_whole_csv(&path(DB_STATS))?;
        for r in &mut rows {
            r.t_s += offset;
            secs.at(r.t_s).dead_tuples = Some(r.dead_tuples);
        }
        return Ok(Some(events::of_postgres(&rows)));
    }
    if names(VALKEY_STATS) {
        let mut rows: Vec<ValkeyRow> = read_whole_csv(&path(VALKEY_STATS))?;
        for r in &mut rows {
            r.t_s += offset;
            secs.at(r.t_s).valkey_memory_mb = Some(r.used_memory_bytes as f64 / 1_048_576.0);
        }
        return Ok(Some(events::of_valkey(&rows)));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_a_late_collect_skipped_are_there_empty_with_the_depth_before() {
        let mut secs = Seconds::default();
        secs.at(1.0).depth = Some(7);
        secs.at(1.0).completed = 10;
        // One collect covered seconds 2 to 4 and was written at 4.
        secs.at(4.02).completed = 30;
        secs.fill_gaps();
        let got: Vec<(f64, u64, Option<u64>)> = secs
            .0
            .values()
            .map(|s| (s.t_s, s.completed, s.depth))
            .collect();
        assert_eq!(
            got,
            vec![
                (1.0, 10, Some(7)),
                (2.0, 0, Some(7)),
                (3.0, 0, Some(7)),
                (4.0, 30, None)
            ]
        );
    }
}
