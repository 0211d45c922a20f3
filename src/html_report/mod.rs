//! `report.html`: the analysis as one self-contained page a person opens in a browser.
//! Charts are inlined as SVG; no network access, no JavaScript; printable to PDF. Reads
//! files only (summary.json, the charts' SVGs) and writes the page whole or not at all.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::format::summary::{Analysis, Row};
use crate::graph::charts::{Chart, Draw, CHARTS};

mod verdict;

const STYLE: &str = "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}\
h1{font-size:1.6em}h2{border-bottom:2px solid #ccc;padding-bottom:.2em;margin-top:2em}\
table{border-collapse:collapse;font-size:.85em;margin:.5em 0 1.5em}th,td{border:1px solid #ccc;padding:.25em .5em;text-align:right}\
th:first-child,td:first-child,td.l{text-align:left}tr.flag td{background:#fde8e8}tr.median td{font-weight:bold;background:#eef4fb}\
.banner{border:3px solid #b00;background:#fde8e8;padding:.6em 1em;font-weight:bold}\
.q{font-weight:bold;margin-top:1em}.c{padding:0 .4em;border-radius:3px;font-size:.85em}.clear{background:#d4edda}.likely{background:#fff3cd}.within-noise{background:#e2e3e5}.not-measured{background:#f8d7da}\
li.out{list-style:none;color:#777}.method{font-size:.85em;color:#555}figure{margin:1.5em 0}figure svg{width:100%;height:auto}\
@media print{figure,table{page-break-inside:avoid}body{max-width:none}}";

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn num(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |x| format!("{x:.digits$}"))
}

/// "median [low–high]" for a figure with an interval, else the value alone.
fn with_ci(v: Option<f64>, lo: Option<f64>, hi: Option<f64>, n: Option<usize>) -> String {
    match (lo, hi, n) {
        (Some(l), Some(h), Some(n)) if n > 1 => format!("{} [{l:.2}–{h:.2}]", num(v, 2)),
        _ => num(v, 2),
    }
}

/// Writes `output` from `summary` and the SVGs in `graphs`.
pub fn write(summary: &Path, graphs: &Path, output: &Path) -> Result<PathBuf> {
    let a = crate::format::summary::read_json(summary)?;
    let base = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    crate::format::files::ensure_writable(base, "--output")?;
    let page = render(&a, graphs, base)?;
    crate::format::files::write_atomic(output, page.as_bytes())?;
    Ok(output.to_path_buf())
}

pub fn render(a: &Analysis, graphs: &Path, base: &Path) -> Result<String> {
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>qbench report</title><style>{STYLE}</style></head><body>\n\
         <h1>PostgreSQL table or Valkey Stream? — qbench report</h1>\n<p>Generated {} from {}.</p>\n",
        esc(&a.generated_at),
        esc(&a.inputs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))
    );
    for w in a.warnings.iter().filter(|w| w.starts_with("MISMATCHED")) {
        let _ = writeln!(o, "<p class=\"banner\">{}</p>", esc(w));
    }
    verdict::render(&a.verdict, &mut o);
    answers(a, &mut o);
    tables(a, base, &mut o);
    charts(graphs, &mut o)?;
    spikes(a, &mut o);
    timelines(a, graphs, &mut o)?;
    flags(a, &mut o);
    machines(a, &mut o);
    o.push_str("</body></html>\n");
    Ok(o)
}

