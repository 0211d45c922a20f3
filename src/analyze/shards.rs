//! A queue spread over a Valkey Cluster: how evenly its primaries shared the work.
//!
//! The skew is measured on the servers: the busiest primary's commands processed during
//! the test over the mean per primary. 1.0 is an even spread, 3.0 on three primaries means
//! one did everything. Each primary runs commands on one thread, so the cluster's capacity
//! is its busiest primary's: skew hides capacity the shard count promises. The jobs per
//! primary (which follow from where the streams were placed) are reported beside it.

use super::load::TestGroup;
use crate::format::manifest::Shard;
use crate::format::summary::Row;

/// Each stream's counts over the test's processes. Each process counted over its own
/// window (from its start to its end), and the windows differ: a worker started late
/// misses the first completions, a producer that ended early the last. The test's window
/// is their union, from the earliest start to the latest end, read from the absolute
/// counts each process saw. (Manifests without `at_start` merge as the largest count.)
fn merged(shards: &[&Shard]) -> Vec<Shard> {
    let mut out: Vec<Shard> = vec![];
    for s in shards {
        if out.iter().any(|o| o.stream == s.stream) {
            continue;
        }
        let same: Vec<&&Shard> = shards.iter().filter(|o| o.stream == s.stream).collect();
        let union = |start: fn(&Shard) -> u64, count: fn(&Shard) -> u64| {
            let from = same.iter().map(|o| start(o)).min().unwrap_or(0);
            let to = same.iter().map(|o| start(o) + count(o)).max().unwrap_or(0);
            to - from
        };
        let mut m = (*s).clone();
        m.produced = union(|o| o.at_start.produced, |o| o.produced);
        m.completed = union(|o| o.at_start.completed, |o| o.completed);
        m.node_commands = union(|o| o.at_start.node_commands, |o| o.node_commands);
        out.push(m);
    }
    out
}

/// Completed jobs per primary, in the order the primaries first appear.
pub fn per_node(shards: &[Shard]) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = vec![];
    for s in shards {
        match out.iter_mut().find(|(n, _)| *n == s.node) {
            Some((_, c)) => *c += s.completed,
            None => out.push((s.node.clone(), s.completed)),
        }
    }
    out
}

/// Commands each primary processed, once per primary (its streams all carry its count).
pub fn node_commands(shards: &[Shard]) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = vec![];
    for s in shards {
        if !out.iter().any(|(n, _)| *n == s.node) {
            out.push((s.node.clone(), s.node_commands));
        }
    }
    out
}

/// Busiest primary over the mean; `None` when nothing was counted.
pub fn skew(per_node: &[(String, u64)]) -> Option<f64> {
    let total: u64 = per_node.iter().map(|(_, c)| c).sum();
    let max = per_node.iter().map(|(_, c)| *c).max()?;
    (total > 0).then(|| max as f64 * per_node.len() as f64 / total as f64)
}

pub fn fill(g: &TestGroup, row: &mut Row) {
    let all: Vec<&Shard> = g.parts.iter().flat_map(|p| &p.manifest.shards).collect();
    let shards = merged(&all);
    if shards.is_empty() {
        return;
    }
    let jobs = per_node(&shards);
    row.shards = Some(jobs.len() as u32);
    row.shard_completed = jobs
        .iter()
        .map(|(n, c)| format!("{n}={c}"))
        .collect::<Vec<_>>()
        .join(" ");
    row.shard_skew = skew(&node_commands(&shards)).map(|s| (s * 1000.0).round() / 1000.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(stream: &str, node: &str, completed: u64) -> Shard {
        Shard {
            stream: stream.into(),
            node: node.into(),
            slot: 0,
            produced: completed,
            completed,
            node_commands: completed * 3,
            at_start: Default::default(),
        }
    }

    #[test]
    fn processes_windows_merge_into_their_union() {
        // A producer from the start (absolute 0) that ended after 150 completions, and a
        // worker that started after the first completion and saw the other 208: 209 in all.
        let producer = shard("a", "n1", 150);
        let mut worker = shard("a", "n1", 208);
        worker.at_start.completed = 1;
        worker.at_start.produced = 5;
        worker.produced = 204;
        let m = merged(&[&producer, &worker]);
        assert_eq!((m[0].completed, m[0].produced), (209, 209));
        // Without the start counts (an older manifest), the largest count stands.
        let old = merged(&[&producer, &shard("a", "n1", 208)]);
        assert_eq!(old[0].completed, 208);
    }

    #[test]
    fn skew_is_the_busiest_primary_over_the_mean() {
        let even = per_node(&[shard("a", "n1", 100), shard("b", "n2", 100)]);
        assert_eq!(skew(&even), Some(1.0));
        // Two streams on n1 and one on n2: n1 did two thirds.
        let two_on_one = per_node(&[
            shard("a", "n1", 100),
            shard("b", "n2", 100),
            shard("c", "n1", 100),
        ]);
        assert_eq!(two_on_one, vec![("n1".into(), 200), ("n2".into(), 100)]);
        let s = skew(&two_on_one).expect("skew");
        assert!((s - 4.0 / 3.0).abs() < 1e-9, "{s}");
        let all_on_one = per_node(&[
            shard("a", "n1", 90),
            shard("b", "n2", 0),
            shard("c", "n3", 0),
        ]);
        assert_eq!(skew(&all_on_one), Some(3.0));
        assert_eq!(skew(&per_node(&[shard("a", "n1", 0)])), None);
        // Commands count once per primary, not once per stream on it.
        let c = node_commands(&[
            shard("a", "n1", 10),
            shard("c", "n1", 10),
            shard("b", "n2", 10),
        ]);
        assert_eq!(c, vec![("n1".into(), 30), ("n2".into(), 30)]);
    }
}
