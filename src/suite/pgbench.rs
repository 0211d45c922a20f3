//! pgbench as background contention: initialised once per suite, run for a test's measured
//! window, its per-second progress saved as `TEST_pgbench.csv`. It is tied to qbench
//! (PR_SET_PDEATHSIG, own process group) so it can never outlive a run.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::signal::Signal;

use crate::config::{Config, Pgbench as PgbenchCfg, Postgres};
pub use crate::format::pgbench::{Row, Stats};
use crate::local::{binaries, process};
use crate::queue::pg;
use crate::shutdown::Shutdown;

pub struct Pgbench {
    bin: PathBuf,
    pg: Postgres,
    cfg: PgbenchCfg,
}

/// Parses `progress: 1.0 s, 2256.9 tps, lat 3.865 ms stddev 2.628, 0 failed`.
pub fn parse_progress(line: &str) -> Option<Row> {
    let rest = line.strip_prefix("progress: ")?;
    let mut parts = rest.split(',').map(str::trim);
    let t_s = parts.next()?.strip_suffix(" s")?.parse().ok()?;
    let tps = parts.next()?.strip_suffix(" tps")?.parse().ok()?;
    let lat = parts.next()?.strip_prefix("lat ")?;
    let (lat, std) = lat.split_once(" ms stddev ")?;
    let failed = parts
        .next()
        .and_then(|f| f.strip_suffix(" failed"))
        .and_then(|f| f.parse().ok())
        .unwrap_or(0);
    Some(Row {
        t_s,
        tps,
        latency_ms: lat.parse().ok()?,
        latency_stddev_ms: std.trim_end_matches(" ms").parse().ok()?,
        failed,
    })
}

impl Pgbench {
    /// Finds pgbench (a usage error if it is missing).
    /// pgbench's client count.
    pub fn clients(&self) -> u32 {
        self.cfg.clients
    }

    pub fn find(cfg: &Config) -> Result<Pgbench> {
        Ok(Pgbench {
            bin: binaries::pgbench()?,
            pg: cfg.postgres.clone(),
            cfg: cfg.pgbench.clone(),
        })
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(["-h", &self.pg.host, "-p", &self.pg.port.to_string()])
            .args(["-U", &self.pg.user, "-d", &self.pg.database])
            // The password goes through the environment, never the command line.
            .env("PGPASSWORD", &self.pg.password)
            .env("PGAPPNAME", "qbench-pgbench")
            // The same TLS as qbench's own sessions, so both pay for it alike; libpq
            // settings qbench does not have would make pgbench's sessions differ.
            .env("PGSSLMODE", self.pg.sslmode.name())
            .env("PGGSSENCMODE", "disable")
            .stdin(Stdio::null());
        for var in [
            "PGSERVICE",
            "PGSSLNEGOTIATION",
            "PGCHANNELBINDING",
            "PGREQUIREAUTH",
            "PGSSLCRL",
            "PGSSLMINPROTOCOLVERSION",
            "PGSSLMAXPROTOCOLVERSION",
        ] {
            c.env_remove(var);
        }
        for (var, v) in [
            ("PGSSLROOTCERT", &self.pg.sslrootcert),
            ("PGSSLCERT", &self.pg.sslcert),
            ("PGSSLKEY", &self.pg.sslkey),
        ] {
            if v.is_empty() {
                c.env_remove(var);
            } else {
                c.env(var, v);
            }
        }
        c
    }