fn answers(a: &Analysis, o: &mut String) {
    o.push_str("<h2>Findings</h2>\n");
    for f in &a.findings {
        let _ = writeln!(
            o,
            "<p class=\"q\">{}</p><p>{}</p>",
            esc(&f.question),
            esc(&f.answer)
        );
    }
    if !a.comparisons.is_empty() {
        o.push_str("<h3>Every comparison (ratio of medians, 95 % bootstrap interval, Welch's t-test on the runs' logarithms, Benjamini–Hochberg-adjusted)</h3>\n<table><tr><th>scenario</th><th>tier</th><th>figure</th><th>a / b</th><th>ratio</th><th>95 % CI</th><th>Welch p</th><th>adjusted p</th><th>threshold</th><th>n</th><th>confidence</th></tr>\n");
        for c in &a.comparisons {
            let ci = match (c.ci_low, c.ci_high) {
                (Some(l), Some(h)) => format!("{l:.2}–{h:.2}"),
                _ => "single run: no interval".into(),
            };
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{} / {}</td><td>{:.3}</td><td>{ci}</td><td>{}</td><td>{}</td><td>×{:.2}</td><td>{}/{}</td><td class=\"l\">{}</td></tr>",
                esc(&c.scenario), esc(&c.tier), esc(&c.figure), esc(&c.a), esc(&c.b), c.ratio,
                num(c.welch_p, 3), num(c.p_adjusted, 3), c.threshold.exp(), c.n_a, c.n_b, esc(&c.confidence)
            );
        }
        o.push_str("</table>\n");
    }
    if !a.capacity.is_empty() {
        let _ = writeln!(
            o,
            "<h3>Capacity</h3><pre>{}</pre>",
            esc(&crate::analyze::capacity::table(&a.capacity))
        );
    }
    if !a.horizon.is_empty() {
        let _ = writeln!(
            o,
            "<h3>A transaction held open</h3><pre>{}</pre>",
            esc(&crate::analyze::horizon::table(&a.horizon))
        );
        for r in &a.horizon {
            let _ = writeln!(o, "<p>{}: {}</p>", esc(&r.test), esc(&r.note));
        }
    }
}

/// One table per scenario and tier, a row per test (every repeat), its files linked.
fn tables(a: &Analysis, base: &Path, o: &mut String) {
    let mut keys: Vec<(&str, &str)> = a
        .tests
        .iter()
        .map(|r| (r.scenario.as_str(), r.durability_tier.as_str()))
        .collect();
    keys.sort_by_key(|(s, t)| (crate::analyze::scenario_order(s), *t));
    keys.dedup();
    for (sc, tier) in keys {
        let _ = writeln!(
            o,
            "<h2>Scenario: {}{}</h2>\n<table><tr><th>test</th><th>design</th><th>run</th><th>throughput jobs/s</th><th>p50 ms</th><th>p95 ms</th><th>p99 ms</th><th>p99.9 ms</th><th>server cores</th><th>lost</th><th>dup.</th><th>files</th></tr>",
            esc(sc),
            if tier.is_empty() { String::new() } else { format!(" — durability {}", esc(tier)) }
        );
        let runs: Vec<Row> = a
            .tests
            .iter()
            .filter(|r| r.scenario == sc && r.durability_tier == tier)
            .cloned()
            .collect();
        // A test run more than once: its medians with their intervals, then each run.
        for m in crate::format::summary::pooled(&runs) {
            let of_group: Vec<&Row> = runs.iter().filter(|r| r.group == m.group).collect();
            if of_group.len() > 1 {
                row(&m, true, a, base, o);
            }
            for r in of_group {
                row(r, false, a, base, o);
            }
        }
        o.push_str("</table>\n");
    }
}

/// A test's row; `median`: the group's medians with their 95 % intervals.
fn row(r: &Row, median: bool, a: &Analysis, base: &Path, o: &mut String) {
    let flag = match (median, r.red_flags.is_empty()) {
        (true, _) => " class=\"median\"",
        (false, true) => "",
        (false, false) => " class=\"flag\"",
    };
    let n = if median { r.n_runs } else { None };
    let name = if median {
        format!(
            "{} (median of {} clean runs)",
            r.group,
            r.n_runs.unwrap_or(0)
        )
    } else {
        r.test.clone()
    };
    let _ = writeln!(
        o,
        "<tr{flag}><td>{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"l\">{}</td></tr>",
        esc(&name),
        esc(&r.variant()),
        r.repeat.map_or("-".into(), |k| format!("r{k}")),
        with_ci(r.throughput_jobs_s, r.throughput_ci_low, r.throughput_ci_high, n),
        with_ci(r.p50_ms, r.p50_ci_low, r.p50_ci_high, n),
        num(r.p95_ms, 2),
        with_ci(r.p99_ms, r.p99_ci_low, r.p99_ci_high, n),
        with_ci(r.p999_ms, r.p999_ci_low, r.p999_ci_high, n),
        num(r.server_cores, 2),
        r.lost.map_or("-".into(), |x| x.to_string()),
        r.duplicated.map_or("-".into(), |x| x.to_string()),
        if median {
            String::new()
        } else {
            links(r, a, base)
        }
    );
}

