//! `qbench config`: the effective config as TOML, passwords masked.

use anyhow::Result;

use crate::config::Source;
use crate::session::Session;

pub fn run(s: &Session) -> Result<()> {
    let from = match &s.source {
        Source::Defaults => "built-in defaults (no qbench.toml found)".to_string(),
        Source::File(p) => format!("{} over built-in defaults", p.display()),
    };
    println!("# Effective qbench config: {from}, then the environment, then flags.");
    println!("# Passwords are shown as ***.");
    print!("{}", s.cfg.to_toml_masked());
    let b = &s.cfg.benchmark;
    if let Some(w) = b.rate_jobs_s().and_then(|r| b.capacity_warning(r)) {
        eprintln!("qbench: warning: {w}");
    }
    Ok(())
}
