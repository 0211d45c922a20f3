//! The scenario registry: one file per scenario, one line in `scenarios!` below. A
//! scenario says how long it takes, what it needs, and how its test runs: what happens
//! before the measured window (a restart, a warmup, pgbench alone) and beside it.

use std::path::PathBuf;

use anyhow::Result;
use async_trait::async_trait;

use super::pgbench::Pgbench;
use super::{Planned, SuiteOptions};
use crate::config::Benchmark;
use crate::error::UsageError;
use crate::queue::Queue;
use crate::session::Session;
use crate::workload::{self, Env, Identity};

/// What one test of a scenario runs with.
pub struct Test<'a> {
    pub session: &'a Session,
    pub planned: &'a Planned,
    pub opts: &'a SuiteOptions,
    /// The test's own config (the suite's, with its wakeup).
    pub cfg: crate::config::Config,
    /// The queue, set up and emptied.
    pub queue: std::sync::Arc<dyn Queue>,
    /// The progress line's name: `[3/12] skip_locked_load`.
    pub label: String,
    pub pgbench: Option<&'a Pgbench>,
    /// Warnings made before the suite (capacity, tiers), for every manifest.
    pub warnings: Vec<String>,
    /// What the manifest's `extra` holds so far (the repeat, the label).
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Test<'_> {
    /// The identity of this test, or of a run before it (`name`, `label`).
    pub fn id(&self, name: String, label: String) -> Identity {
        Identity {
            scenario: Some(self.planned.scenario.name().into()),
            smoke: self.opts.quick,
            label,
            ..Identity::new(name, crate::format::manifest::Role::Suite)
        }
    }

    /// The environment the session gives this test, with the suite's warnings.
    pub fn env(&self) -> Env {
        Env {
            warnings: self.warnings.clone(),
            ..self.session.env(self.queue.clone(), &self.cfg)
        }
    }

    /// Where the test's files go.
    pub fn dir(&self) -> &PathBuf {
        &self.planned.dir
    }
}

/// How one scenario runs. Its futures need not be `Send`: a suite runs one test at a
/// time on the command's own task.
#[async_trait(?Send)]
pub trait Scenario: Sync {
    /// Seconds a test takes beyond its production window, for the suite's estimate.
    fn extra_s(&self, b: &Benchmark, opts: &SuiteOptions) -> f64;
    /// Whether its tests run pgbench (its binary is found before anything starts).
    fn needs_pgbench(&self) -> bool {
        false
    }
    /// Before the queue is set up for the test (the cold scenario restarts the server);
    /// returns what the manifest's `extra` records of it, under the returned key.
    async fn before(
        &self,
        _s: &Session,
        _t: &Planned,
        _cfg: &crate::config::Config,
    ) -> Result<Option<(String, serde_json::Value)>> {
        Ok(None)
    }
    /// Runs the test on its emptied queue and writes its files.
    async fn run(&self, t: Test<'_>) -> Result<workload::Report>;
}

macro_rules! scenarios {
    ($($variant:ident => $module:ident :: $ty:ident),+ $(,)?) => {
        $(pub mod $module;)+

        /// One of the registered scenarios, in the order a suite runs them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum Kind {
            $($variant),+
        }

        impl Kind {
            /// Every scenario, in the registry's order.
            pub const ALL: &'static [Kind] = &[$(Kind::$variant),+];

            /// How the scenario runs.
            pub fn scenario(self) -> &'static dyn Scenario {
                match self {
                    $(Kind::$variant => &$module::$ty),+
                }
            }

            /// The name on the command line and in test names (`skip_locked_warm`).
            pub fn name(self) -> &'static str {
                match self {
                    $(Kind::$variant => stringify!($module)),+
                }
            }
        }
    };
}

scenarios! {
    Cold => cold::Cold,
    Warm => warm::Warm,
    Load => load::Load,
    Horizon => horizon::Horizon,
}

impl Kind {
    /// A comma-separated list, each once, in the registry's order.
    pub fn parse_list(s: &str) -> Result<Vec<Kind>, UsageError> {
        let mut out = vec![];
        for p in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let sc = Kind::ALL
                .iter()
                .copied()
                .find(|x| x.name() == p)
                .ok_or_else(|| {
                    let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
                    UsageError::new(format!(
                        "unknown scenario {p:?}: choose from {}",
                        names.join(", ")
                    ))
                })?;
            if !out.contains(&sc) {
                out.push(sc);
            }
        }
        if out.is_empty() {
            return Err(UsageError::new("--scenarios names no scenario"));
        }
        out.sort();
        Ok(out)
    }
}