    /// `pgbench -i -s scale`, unless the tables already hold that scale.
    pub async fn ensure_initialized(&self) -> Result<bool> {
        let client = pg::connect(&self.pg).await?;
        let have = client
            .query_opt(
                "SELECT count(*) FROM pgbench_branches WHERE to_regclass('pgbench_accounts') IS NOT NULL",
                &[],
            )
            .await
            .ok()
            .flatten()
            .and_then(|r| r.try_get::<_, i64>(0).ok());
        if have == Some(i64::from(self.cfg.scale)) {
            return Ok(false);
        }
        let mut c = self.command();
        c.args(["-i", "-q", "-s", &self.cfg.scale.to_string()]);
        let out = tokio::task::spawn_blocking(move || c.output())
            .await?
            .context("running pgbench -i")?;
        if !out.status.success() {
            bail!(
                "pgbench -i failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(true)
    }

    /// Starts pgbench in the background, writing its per-second progress as CSV.
    pub async fn start<W: Write + Send + 'static>(&self, csv_out: W) -> Result<Running> {
        let mut c = self.command();
        c.args(["-n", "-P", "1", "-T", "86400"])
            .args(["-c", &self.cfg.clients.to_string()])
            .args(["-j", &self.cfg.threads.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = process::spawn_tied(c, Signal::SIGTERM).context("starting pgbench")?;
        let started = Instant::now();
        let stderr = child
            .stderr
            .take()
            .context("pgbench's stderr was not captured")?;
        let (rows_tx, rows_rx) = tokio::sync::watch::channel(0usize);
        let reader = std::thread::Builder::new()
            .name("qbench-pgbench-reader".into())
            .spawn(move || read_progress(stderr, csv_out, rows_tx))?;
        let mut running = Running {
            pid: child.id(),
            child,
            reader: Some(reader),
            started,
            cfg: self.cfg.clone(),
            rows: rows_rx,
        };
        // Wait for its first progress line: then it is connected and running.
        match tokio::time::timeout(Duration::from_secs(15), running.lines(1)).await {
            Ok(true) => Ok(running),
            _ => {
                let (_, tail) = running.finish().await;
                bail!("pgbench did not start: {}", tail.trim())
            }
        }
    }
}

struct ReaderOutput {
    rows: Vec<Row>,
    other: Vec<String>,
}

fn read_progress<R: std::io::Read, W: Write>(
    from: R,
    out: W,
    seen: tokio::sync::watch::Sender<usize>,
) -> Result<ReaderOutput> {
    let mut csv = csv::Writer::from_writer(out);
    let mut rows = vec![];
    let mut other = vec![];
    for line in BufReader::new(from).lines() {
        let Ok(line) = line else { break };
        match parse_progress(&line) {
            Some(row) => {
                csv.serialize(&row)?;
                csv.flush()?;
                rows.push(row);
                seen.send_replace(rows.len());
            }
            None => {
                other.push(line);
                if other.len() > 20 {
                    other.remove(0);
                }
            }
        }
    }
    csv.flush()?;
    Ok(ReaderOutput { rows, other })
}

pub struct Running {
    pid: u32,
    child: Child,
    reader: Option<std::thread::JoinHandle<Result<ReaderOutput>>>,
    pub started: Instant,
    cfg: PgbenchCfg,
    /// Progress lines read so far.
    rows: tokio::sync::watch::Receiver<usize>,
}

impl Running {
    /// Waits until pgbench has printed `n` progress lines; false if its output ended first.
    pub async fn lines(&mut self, n: usize) -> bool {
        self.rows.wait_for(|&seen| seen >= n).await.is_ok()
    }

    async fn finish(&mut self) -> (Vec<Row>, String) {
        process::stop(
            self.pid,
            Some(&mut self.child),
            Signal::SIGINT,
            Duration::from_secs(10),
        )
        .await;
        let out = match self.reader.take() {
            Some(r) => tokio::task::spawn_blocking(move || r.join()).await,
            None => return (vec![], String::new()),
        };
        match out {
            Ok(Ok(Ok(o))) => (o.rows, o.other.join(" | ")),
            _ => (vec![], "pgbench's output could not be read".into()),
        }
    }

    /// Stops pgbench and summarises what it measured.
    pub async fn stop(mut self) -> Stats {
        let (rows, _) = self.finish().await;
        summarize(&rows, &self.cfg)
    }

    /// Waits (bounded at 15 s) for the progress lines that cover `window_s`, then stops
    /// pgbench and summarises those lines only. Counted, not timed: a loaded machine
    /// prints a line late ("progress: 2.3 s") or skips one, and a window cut by the
    /// lines' own timestamps once kept none. Ctrl-C ends the wait at once.
    pub async fn stop_after_window(mut self, window_s: f64, shutdown: &Shutdown) -> Stats {
        let n = lines_for(window_s);
        tokio::select! {
            _ = tokio::time::timeout(Duration::from_secs(15), self.lines(n)) => {}
            _ = shutdown.cancelled() => {}
        }
        let (mut rows, _) = self.finish().await;
        rows.truncate(n);
        summarize(&rows, &self.cfg)
    }
}

/// Progress lines that cover a window of `window_s`: pgbench's first line, which the
/// summary skips as the ramp, and one per second after it.
fn lines_for(window_s: f64) -> usize {
    1 + window_s.ceil().max(1.0) as usize
}

pub fn summarize(rows: &[Row], cfg: &PgbenchCfg) -> Stats {
    let steady: Vec<&Row> = rows.iter().skip(1).collect();
    let mean = |f: fn(&Row) -> f64| {
        (!steady.is_empty()).then(|| steady.iter().map(|r| f(r)).sum::<f64>() / steady.len() as f64)
    };
    Stats {
        seconds: rows.len(),
        tps_mean: mean(|r| r.tps),
        latency_ms_mean: mean(|r| r.latency_ms),
        failed: rows.iter().map(|r| r.failed).sum(),
        clients: cfg.clients,
        threads: cfg.threads,
        scale: cfg.scale,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_progress_lines() {
        let r = parse_progress("progress: 1.0 s, 2256.9 tps, lat 3.865 ms stddev 2.628, 0 failed")
            .expect("parses");
        assert_eq!(r.t_s, 1.0);
        assert_eq!(r.tps, 2256.9);
        assert_eq!(r.latency_ms, 3.865);
        assert_eq!(r.latency_stddev_ms, 2.628);
        // Before PostgreSQL 15 there is no "failed" column.
        let r = parse_progress("progress: 2.0 s, 10.0 tps, lat 1.000 ms stddev 0.100")
            .expect("older format");
        assert_eq!(r.failed, 0);
        assert!(parse_progress("starting vacuum...end.").is_none());
        assert!(parse_progress("progress: garbage").is_none());
    }

    #[test]
    fn summary_leaves_out_the_first_second() {
        let row = |t, tps| Row {
            t_s: t,
            tps,
            latency_ms: 1.0,
            latency_stddev_ms: 0.0,
            failed: 0,
        };
        let s = summarize(
            &[row(1.0, 10.0), row(2.0, 100.0), row(3.0, 200.0)],
            &PgbenchCfg::default(),
        );
        assert_eq!(s.tps_mean, Some(150.0));
        assert_eq!(s.seconds, 3);
        assert_eq!(summarize(&[], &PgbenchCfg::default()).tps_mean, None);
    }
}