/// The test's files, by a path relative to the page when they sit below it.
fn links(r: &Row, a: &Analysis, base: &Path) -> String {
    let Some(dir) = a
        .inputs
        .iter()
        .find(|d| d.join(format!("{}_manifest.json", r.test)).exists())
    else {
        return "-".into();
    };
    let rel = |p: PathBuf| {
        let abs = |x: &Path| std::fs::canonicalize(x).unwrap_or_else(|_| x.to_path_buf());
        let (p, b) = (abs(&p), abs(base));
        p.strip_prefix(&b).map(Path::to_path_buf).unwrap_or(p)
    };
    [
        "manifest.json",
        "metrics.jsonl",
        "latency.hlog",
        "system.csv",
    ]
    .iter()
    .map(|k| dir.join(format!("{}_{k}", r.test)))
    .filter(|p| p.exists())
    .map(|p| {
        let href = rel(p.clone()).display().to_string();
        let name = p
            .file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned());
        format!(
            "<a href=\"{}\">{}</a>",
            esc(&href),
            esc(name.rsplit('_').next().unwrap_or(&name))
        )
    })
    .collect::<Vec<_>>()
    .join(" ")
}

/// Every latency spike and what lay under it.
fn spikes(a: &Analysis, o: &mut String) {
    if a.spikes.is_empty() {
        return;
    }
    o.push_str("<h2>Latency spikes</h2>\n<table><tr><th>test</th><th>from (s)</th><th>to (s)</th><th>peak p99 (ms)</th><th>over (ms)</th><th>stalled (s)</th><th>cause</th></tr>\n");
    for s in &a.spikes {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{:.0}</td><td>{:.0}</td><td>{:.1}</td><td>{:.1}</td><td>{:.0}</td><td class=\"l\">{}</td></tr>",
            esc(&s.test),
            s.start_s,
            s.end_s,
            s.peak_p99_ms,
            s.threshold_ms,
            s.stalled_s,
            esc(&s.cause)
        );
    }
    o.push_str("</table>\n");
}

/// Each test's page of every per-test chart (`TEST_NAME.svg`, or `FOLDER_TEST_NAME.svg`
/// when two folders hold a test of that name), in name order; another analysis's are
/// not shown.
fn timelines(a: &Analysis, graphs: &Path, o: &mut String) -> Result<()> {
    let mut names: Vec<String> = vec![];
    for chart in per_test_charts() {
        let ours = |n: &str| {
            a.tests.iter().any(|r| {
                let own = format!("{}_{}", r.test, chart.name);
                n == own || n.ends_with(&format!("_{own}"))
            })
        };
        names.extend(
            std::fs::read_dir(graphs)
                .map(|d| {
                    d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                        .filter_map(|n| n.strip_suffix(".svg").map(str::to_string))
                        .filter(|n| !page_charts().any(|c| c.name == n) && ours(n))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default(),
        );
    }
    if names.is_empty() {
        return Ok(());
    }
    names.sort();
    names.dedup();
    o.push_str("<h2>Timelines</h2>\n");
    for name in &names {
        inline(graphs, name, o)?;
    }
    Ok(())
}

/// The registry's charts drawn once per analysis, in the page's order.
fn page_charts() -> impl Iterator<Item = &'static Chart> {
    CHARTS.iter().filter(|c| matches!(c.draw, Draw::Page(_)))
}

fn per_test_charts() -> impl Iterator<Item = &'static Chart> {
    CHARTS.iter().filter(|c| matches!(c.draw, Draw::PerTest(_)))
}

