//! `qbench sweep`: each design's MST@SLO and burn-down, or (with a --workers list) its
//! burn-down per worker count and the USL fit. Files go to DIR/sweep/.

use anyhow::Result;

use super::ending::Show;
use crate::capacity::{self, burndown, SweepOptions};
use crate::cli::{GlobalArgs, SweepArgs};
use crate::config::Config;
use crate::error::usage;
use crate::format::files::ensure_writable;
use crate::queue::QueueKind;
use crate::session::Session;

/// A sweep whose flags were checked.
pub struct Plan {
    kinds: Vec<QueueKind>,
    opts: SweepOptions,
    burndown: Option<burndown::Size>,
    args: SweepArgs,
}

/// Every check of `sweep`'s flags that needs no server: run before `--local` starts any.
pub fn check(args: SweepArgs, cfg: &Config, global: &GlobalArgs) -> Result<Plan> {
    let kinds = QueueKind::parse_list(&args.queue)?;
    cfg.benchmark.wakeup.single()?;
    super::fixed_rate(cfg)?;
    super::reachable(cfg, global)?;
    let opts = super::options::sweep(&args.capacity, args.quick, &args.out.join("sweep"))?;
    if cfg.benchmark.num_workers.is_list() && args.capacity.burndown == Some(0) {
        return Err(usage(
            "--burndown 0 with a --workers list: worker scaling is measured by burn-down",
        ));
    }
    for (key, flag) in [
        ("production_rate", "--rate"),
        ("production_duration", "--duration"),
    ] {
        if cfg.benchmark_set.contains(key) {
            eprintln!("qbench: warning: {flag} is not used by sweep: the search picks each step's rate, and --step-duration its length");
        }
    }
    Ok(Plan {
        kinds,
        opts,
        burndown: match args.capacity.burndown {
            Some(0) => None,
            Some(n) => Some(burndown::Size::Jobs(n)),
            None => Some(burndown::Size::default_for(args.quick)),
        },
        args,
    })
}

pub async fn run(s: &Session, p: Plan) -> Result<()> {
    ensure_writable(&p.opts.dir, "--out")?;
    // No simulated work unless the user set some: the queue, not a sleep, bounds it.
    let cfg = capacity::capacity_config(&s.cfg);
    let workers = cfg.benchmark.num_workers.clone();
    let result = if workers.is_list() {
        // No sweep runs first, so the fewest workers' own ceiling (if the work is
        // simulated) sizes the burn-downs; without one, the fallback number of jobs.
        let fewest = workers.counts().iter().copied().min().unwrap_or(1);
        let nominal = cfg
            .benchmark
            .capacity_jobs_s()
            .map(|c| c * f64::from(fewest) / f64::from(cfg.benchmark.num_workers.get().max(1)));
        let n = p.burndown.map_or(0, |b| b.jobs(nominal));
        let mut r = Ok(());
        for &kind in &p.kinds {
            r = burndown::scaling(s, kind, &cfg, workers.counts(), n, &p.opts.dir)
                .await
                .map(|_| ());
            if r.is_err() {
                break;
            }
        }
        r
    } else {
        capacity::sweep_all(s, &p.kinds, &cfg, &p.opts, p.burndown).await
    };
    // What was measured is analyzed and drawn even when a later design failed.
    super::ending::report(s, &p.args.out, &p.args.end, Show::Tables);
    result
}
