//! `qbench crash-test`: crash trials of each design in the tier `--durability` names, on
//! the `--local` servers (started in that tier), with a table of what each crash lost.

use anyhow::Result;

use crate::cli::CrashTestArgs;
use crate::error::{usage, AuditFailed};
use crate::queue::QueueKind;
use crate::suite::crash::{self, Target};
use crate::Ctx;

pub async fn run(ctx: &mut Ctx, args: &CrashTestArgs) -> Result<()> {
    let kinds = QueueKind::parse_list(&args.queue)?;
    if args.trials == 0 {
        return Err(usage("--trials 0 runs nothing: give at least 1"));
    }
    crate::format::files::ensure_writable(&args.out, "--out")?;
    ctx.cfg.benchmark.wakeup.single()?;
    let targets = kinds
        .into_iter()
        .map(|kind| Target {
            kind,
            cfg: ctx.cfg.clone(),
            dir: args.out.clone(),
        })
        .collect();
    let files = crash::run_all(ctx, targets, args.trials).await?;
    print!("{}", crate::analyze::report::crash_table(&files));
    match crash::strict_broken(&files) {
        Some(b) => Err(AuditFailed(b).into()),
        None => Ok(()),
    }
}
