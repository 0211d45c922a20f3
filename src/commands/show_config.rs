//! `qbench config`: the effective config as TOML, passwords masked.

use anyhow::Result;

use crate::config::Source;
use crate::Ctx;

pub fn run(ctx: &Ctx) -> Result<()> {
    let from = match &ctx.source {
        Source::Defaults => "built-in defaults (no qbench.toml found)".to_string(),
        Source::File(p) => format!("{} over built-in defaults", p.display()),
    };
    println!("# Effective qbench config: {from}, then the environment, then flags.");
    println!("# Passwords are shown as ***.");
    print!("{}", ctx.cfg.to_toml_masked());
    if let Some(w) = ctx
        .cfg
        .benchmark
        .capacity_warning(ctx.cfg.benchmark.production_rate)
    {
        eprintln!("qbench: warning: {w}");
    }
    Ok(())
}