/// Each chart's SVG, inlined in the registry's order, with a viewBox so it scales to
/// the page.
fn charts(graphs: &Path, o: &mut String) -> Result<()> {
    o.push_str("<h2>Charts</h2>\n");
    let mut any = false;
    for chart in page_charts() {
        any |= inline(graphs, chart.name, o)?;
    }
    if !any {
        let _ = writeln!(
            o,
            "<p>No charts found in {} (run <code>qbench graph</code>).</p>",
            esc(&graphs.display().to_string())
        );
    }
    Ok(())
}

/// Inlines chart `name` if its SVG is there; returns whether it was.
fn inline(graphs: &Path, name: &str, o: &mut String) -> Result<bool> {
    let path = graphs.join(format!("{name}.svg"));
    let Ok(svg) = std::fs::read_to_string(&path) else {
        return Ok(false);
    };
    let Some(start) = svg.find("<svg") else {
        return Err(crate::error::usage(format!(
            "{}: not an SVG file; redraw it with `qbench graph`",
            path.display()
        )));
    };
    let mut svg = svg[start..].to_string();
    if !svg[..svg.find('>').unwrap_or(0)].contains("viewBox") {
        let attr = |k: &str| {
            let at = svg.find(&format!("{k}=\""))? + k.len() + 2;
            svg[at..].split('"').next().map(str::to_string)
        };
        if let (Some(w), Some(h)) = (attr("width"), attr("height")) {
            svg = svg.replacen("<svg", &format!("<svg viewBox=\"0 0 {w} {h}\""), 1);
        }
    }
    let _ = writeln!(
        o,
        "<figure id=\"{name}\">{svg}<figcaption>{name}</figcaption></figure>"
    );
    Ok(true)
}

fn flags(a: &Analysis, o: &mut String) {
    o.push_str("<h2>Red flags and caveats</h2>\n<ul>\n");
    for r in a.tests.iter().filter(|r| !r.red_flags.is_empty()) {
        let _ = writeln!(o, "<li><b>{}</b>: {}</li>", esc(&r.test), esc(&r.red_flags));
    }
    for w in a.warnings.iter().filter(|w| !w.starts_with("MISMATCHED")) {
        let _ = writeln!(o, "<li>{}</li>", esc(w));
    }
    for c in &a.caveats {
        let _ = writeln!(o, "<li>{}</li>", esc(c));
    }
    o.push_str("</ul>\n");
    if !a.crash_trials.is_empty() {
        let _ = writeln!(
            o,
            "<h3>Crash trials</h3><pre>{}</pre>",
            esc(&crate::analyze::report::crash_table(&a.crash_trials))
        );
    }
}

fn machines(a: &Analysis, o: &mut String) {
    o.push_str("<h2>Machines and settings</h2>\n<table><tr><th>host</th><th>backend</th><th>durability</th><th>offered jobs/s</th><th>workers × ms</th><th>wakeup</th><th>smoke</th></tr>\n");
    let mut seen: Vec<String> = vec![];
    for r in &a.tests {
        let line = format!(
            "<tr><td>{}</td><td class=\"l\">{}</td><td class=\"l\">{} ({})</td><td>{}</td><td>{} × {}</td><td>{}</td><td>{}</td></tr>",
            esc(&r.host),
            esc(&r.backend),
            esc(&r.durability_tier),
            esc(&r.server_durability),
            num(r.offered_rate, 0),
            r.workers.map_or("-".into(), |w| w.to_string()),
            num(r.processing_ms, 0),
            esc(&r.wakeup),
            if r.smoke { "yes (--quick: not for conclusions)" } else { "no" }
        );
        if !seen.contains(&line) {
            seen.push(line);
        }
    }
    o.push_str(&seen.concat());
    o.push_str("</table>\n");
}
