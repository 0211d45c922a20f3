//! What one test is: its identity, its plan, and the environment it runs in.

use std::sync::Arc;
use std::time::Duration;

use super::producer::ProducePlan;
use super::worker::WorkPlan;
use super::StopRule;
use crate::config::Config;
use crate::format::files::OutputDir;
use crate::format::manifest::{LocalInfo, Role};
use crate::progress;
use crate::queue::Queue;
use crate::samplers::system::ServerProcs;
use crate::shutdown::Shutdown;

/// Which test this is, in the files and on the console.
#[derive(Debug, Clone)]
pub struct Identity {
    pub test: String,
    /// Another process's label for the same test (`--instance`).
    pub instance: Option<String>,
    pub role: Role,
    pub scenario: Option<String>,
    /// A `--quick` run: for checking the tool, not for conclusions.
    pub smoke: bool,
    /// What the progress line calls it.
    pub label: String,
    /// `--run-id`: the coordinated run this process belongs to.
    pub coordinated_run_id: Option<String>,
}

impl Identity {
    pub fn new(test: impl Into<String>, role: Role) -> Identity {
        let test = test.into();
        Identity {
            label: test.clone(),
            test,
            instance: None,
            role,
            scenario: None,
            smoke: false,
            coordinated_run_id: None,
        }
    }
}

/// What runs, and when it ends.
#[derive(Debug, Clone)]
pub struct Plan {
    pub produce: Option<ProducePlan>,
    pub work: Option<WorkPlan>,
    pub stop: StopRule,
}

impl Plan {
    /// How long the test is planned to take, for the progress line; `None` if open-ended.
    pub fn planned(&self) -> Option<Duration> {
        match &self.stop {
            StopRule::Duration(d) => Some(*d),
            StopRule::UntilIdle { max, .. } => *max,
            _ => self.produce.as_ref().and_then(|p| {
                p.duration.or_else(|| {
                    p.rate
                        .zip(p.count)
                        .map(|(r, n)| Duration::from_secs_f64(n as f64 / r))
                })
            }),
        }
    }
}

/// Something that runs beside a test for its measured window (pgbench), stopped right
/// after the workers, before the files are closed; its account goes into `extra`.
#[async_trait::async_trait]
pub trait Sidecar: Send {
    async fn stop(self: Box<Self>) -> (String, serde_json::Value);
}

/// Where the test runs and what surrounds it.
pub struct Env {
    pub queue: Arc<dyn Queue>,
    pub cfg: Config,
    /// Where the result files go; `None` writes nothing.
    pub output: Option<OutputDir>,
    pub progress: progress::Mode,
    pub local: Option<LocalInfo>,
    /// Which processes the system sampler counts as the server.
    pub server: ServerProcs,
    pub shutdown: Shutdown,
    /// Warnings made before the test (already printed), kept for the manifest.
    pub warnings: Vec<String>,
    /// Scenario details for the manifest (cold start, warmup, pgbench).
    pub extra: serde_json::Map<String, serde_json::Value>,
    pub sidecar: Option<Box<dyn Sidecar>>,
    /// Counts the jobs the server acknowledged to the producer as they happen, for a
    /// caller that acts on the run from outside (a crash trial kills the server once
    /// enough are in) without querying the queue it measures.
    pub acked: Option<Arc<std::sync::atomic::AtomicU64>>,
    /// Each second's interval as it is written, for a caller that acts on the test while
    /// it runs (the horizon scenario's phases and sampler).
    pub ticks: Option<tokio::sync::mpsc::UnboundedSender<Tick>>,
    /// `--start-at`: load begins at this time, once every connection is open.
    pub start_at: Option<std::time::SystemTime>,
    /// The binary and runtime the test ran on, for the manifest.
    pub build: crate::build::Build,
}

/// One second of a running test: its clock and the interval just written.
#[derive(Debug, Clone)]
pub struct Tick {
    pub started: std::time::Instant,
    pub line: crate::format::metrics::IntervalLine,
}

impl Env {
    /// A quiet environment that writes nothing; callers set what differs.
    pub fn new(queue: Arc<dyn Queue>, cfg: Config, shutdown: Shutdown) -> Env {
        Env {
            queue,
            cfg,
            output: None,
            progress: progress::Mode::Quiet,
            local: None,
            server: ServerProcs::Remote,
            shutdown,
            warnings: vec![],
            extra: Default::default(),
            sidecar: None,
            acked: None,
            ticks: None,
            start_at: None,
            build: crate::build::Build::new(None),
        }
    }
}

pub struct Spec {
    pub id: Identity,
    pub plan: Plan,
    pub env: Env,
}
