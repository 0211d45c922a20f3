//! `qbench cost --driver`: the same server-side counters as `qbench cost`, read around a
//! real library's run instead of a model's, so that a model's fidelity is measured on one
//! server, in one run. The driver is a command of the library's own runtime
//! (bench/libraries/): `CMD setup` installs the library's schema (not measured), then
//! `CMD run N` adds N jobs one call each and works them with one worker, as `qbench cost`
//! does with a design.

use std::process::Stdio;

use anyhow::{bail, Context, Result};
use tokio::process::Command;

use crate::config::Config;
use crate::format::cost::CostRow;
use crate::format::durability::Tier;
use crate::shutdown::Shutdown;

/// A library's driver, as the command line names it.
pub struct Driver<'a> {
    pub command: &'a str,
    /// The row's name in the table (`graphile-worker 0.17.3`).
    pub name: &'a str,
    /// A regular expression naming the library's tables (dead tuples, HOT).
    pub tables: &'a str,
}

/// Runs the driver's setup, then its run between two readings of the counters.
pub async fn measure(cfg: &Config, d: &Driver<'_>, jobs: u64, stop: &Shutdown) -> Result<CostRow> {
    let pg = &cfg.postgres;
    let schema = {
        let c = crate::queue::pg::connect(pg).await?;
        // The server's own regular expressions judge the tables' pattern.
        if let Err(e) = c.query_one("SELECT '' ~ $1", &[&d.tables]).await {
            let why = e
                .as_db_error()
                .map_or_else(|| e.to_string(), |d| d.message().to_string());
            return Err(crate::error::usage(format!(
                "--driver-tables {:?} is not a regular expression: {why}",
                d.tables
            )));
        }
        let r = c.query_one("SELECT current_schema()::text", &[]).await?;
        r.try_get::<_, String>(0)?
    };
    let tier = cfg.benchmark.durability.postgres();
    run(cfg, d, &schema, &["setup"], stop).await?;
    let before = crate::queue::pg::cost::read(pg, d.tables, None).await?;
    run(cfg, d, &schema, &["run", &jobs.to_string()], stop).await?;
    let after = crate::queue::pg::cost::read(pg, d.tables, Some(&before)).await?;
    let mut row = CostRow::new(d.name.to_string(), "postgresql", tier.name(), jobs, 1);
    row = row.with(&after.since(&before));
    row.note = [
        row.note,
        format!("the real library, run by `{}`", d.command),
    ]
    .into_iter()
    .filter(|n| !n.is_empty())
    .collect::<Vec<_>>()
    .join("; ");
    Ok(row)
}

/// `sh -c "CMD ARGS"` in a process group of its own, with the server in its environment
/// (the password never on a command line); killed with its group if qbench is stopped.
async fn run(
    cfg: &Config,
    d: &Driver<'_>,
    schema: &str,
    args: &[&str],
    stop: &Shutdown,
) -> Result<()> {
    let pg = &cfg.postgres;
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(format!("{} {}", d.command, args.join(" ")))
        .env("PGHOST", &pg.host)
        .env("PGPORT", pg.port.to_string())
        .env("PGUSER", &pg.user)
        .env("PGPASSWORD", &pg.password)
        .env("PGDATABASE", &pg.database)
        .env("QBENCH_SCHEMA", schema)
        .env(
            "QBENCH_PAYLOAD_BYTES",
            cfg.benchmark.job_size_bytes.to_string(),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    // `prefer` is libpq's default, and node-postgres reads any mode it is given as "use TLS".
    match crate::queue::pg::tls::effective_mode(pg) {
        crate::config::SslMode::Prefer => c.env_remove("PGSSLMODE"),
        m => c.env("PGSSLMODE", m.name()),
    };
    // The tier's commit setting, as qbench's own sessions get it.
    c.env(
        "PGOPTIONS",
        match cfg.benchmark.durability.postgres() {
            Tier::Strict => "-c synchronous_commit=on",
            _ => "-c synchronous_commit=off",
        },
    );
    let mut child = c
        .spawn()
        .with_context(|| format!("starting the driver `{}`", d.command))?;
    let pid = child.id();
    let status = tokio::select! {
        s = child.wait() => s.context("waiting for the driver")?,
        () = stop.cancelled() => {
            if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            return Err(crate::error::Interrupted.into());
        }
    };
    if !status.success() {
        bail!(
            "the driver `{} {}` failed ({status}): see its output above",
            d.command,
            args.join(" ")
        );
    }
    Ok(())
}
