//! Which tests a suite runs, in which order, and what they are called.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{Config, Wakeup, Wakeups};
use crate::error::UsageError;
use crate::queue::{Backend, QueueKind};

pub use super::scenarios::Kind as Scenario;

/// Where each backend's results go, as the seed names them.
pub fn backend_dir(out: &Path, b: Backend) -> PathBuf {
    out.join(b.results_dir())
}

/// The seed's test names: `skip_locked_cold` … `partitioned_load`, `valkey_cold` …;
/// with notify wakeups, `skip_locked_notify_cold` ….
pub fn test_name(kind: QueueKind, sc: Scenario, wakeup: Option<Wakeup>) -> String {
    match wakeup {
        Some(Wakeup::Notify) => format!("{}_notify_{}", kind.info().test_prefix, sc.name()),
        _ => format!("{}_{}", kind.info().test_prefix, sc.name()),
    }
}

/// Where a test sits among repeated runs: repeat `index` of `of`, and its place in the
/// whole run order (so drift over time can be told from a design's own spread).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Repeat {
    pub index: u32,
    pub of: u32,
    pub position: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub name: String,
    /// The variant's label (`--label`), part of the name: A/B runs share a folder.
    pub label: Option<String>,
    pub repeat: Repeat,
    pub kind: QueueKind,
    pub scenario: Scenario,
    /// How idle workers wake, for the designs that poll (`None`: the claim blocks).
    pub wakeup: Option<Wakeup>,
    pub dir: PathBuf,
}

impl Planned {
    /// The config this test runs with: the suite's, with its own wakeup mode.
    pub fn config(&self, cfg: &Config) -> Config {
        let mut c = cfg.clone();
        c.benchmark.wakeup = Wakeups::one(self.wakeup.unwrap_or(Wakeup::Poll));
        c
    }
}

/// What a suite runs: which designs, scenarios and wakeups, how often, under what label.
pub struct Matrix<'a> {
    pub backends: &'a [Backend],
    pub queues: Option<&'a str>,
    pub scenarios: &'a [Scenario],
    pub wakeups: &'a Wakeups,
    pub repeat: u32,
    pub label: Option<&'a str>,
    /// The horizon scenario's holder, part of its tests' names (`skip_locked_horizon_xid`).
    pub holder: Option<&'a str>,
}

/// Refuses a label that would not make a plain file name.
pub fn check_label(label: &str) -> Result<(), UsageError> {
    // `r3` would read as a repeat suffix (`TEST.r3`).
    let repeat_like =
        label.len() > 1 && label.starts_with('r') && label[1..].bytes().all(|b| b.is_ascii_digit());
    let ok = !label.is_empty()
        && !repeat_like
        && label.len() <= 40
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(UsageError::new(format!(
            "--label {label:?}: use 1-40 letters, digits, - or _ (it becomes part of file names), not r<digits> (that names a repeat)"
        )))
    }
}

/// The tests of a suite: the seed's order in repeat 1; each later repeat rotates the
/// designs by one (ABCD, BCDA, …) so a drift over time does not land on one design.
pub fn plan(m: &Matrix, out: &Path) -> Result<Vec<Planned>, UsageError> {
    if let Some(l) = m.label {
        check_label(l)?;
    }
    let kinds = designs(m.backends, m.queues)?;
    let mut tests = vec![];
    for r in 0..m.repeat {
        let shift = r as usize % kinds.len().max(1);
        for &kind in kinds[shift..].iter().chain(&kinds[..shift]) {
            let modes: Vec<Option<Wakeup>> = if kind.polls() {
                m.wakeups.modes().iter().copied().map(Some).collect()
            } else {
                vec![None]
            };
            for wakeup in modes {
                for &sc in m.scenarios {
                    let mut name = test_name(kind, sc, wakeup);
                    if let (Scenario::Horizon, Some(h)) = (sc, m.holder) {
                        name = format!("{name}_{h}");
                    }
                    if let Some(l) = m.label {
                        name = format!("{name}.{l}");
                    }
                    if m.repeat > 1 {
                        name = format!("{name}.r{}", r + 1);
                    }
                    tests.push(Planned {
                        name,
                        label: m.label.map(str::to_string),
                        repeat: Repeat {
                            index: r + 1,
                            of: m.repeat,
                            position: tests.len() + 1,
                        },
                        kind,
                        scenario: sc,
                        wakeup,
                        dir: backend_dir(out, kind.backend()),
                    });
                }
            }
        }
    }
    Ok(tests)
}

