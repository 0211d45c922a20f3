//! `qbench graph`: every chart the analysis folder has data for, from summary.csv and
//! the CSVs beside it.

use anyhow::Result;

use crate::cli::GraphArgs;

pub fn run(args: &GraphArgs) -> Result<()> {
    let drawn = crate::graph::draw_folder(
        &args.input,
        &args.output,
        args.tier.as_deref(),
        args.timelines,
    )?;
    for m in &drawn.missing {
        eprintln!("qbench: note: {m}");
    }
    println!(
        "Wrote {} charts (PNG at {} DPI and SVG) to {}:",
        drawn.files.len() / 2,
        crate::graph::DPI,
        args.output.display()
    );
    for f in &drawn.files {
        println!("  {}", f.display());
    }
    // A test whose per-second files are missing or cut: one line each, exit code 2,
    // after every other chart is drawn.
    let mut failed = drawn.failed;
    match failed.pop() {
        None => Ok(()),
        Some(last) => {
            for f in failed {
                eprintln!("qbench: error: no timeline: {f}");
            }
            Err(crate::error::usage(format!("no timeline: {last}")))
        }
    }
}
