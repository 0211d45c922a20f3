//! `qbench report`: report.html from analyze's summary.json and graph's SVGs.

use anyhow::Result;

use crate::cli::ReportArgs;

pub fn run(args: &ReportArgs) -> Result<()> {
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| args.dir.join("report.html"));
    let page = crate::html_report::write(
        &args.dir.join("analysis/summary.json"),
        &args.dir.join("graphs"),
        &output,
    )?;
    println!("Wrote {}", page.display());
    Ok(())
}
