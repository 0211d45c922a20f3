//! `qbench cost`: each design's server-side cost per job (see [`crate::cost`]), as a
//! table and cost.csv.

use anyhow::Result;

use crate::cli::{CostArgs, GlobalArgs};
use crate::config::Config;
use crate::error::usage;
use crate::queue::QueueKind;
use crate::session::Session;

pub fn check(args: CostArgs, cfg: &Config, global: &GlobalArgs) -> Result<CostArgs> {
    QueueKind::parse_list(&args.queue)?;
    if args.jobs == 0 {
        return Err(usage("--jobs 0 measures nothing: give at least 1"));
    }
    if global.valkey_cluster.is_some() {
        return Err(usage(
            "cost reads one Valkey server's counters: run it without --valkey-cluster",
        ));
    }
    cfg.benchmark.wakeup.single()?;
    super::servers(args, cfg, global)
}

pub async fn run(s: &Session, args: &CostArgs) -> Result<()> {
    crate::format::files::ensure_writable(&args.out, "--out")?;
    let mut rows = vec![];
    for kind in QueueKind::parse_list(&args.queue)? {
        if s.shutdown.is_triggered() {
            return Err(crate::error::Interrupted.into());
        }
        s.note(&format!("qbench: cost of {kind}: {} jobs", args.jobs));
        let queue = kind.open(&s.cfg).await?;
        queue.setup(true).await?;
        let tier_gap = crate::workload::tier::check(
            &queue,
            s.cfg.benchmark.durability,
            s.choices.accept_durability_mismatch,
        )
        .await?;
        // Nothing is written until every design is measured: an interrupted run leaves
        // no cost.csv, and its sessions close as the future is dropped.
        let measured = tokio::select! {
            r = crate::cost::measure(&queue, args.jobs, s.cfg.benchmark.dequeue_batch) => r?,
            () = s.shutdown.cancelled() => return Err(crate::error::Interrupted.into()),
        };
        let mut row = measured;
        if let Some(w) = tier_gap {
            row.note = [row.note, w]
                .into_iter()
                .filter(|n| !n.is_empty())
                .collect::<Vec<_>>()
                .join("; ");
        }
        rows.push(row);
    }
    if let Some(row) = driver(s, args).await? {
        rows.push(row);
    }
    print!("{}", crate::cost::table(&rows));
    let path = args.out.join("cost.csv");
    crate::format::cost::write(&path, &rows)?;
    s.note(&format!("qbench: wrote {}", path.display()));
    Ok(())
}

/// The real library's row, when `--driver` names one.
async fn driver(s: &Session, args: &CostArgs) -> Result<Option<crate::format::cost::CostRow>> {
    let (Some(command), Some(name), Some(tables)) =
        (&args.driver, &args.driver_name, &args.driver_tables)
    else {
        return Ok(None);
    };
    s.note(&format!(
        "qbench: cost of {name} (its driver): {} jobs",
        args.jobs
    ));
    let d = crate::cost_driver::Driver {
        command,
        name,
        tables,
    };
    Ok(Some(
        crate::cost_driver::measure(&s.cfg, &d, args.jobs, &s.shutdown).await?,
    ))
}
