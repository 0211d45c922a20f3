//! What runs beside a horizon test: the holder, started when the baseline ends and
//! released when the hold ends, and a row per second of the server's side of it, each
//! written as the test's own interval for that second arrives.

use std::fs::File;
use std::io::BufWriter;
use std::time::Duration;

use anyhow::Result;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::format::horizon::{HolderRecord, HolderSpec, HorizonRecord, HorizonRow, Phases};
use crate::queue::Horizon;
use crate::samplers::secs;
use crate::workload::{Sidecar, Tick};

/// A claim is explained this often: EXPLAIN ANALYZE runs a real claim (rolled back).
const EXPLAIN_EVERY_S: f64 = 10.0;
/// A server read that takes longer than this leaves the second's columns empty.
const READ_TIMEOUT: Duration = Duration::from_secs(2);

pub struct HorizonSidecar {
    pub(super) task: JoinHandle<Result<HolderRecord>>,
    pub(super) stop: CancellationToken,
    pub(super) record: HorizonRecord,
}

#[async_trait::async_trait]
impl Sidecar for HorizonSidecar {
    async fn stop(self: Box<Self>) -> (String, serde_json::Value) {
        self.stop.cancel();
        let mut record = self.record;
        record.outcome = match self.task.await {
            Ok(Ok(o)) => o,
            Ok(Err(e)) => HolderRecord {
                held: format!("the horizon sampler failed: {e:#}"),
                ..HolderRecord::default()
            },
            Err(e) => HolderRecord {
                held: format!("the horizon sampler failed: {e}"),
                ..HolderRecord::default()
            },
        };
        let value = serde_json::to_value(&record).unwrap_or_default();
        ("horizon".into(), value)
    }
}

/// The holder's state, as `TEST_horizon.csv` names it.
#[derive(Clone, Copy, PartialEq)]
enum State {
    Idle,
    Holding,
    Killed,
    Released,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::Idle => "idle",
            State::Holding => "holding",
            State::Killed => "killed",
            State::Released => "released",
        }
    }
}

pub(super) struct Sampler {
    pub probe: Box<dyn Horizon>,
    pub holder: HolderSpec,
    pub phases: Phases,
    pub rows: csv::Writer<BufWriter<File>>,
    pub relations: csv::Writer<BufWriter<File>>,
}

impl Sampler {
    /// Until `stop` (or the test's last interval): phases on the test's clock, a row each
    /// second. The holder is released on the way out whatever happened.
    pub async fn run(
        mut self,
        mut ticks: UnboundedReceiver<Tick>,
        stop: CancellationToken,
    ) -> Result<HolderRecord> {
        let mut rec = HolderRecord::default();
        let mut state = State::Idle;
        let mut last_explain: Option<f64> = None;
        let mut base_autovacuums: Option<i64> = None;
        let result = loop {
            let tick = tokio::select! {
                t = ticks.recv() => match t { Some(t) => t, None => break Ok(()) },
                _ = stop.cancelled() => break Ok(()),
            };
            state = self.advance(state, &tick, &mut rec).await;
            let t = tick.line.t_s;
            let explain = last_explain.is_none_or(|l| t - l >= EXPLAIN_EVERY_S);
            if explain {
                last_explain = Some(t);
            }
            if let Err(e) = self
                .write(&tick, state, explain, &mut base_autovacuums)
                .await
            {
                break Err(e);
            }
        };
        if matches!(state, State::Holding | State::Killed) {
            self.probe.release().await;
        }
        self.rows.flush()?;
        self.relations.flush()?;
        result.map(|()| rec)
    }

    /// Starts, watches and ends the holder as the test's clock passes the phases.
    async fn advance(&mut self, state: State, tick: &Tick, rec: &mut HolderRecord) -> State {
        let t = tick.line.t_s;
        let now = || secs(tick.started);
        match state {
            State::Idle if t >= self.phases.baseline_s && t < self.phases.hold_end_s() => {
                match self.probe.hold(&self.holder).await {
                    Ok(what) => {
                        rec.held = what;
                        rec.hold_started_s = Some(now());
                        State::Holding
                    }
                    Err(e) => {
                        let msg = format!("the holder could not start: {e:#}");
                        eprintln!("\nqbench: warning: {msg}");
                        rec.held = msg;
                        rec.killed_s = Some(now());
                        rec.killed_by = Some(format!("{e:#}"));
                        State::Killed
                    }
                }
            }
            State::Holding | State::Killed if t >= self.phases.hold_end_s() => {
                self.probe.release().await;
                rec.released_s = Some(now());
                State::Released
            }
            State::Holding => match self.probe.killed() {
                Some(why) => {
                    eprintln!(
                        "\nqbench: the server ended the holder at {:.0} s: {why}",
                        now()
                    );
                    rec.killed_s = Some(now());
                    rec.killed_by = Some(why);
                    State::Killed
                }
                None => State::Holding,
            },
            other => other,
        }
    }

    /// One row (and the relations' rows) for this second.
    async fn write(
        &mut self,
        tick: &Tick,
        state: State,
        explain: bool,
        base_autovacuums: &mut Option<i64>,
    ) -> Result<()> {
        let line = &tick.line;
        let t_s = line.t_s;
        let sample = tokio::time::timeout(READ_TIMEOUT, self.probe.sample())
            .await
            .ok()
            .and_then(|r| r.ok())
            .unwrap_or_default();
        let cost = if explain {
            tokio::time::timeout(READ_TIMEOUT, self.probe.claim_cost())
                .await
                .ok()
                .and_then(|r| r.ok())
                .flatten()
        } else {
            None
        };
        let tables = sample.relations.iter().filter(|r| r.kind == "table");
        let indexes = sample.relations.iter().filter(|r| r.kind == "index");
        let has = !sample.relations.is_empty();
        let autovacuum_total = sample
            .autovacuums
            .map(|n| n - *base_autovacuums.get_or_insert(n));
        let row = HorizonRow {
            t_s,
            phase: self.phases.at(t_s).into(),
            holder: if self.holder.kind == crate::format::horizon::Holder::None {
                "none".into()
            } else {
                state.name().into()
            },
            xmin_age: sample.xmin_age,
            live_tuples: has.then(|| tables.clone().filter_map(|r| r.live_tuples).sum()),
            dead_tuples: has.then(|| tables.clone().filter_map(|r| r.dead_tuples).sum()),
            table_bytes: has.then(|| tables.map(|r| r.bytes).sum()),
            index_bytes: has.then(|| indexes.map(|r| r.bytes).sum()),
            autovacuum_total,
            vacuums_running: sample.vacuums_running,
            vacuum_phase: sample.vacuum_phase,
            completed: line.completed,
            claim_p50_ms: line.claim_ms.map(|l| l.p50),
            claim_p99_ms: line.claim_ms.map(|l| l.p99),
            e2e_p99_ms: line.e2e_ms.map(|l| l.p99),
            depth: line.depth,
            claim_buffers: cost.map(|c| c.buffers),
            claim_explain_ms: cost.map(|c| c.ms),
            wait_events: sample.wait_events,
            memory_bytes: sample.memory_bytes,
        };
        self.rows.serialize(&row)?;
        self.rows.flush()?;
        for mut r in sample.relations {
            r.t_s = t_s;
            self.relations.serialize(&r)?;
        }
        self.relations.flush()?;
        Ok(())
    }
}