fn designs(backends: &[Backend], queues: Option<&str>) -> Result<Vec<QueueKind>, UsageError> {
    let wanted: Vec<QueueKind> = match queues {
        Some(list) => QueueKind::parse_list(list)?,
        // The seed's matrix; a design added later runs where --queues names it.
        None => QueueKind::ALL
            .iter()
            .copied()
            .filter(|k| k.info().seed && backends.contains(&k.backend()))
            .collect(),
    };
    if let Some(k) = wanted.iter().find(|k| !backends.contains(&k.backend())) {
        return Err(UsageError::new(format!(
            "--queues names {k}, which is not part of --backend {}",
            backends
                .iter()
                .map(|b| b.name())
                .collect::<Vec<_>>()
                .join(",")
        )));
    }
    Ok(QueueKind::ALL
        .iter()
        .copied()
        .filter(|k| wanted.contains(k))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan4(
        backends: &[Backend],
        queues: Option<&str>,
        scenarios: &[Scenario],
        wakeups: &Wakeups,
        out: &Path,
    ) -> Result<Vec<Planned>, UsageError> {
        let m = Matrix {
            backends,
            queues,
            scenarios,
            wakeups,
            repeat: 1,
            label: None,
            holder: None,
        };
        plan(&m, out)
    }

    #[test]
    fn repeats_rotate_the_designs_and_name_each_run() {
        let poll = Wakeups::one(Wakeup::Poll);
        let m = Matrix {
            backends: &[Backend::Postgresql, Backend::Valkey],
            queues: None,
            scenarios: &[Scenario::Warm],
            wakeups: &poll,
            repeat: 3,
            label: Some("A"),
            holder: None,
        };
        let all = plan(&m, Path::new("r")).expect("plan");
        let names: Vec<&str> = all.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "skip_locked_warm.A.r1",
                "delete_returning_warm.A.r1",
                "partitioned_warm.A.r1",
                "valkey_warm.A.r1",
                "delete_returning_warm.A.r2",
                "partitioned_warm.A.r2",
                "valkey_warm.A.r2",
                "skip_locked_warm.A.r2",
                "partitioned_warm.A.r3",
                "valkey_warm.A.r3",
                "skip_locked_warm.A.r3",
                "delete_returning_warm.A.r3",
            ]
        );
        assert_eq!(
            all[5].repeat,
            Repeat {
                index: 2,
                of: 3,
                position: 6
            }
        );
        assert!(check_label("a b").is_err() && check_label("").is_err());
        assert!(check_label("r3").is_err() && check_label("r").is_ok());
    }

    #[test]
    fn plans_the_seeds_matrix() {
        let out = Path::new("results");
        let poll = Wakeups::one(Wakeup::Poll);
        let seed = [Scenario::Cold, Scenario::Warm, Scenario::Load];
        let all = plan4(
            &[Backend::Postgresql, Backend::Valkey],
            None,
            &seed,
            &poll,
            out,
        )
        .expect("plan");
        let names: Vec<&str> = all.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names.len(), 12);
        assert_eq!(
            &names[..3],
            ["skip_locked_cold", "skip_locked_warm", "skip_locked_load"]
        );
        assert_eq!(&names[9..], ["valkey_cold", "valkey_warm", "valkey_load"]);
        assert_eq!(all[0].dir, Path::new("results/vm1_pg"));
        assert_eq!(all[11].dir, Path::new("results/vm2_valkey"));
        let pg = plan4(&[Backend::Postgresql], None, &seed, &poll, out).expect("pg");
        assert_eq!(pg.len(), 9);
        let both: Wakeups = "poll,notify".parse().expect("modes");
        let v = plan4(&[Backend::Valkey], None, &[Scenario::Load], &both, out).expect("valkey");
        assert_eq!(v.len(), 1, "Valkey's claim blocks: one wakeup");
        assert_eq!((v[0].name.as_str(), v[0].wakeup), ("valkey_load", None));
        let n = plan4(
            &[Backend::Postgresql],
            Some("skip_locked"),
            &[Scenario::Warm],
            &both,
            out,
        )
        .expect("both");
        let names: Vec<&str> = n.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["skip_locked_warm", "skip_locked_notify_warm"]);
        assert_eq!(
            n[1].config(&Config::default()).benchmark.wakeup.single(),
            Ok(Wakeup::Notify)
        );
    }

    #[test]
    fn refuses_queues_outside_the_backend_and_unknown_scenarios() {
        let out = Path::new("r");
        assert!(plan4(
            &[Backend::Postgresql],
            Some("valkey_streams"),
            Scenario::ALL,
            &Wakeups::one(Wakeup::Poll),
            out
        )
        .is_err());
        assert!(Scenario::parse_list("cold,hot").is_err());
        assert_eq!(
            Scenario::parse_list("load,cold").expect("ok"),
            vec![Scenario::Cold, Scenario::Load]
        );
    }
}
