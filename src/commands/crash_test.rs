//! `qbench crash-test`: crash trials of each design in the tier `--durability` names, on
//! the `--local` servers (started in that tier), with a table of what each crash lost.

use anyhow::Result;

use super::ending::Show;
use crate::cli::{CrashTestArgs, GlobalArgs};
use crate::config::Config;
use crate::error::{usage, AuditFailed};
use crate::queue::QueueKind;
use crate::session::Session;
use crate::suite::crash::{self, Target};

pub fn check(args: CrashTestArgs, cfg: &Config, global: &GlobalArgs) -> Result<CrashTestArgs> {
    super::crashes_allowed(global)?;
    QueueKind::parse_list(&args.queue)?;
    if args.trials == 0 {
        return Err(usage("--trials 0 runs nothing: give at least 1"));
    }
    cfg.benchmark.wakeup.single()?;
    super::servers(args, cfg, global)
}

pub async fn run(s: &Session, args: &CrashTestArgs) -> Result<()> {
    let kinds = QueueKind::parse_list(&args.queue)?;
    crate::format::files::ensure_writable(&args.out, "--out")?;
    let targets = kinds
        .into_iter()
        .map(|kind| Target {
            kind,
            cfg: s.cfg.clone(),
            dir: args.out.clone(),
        })
        .collect();
    let files = crash::run_all(s, targets, args.trials).await?;
    print!("{}", crate::analyze::report::crash_table(&files));
    super::ending::report(s, &args.out, &args.end, Show::Paths);
    match crash::strict_broken(&files) {
        Some(b) => Err(AuditFailed(b).into()),
        None => Ok(()),
    }
}
