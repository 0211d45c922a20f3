//! `qbench horizon`: the horizon scenario for the designs named, through the suite (the
//! same tests `run-suite --scenarios horizon` runs, into the same folders), then the
//! ending every command shares.

use anyhow::Result;

use super::ending::Show;
use crate::cli::{GlobalArgs, HorizonCmdArgs};
use crate::config::Config;
use crate::queue::QueueKind;
use crate::session::Session;
use crate::suite::{self, Outcome, Scenario, SuiteOptions};

/// A horizon run whose flags were checked: the suite of horizon tests it is.
pub struct Plan {
    backends: Vec<crate::queue::Backend>,
    tests: Vec<suite::Planned>,
    opts: crate::horizon::HorizonOptions,
    args: HorizonCmdArgs,
}

/// `qbench horizon`'s options, checked before any server starts. `--duration` on the
/// command line is the whole run: the recovery is what it leaves.
pub fn check(args: HorizonCmdArgs, cfg: &Config, global: &GlobalArgs) -> Result<Plan> {
    super::servers((), cfg, global)?;
    let kinds = QueueKind::parse_list(&args.queue)?;
    cfg.benchmark.wakeup.single()?;
    let opts = super::options::horizon(
        &args.horizon,
        args.quick,
        args.slo_p99_ms,
        global.benchmark.production_duration,
        super::options::flag_rate(global),
    )?;
    let mut backends = vec![];
    for k in &kinds {
        if !backends.contains(&k.backend()) {
            backends.push(k.backend());
        }
    }
    let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
    let names = names.join(",");
    let matrix = suite::plan::Matrix {
        backends: &backends,
        queues: Some(&names),
        scenarios: &[Scenario::Horizon],
        wakeups: &cfg.benchmark.wakeup,
        repeat: 1,
        label: None,
        holder: Some(args.horizon.holder.name()),
    };
    let tests = suite::plan(&matrix, &args.out)?;
    Ok(Plan {
        backends,
        tests,
        opts,
        args,
    })
}

pub async fn run(s: &Session, p: Plan) -> Result<()> {
    let suite = SuiteOptions {
        cfg: s.cfg.clone(),
        backends: p.backends,
        tests: p.tests,
        out: p.args.out.clone(),
        quick: p.args.quick,
        force: p.args.force,
        horizon: Some(p.opts),
    };
    let outcomes = suite::run(s, &suite).await?;
    super::ending::report(s, &p.args.out, &p.args.end, Show::Tables);
    let failed: Vec<String> = outcomes
        .iter()
        .filter_map(|(t, o)| match o {
            Outcome::Failed(e) => Some(format!("{}: {e}", t.name)),
            _ => None,
        })
        .collect();
    if !failed.is_empty() {
        return Err(anyhow::anyhow!(
            "horizon test(s) failed: {}",
            failed.join("; ")
        ));
    }
    Ok(())
}
