//! What runs beside a horizon test: the holder, on its own task and timer (started when
//! the baseline ends, released when the hold ends, on the test's clock), and the sampler,
//! which writes a row per second of the server's side of it as each of the test's own
//! intervals arrives. Each has a probe (connections) of its own, so a slow server read
//! never delays the hold or the release.

use std::fs::File;
use std::io::BufWriter;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::format::horizon::{Holder, HolderRecord, HolderSpec, HorizonRecord, HorizonRow, Phases};
use crate::queue::Horizon;
use crate::samplers::secs;
use crate::workload::{Sidecar, Tick};

/// A claim is explained this often: EXPLAIN ANALYZE runs a real claim (rolled back).
const EXPLAIN_EVERY_S: f64 = 10.0;
/// A server read that takes longer than this leaves the second's columns empty.
const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the holder task looks for the server having ended the holder.
const WATCH: Duration = Duration::from_millis(200);

pub struct HorizonSidecar {
    pub(super) sampler: JoinHandle<Result<()>>,
    pub(super) holder: JoinHandle<HolderRecord>,
    pub(super) stop: CancellationToken,
    pub(super) record: HorizonRecord,
}

#[async_trait::async_trait]
impl Sidecar for HorizonSidecar {
    async fn stop(self: Box<Self>) -> (String, serde_json::Value) {
        self.stop.cancel();
        let mut record = self.record;
        record.outcome = match self.holder.await {
            Ok(o) => o,
            Err(e) => HolderRecord {
                held: format!("the holder task failed: {e}"),
                ..HolderRecord::default()
            },
        };
        match self.sampler.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => record.sampler_error = Some(format!("{e:#}")),
            Err(e) => record.sampler_error = Some(e.to_string()),
        }
        let value = serde_json::to_value(&record).unwrap_or_default();
        ("horizon".into(), value)
    }
}

/// The holder's state, as `TEST_horizon.csv` names it; shared by the two tasks.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum State {
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

pub(super) type Shared = Arc<Mutex<State>>;

fn set(state: &Shared, s: State) {
    *state.lock().unwrap_or_else(|p| p.into_inner()) = s;
}

fn get(state: &Shared) -> State {
    *state.lock().unwrap_or_else(|p| p.into_inner())
}

/// Holds from the baseline's end to the hold's, on the test's clock (`started` arrives
/// with the test's first interval); watches for the server ending the holder; releases
/// on the way out whatever happened (a stop, Ctrl-C, an error).
pub(super) async fn hold(
    mut probe: Box<dyn Horizon>,
    spec: HolderSpec,
    phases: Phases,
    started: oneshot::Receiver<Instant>,
    state: Shared,
    stop: CancellationToken,
) -> HolderRecord {
    let mut rec = HolderRecord::default();
    let started = tokio::select! {
        s = started => match s { Ok(s) => s, Err(_) => return rec },
        _ = stop.cancelled() => return rec,
    };
    let at = |s: f64| tokio::time::Instant::from_std(started + Duration::from_secs_f64(s));
    tokio::select! {
        _ = tokio::time::sleep_until(at(phases.baseline_s)) => {}
        _ = stop.cancelled() => return rec,
    }
    match probe.hold(&spec).await {
        Ok(what) => {
            rec.held = what;
            rec.hold_started_s = Some(secs(started));
            set(&state, State::Holding);
        }
        Err(e) => {
            let msg = format!("the holder could not start: {e:#}");
            eprintln!("\nqbench: warning: {msg}");
            rec.held = msg;
            rec.never_held = true;
            set(&state, State::Killed);
        }
    }
    let release = tokio::time::sleep_until(at(phases.hold_end_s()));
    tokio::pin!(release);
    loop {
        tokio::select! {
            _ = &mut release => break,
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(WATCH) => {}
        }
        if get(&state) == State::Holding {
            if let Some(why) = probe.killed() {
                eprintln!(
                    "\nqbench: the server ended the holder at {:.1} s: {why}",
                    secs(started)
                );
                rec.killed_s = Some(secs(started));
                rec.killed_by = Some(why);
                set(&state, State::Killed);
            }
        }
    }
    probe.release().await;
    if rec.hold_started_s.is_some() {
        rec.released_s = Some(secs(started));
    }
    set(&state, State::Released);
    rec
}

pub(super) struct Sampler {
    pub probe: Box<dyn Horizon>,
    pub holder: HolderSpec,
    pub phases: Phases,
    pub state: Shared,
    pub started: Option<oneshot::Sender<Instant>>,
    pub rows: csv::Writer<BufWriter<File>>,
    pub relations: csv::Writer<BufWriter<File>>,
}

impl Sampler {
    /// A row per interval of the test until `stop`, then the intervals already sent.
    pub async fn run(
        mut self,
        mut ticks: UnboundedReceiver<Tick>,
        stop: CancellationToken,
    ) -> Result<()> {
        let mut last_explain: Option<f64> = None;
        let mut base_autovacuums: Option<i64> = None;
        loop {
            let tick = tokio::select! {
                biased;
                t = ticks.recv() => match t { Some(t) => t, None => break },
                _ = stop.cancelled() => match ticks.try_recv() {
                    Ok(t) => t,
                    Err(_) => break,
                },
            };
            if let Some(tx) = self.started.take() {
                let _ = tx.send(tick.started);
            }
            let t = tick.line.t_s;
            let explain = last_explain.is_none_or(|l| t - l >= EXPLAIN_EVERY_S);
            if explain {
                last_explain = Some(t);
            }
            self.write(&tick, explain, &mut base_autovacuums).await?;
        }
        self.rows.flush()?;
        self.relations.flush()?;
        Ok(())
    }

    /// One row (and the relations' rows) for this second.
    async fn write(
        &mut self,
        tick: &Tick,
        explain: bool,
        base_autovacuums: &mut Option<i64>,
    ) -> Result<()> {
        let line = &tick.line;
        let t_s = line.t_s;
        let before = get(&self.state);
        let sample = tokio::time::timeout(READ_TIMEOUT, self.probe.sample())
            .await
            .ok()
            .and_then(|r| r.ok())
            .unwrap_or_default();
        let cost = if explain {
            match tokio::time::timeout(READ_TIMEOUT, self.probe.claim_cost()).await {
                Ok(Ok(c)) => c.map(Ok),
                Ok(Err(e)) => Some(Err(format!("{e:#}"))),
                Err(_) => Some(Err("timed out".into())),
            }
        } else {
            None
        };
        let tables = sample.relations.iter().filter(|r| r.kind == "table");
        let indexes = sample.relations.iter().filter(|r| r.kind == "index");
        let has = !sample.relations.is_empty();
        let autovacuum_total = sample
            .autovacuums
            .map(|n| n - *base_autovacuums.get_or_insert(n));
        let ok = cost.as_ref().and_then(|c| c.as_ref().ok());
        let row = HorizonRow {
            t_s,
            // The interval's middle: the row at 60.003 s is the second before the hold.
            phase: self.phases.at(t_s - line.interval_s / 2.0).into(),
            // `holding` only if it held through the reads: a row read while the hold began
            // or ended keeps the state that leaves it out of the hold.
            holder: match (self.holder.kind, before, get(&self.state)) {
                (Holder::None, _, _) => "none".into(),
                (_, State::Holding, now) => now.name().into(),
                (_, then, State::Holding) => then.name().into(),
                (_, _, now) => now.name().into(),
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
            claim_buffers: ok.map(|c| c.buffers),
            claim_explain_ms: ok.map(|c| c.ms),
            claim_explain_error: cost.and_then(|c| c.err()),
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
