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

/// Each stream's counts over the test's processes: each process read them over its own
/// window, so the largest is the test's (the worker that ran longest saw every job).
fn merged(g: &TestGroup) -> Vec<Shard> {
    let mut out: Vec<Shard> = vec![];
    for s in g.parts.iter().flat_map(|p| &p.manifest.shards) {
        match out.iter_mut().find(|o| o.stream == s.stream) {
            Some(o) => {
                o.produced = o.produced.max(s.produced);
                o.completed = o.completed.max(s.completed);
                o.node_commands = o.node_commands.max(s.node_commands);
            }
            None => out.push(s.clone()),
        }
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
    let shards = merged(g);
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
        }
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
