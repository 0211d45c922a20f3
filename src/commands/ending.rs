//! How every command that writes results ends: it analyzes what it wrote, draws the
//! charts and writes report.html beside it (`--no-report` skips this). The command's own
//! result stands whatever happens here: a failure is a warning, never its exit code.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::cli::EndArgs;
use crate::format::layout::{result_folders, ANALYSIS_DIR, GRAPHS_DIR, REPORT_FILE};
use crate::session::Session;

/// What the ending wrote.
pub struct Written {
    pub summary: PathBuf,
    pub graphs: PathBuf,
    pub report: PathBuf,
    pub tests: usize,
}

/// What the ending prints: the analysis's tables and where everything went (stdout), or
/// only where everything went, on stdout, or on stderr (when stdout carries `--json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Show {
    Tables,
    Paths,
    PathsOnStderr,
}

/// Analyze, graph and report of the results under `out`. Nothing after Ctrl-C or with
/// `--no-report`.
pub fn report(s: &Session, out: &Path, end: &EndArgs, show: Show) {
    if end.no_report || s.shutdown.is_triggered() {
        return;
    }
    match write(out, show == Show::Tables) {
        Ok(Some(w)) => {
            let lines = [
                format!("\nResults: {} ({} tests)", out.display(), w.tests),
                format!("Report:  {}", w.report.display()),
                format!("Summary: {}", w.summary.display()),
                format!("Charts:  {}/*.png (300 DPI) and *.svg", w.graphs.display()),
            ];
            for l in lines {
                match show {
                    Show::PathsOnStderr => eprintln!("{l}"),
                    _ => println!("{l}"),
                }
            }
        }
        Ok(None) => {}
        Err(e) => eprintln!(
            "qbench: warning: the results are written, but analyzing them failed: {}",
            crate::error::one_line(&e, &[])
        ),
    }
}

/// Analyzes every results folder under `out` into `out/analysis`, draws into
/// `out/graphs` and writes `out/report.html`; `None` when `out` holds no results.
pub fn write(out: &Path, tables: bool) -> Result<Option<Written>> {
    let folders = result_folders(out);
    if folders.is_empty() {
        return Ok(None);
    }
    let analysis = crate::analyze::analyze(&folders)?;
    let analysis_dir = out.join(ANALYSIS_DIR);
    let graphs = out.join(GRAPHS_DIR);
    let (summary, json) = crate::analyze::write(&analysis, &analysis_dir)?;
    if tables {
        println!();
        print!("{}", crate::analyze::report::render(&analysis));
    }
    let drawn = crate::graph::draw_folder(&summary, &graphs, None, true)?;
    for f in &drawn.failed {
        eprintln!("qbench: warning: no timeline: {f}");
    }
    let report = crate::html_report::write(&json, &graphs, &out.join(REPORT_FILE))?;
    Ok(Some(Written {
        summary,
        graphs,
        report,
        tests: analysis.tests.len(),
    }))
}
