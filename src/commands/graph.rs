//! `qbench graph`: the six charts from summary.csv.

use anyhow::Result;

use crate::cli::GraphArgs;
use crate::graph::{self, Data};

pub fn run(args: &GraphArgs) -> Result<()> {
    let rows = graph::read_summary(&args.input)?;
    let data = Data::from_rows(rows, args.tier.as_deref())?;
    let files = graph::draw_all(&data, &args.output)?;
    for m in &data.missing {
        eprintln!("qbench: note: {m}");
    }
    println!(
        "Wrote {} charts (PNG at {} DPI and SVG) to {}:",
        files.len() / 2,
        graph::DPI,
        args.output.display()
    );
    for f in files {
        println!("  {}", f.display());
    }
    Ok(())
}
