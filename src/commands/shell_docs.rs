//! `qbench completions SHELL` and `qbench man`: generated from the same clap
//! definitions as the parser, so they cannot drift from the flags.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs, ManArgs};

pub fn completions(args: &CompletionsArgs) -> Result<()> {
    let mut cmd = Cli::command();
    // Into memory first: clap_complete panics on a failed write (a closed pipe).
    let mut script = vec![];
    clap_complete::generate(args.shell, &mut cmd, "qbench", &mut script);
    let mut out = std::io::stdout().lock();
    out.write_all(&script)
        .and_then(|()| out.flush())
        .context("writing the completion script")
}

/// The top-level page to stdout, or one page per command into `--out DIR`.
pub fn man(args: &ManArgs) -> Result<()> {
    let cmd = Cli::command();
    let Some(dir) = &args.out else {
        let mut page = vec![];
        clap_mangen::Man::new(cmd).render(&mut page)?;
        std::io::stdout()
            .lock()
            .write_all(&page)
            .context("writing the man page")?;
        return Ok(());
    };
    crate::format::files::ensure_writable(dir, "--out")?;
    let mut written = vec![page(clap_mangen::Man::new(cmd.clone()), "qbench", dir)?];
    for sub in cmd.get_subcommands() {
        let name = format!("qbench-{}", sub.get_name());
        let man = clap_mangen::Man::new(sub.clone()).title(name.clone());
        written.push(page(man, &name, dir)?);
    }
    for w in written {
        println!("{}", w.display());
    }
    Ok(())
}

fn page(man: clap_mangen::Man, name: &str, dir: &Path) -> Result<std::path::PathBuf> {
    let mut bytes = vec![];
    man.render(&mut bytes)?;
    let path = dir.join(format!("{name}.1"));
    crate::format::files::write_atomic(&path, &bytes)?;
    Ok(path)
}
