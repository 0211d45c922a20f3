//! `qbench graph`: the six charts from summary.csv.

use anyhow::Result;

use crate::cli::GraphArgs;
use crate::graph::{self, Data};

pub fn run(args: &GraphArgs) -> Result<()> {
    let capacity = graph::capacity::CapacityData::beside(&args.input)?;
    let timelines = graph::horizon::Timelines::beside(&args.input)?;
    // analyze writes an empty summary.csv when its folders held sweeps only.
    let sweeps_only =
        !capacity.is_empty() && std::fs::metadata(&args.input).is_ok_and(|m| m.len() == 0);
    let rows = if sweeps_only {
        vec![]
    } else {
        graph::read_summary(&args.input)?
    };
    let all_rows = if args.timelines { rows.clone() } else { vec![] };
    // A folder of sweeps alone has no seed charts to draw, only the capacity ones.
    let data = match Data::from_rows(rows, args.tier.as_deref()) {
        Ok(d) => Some(d),
        Err(_) if !capacity.is_empty() || !timelines.0.is_empty() => None,
        Err(e) => return Err(e.into()),
    };
    let mut files = match &data {
        Some(d) => graph::draw_all(d, &args.output)?,
        None => vec![],
    };
    crate::format::files::ensure_writable(&args.output, "--output")?;
    files.extend(graph::capacity::draw(&capacity, &args.output)?);
    files.extend(graph::horizon::draw(&timelines, &args.output)?);
    let tests = graph::timeline::draw_all(&all_rows, &args.output)?;
    files.extend(tests.files);
    for m in data.iter().flat_map(|d| d.missing.iter()) {
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
    // A test whose per-second files are missing or cut: one line each, exit code 2,
    // after every other chart is drawn.
    let mut failed = tests.failed;
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
