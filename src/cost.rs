//! `qbench cost`: what one design's protocol costs its server per job. One producer
//! enqueues N jobs one call each (as a library's client sends one job), then one worker
//! claims and completes them `dequeue_batch` at a time, nothing else running; the
//! server's own counters are read before and after. The figures compare a model with
//! the library it models, and designs with each other, by what they make the server do,
//! not by how fast this machine is.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::clock::Clock;
use crate::format::cost::CostRow;
use crate::queue::{NewJob, Queue};

/// A claim that finds nothing while jobs are left is retried (after the design's wait
/// for work) for this long before the run is called stuck.
const STUCK: Duration = Duration::from_secs(60);

/// Runs `jobs` jobs through `queue` (set up and emptied first) and returns its row.
pub async fn measure(queue: &Arc<dyn Queue>, jobs: u64, batch: u32) -> Result<CostRow> {
    queue.setup(true).await?;
    let first = queue.allocate(jobs).await?;
    let server = queue.server();
    let info = server.info().await?;
    let tier = info
        .durability
        .map_or("unknown", |d| d.tier().name())
        .to_string();
    let before = server.cost_counters(None).await?;
    run(queue, first, jobs).await?;
    let after = server.cost_counters(Some(&before)).await?;
    let name = match queue.variant().as_str() {
        "" => queue.kind().name().to_string(),
        v => format!("{}+{v}", queue.kind().name()),
    };
    let row = CostRow::new(name, queue.kind().backend().name(), &tier, jobs, batch);
    Ok(row.with(&after.since(&before)))
}

/// Enqueues one job per call, then drains with one worker; every connection is closed
/// when it returns (a backend's statistics are flushed as it exits).
async fn run(queue: &Arc<dyn Queue>, first: i64, jobs: u64) -> Result<()> {
    let clock = Clock::get();
    {
        let mut p = queue.producer().await?;
        for i in 0..jobs {
            let job = NewJob {
                seq: first + i as i64,
                enqueued_at_us: clock.now_us(),
            };
            p.enqueue(&[job], false).await.context("enqueue")?;
        }
    }
    let mut c = queue.consumer(0).await?;
    let (mut done, mut idle_since) = (0u64, None::<Instant>);
    let mut handed = Vec::new();
    while done < jobs {
        let got = c.claim().await.context("claim")?;
        if got.is_empty() {
            let since = *idle_since.get_or_insert_with(Instant::now);
            if since.elapsed() > STUCK {
                bail!(
                    "{done} of {jobs} jobs completed, then claims found nothing for {} s",
                    STUCK.as_secs()
                );
            }
            c.idle().await;
            continue;
        }
        idle_since = None;
        done += got.len() as u64;
        // A design whose completer writes later (River) gets its jobs handed off as its
        // workers do, so that its completions are batched as they would be.
        handed.push(c.hand_off(got).await.context("complete")?);
    }
    for h in handed {
        let refused = h.outcome().await.context("complete")?;
        if !refused.is_empty() {
            bail!("completions refused for seqs {refused:?}: a lease ran out in a run with one worker; raise visibility_timeout_s");
        }
    }
    // The worker stops as a `work` process's do: its consumer gone, then the design told.
    drop(c);
    queue.stopped().await.context("stopping the worker")
}

/// The table `qbench cost` prints.
pub fn table(rows: &[CostRow]) -> String {
    use crate::text::num;
    let mut out = format!(
        "{:<22} {:>8} {:>6} {:>10} {:>8} {:>8} {:>10} {:>8} {:>6} {:>9}\n",
        "design",
        "tier",
        "batch",
        "stmts/job",
        "nested",
        "xacts",
        "log B/job",
        "dead/job",
        "HOT",
        "buf/job"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<22} {:>8} {:>6} {:>10} {:>8} {:>8} {:>10} {:>8} {:>6} {:>9}\n",
            r.design,
            r.durability_tier,
            r.dequeue_batch,
            num(r.statements_per_job, 2),
            num(r.nested_statements_per_job, 2),
            num(r.transactions_per_job, 2),
            num(r.log_bytes_per_job, 0),
            num(r.dead_tuples_per_job, 2),
            num(r.hot_share, 2),
            num(r.buffers_per_job, 1),
        ));
        if !r.note.is_empty() {
            out.push_str(&crate::text::wrap(&format!("note: {}", r.note), 88, "  "));
            out.push('\n');
        }
    }
    out
}
