//! The seed's six charts, and the spread of repeated runs. Each title says what is shown and at what offered load; every
//! axis carries its unit; each implementation keeps its colour in every chart.

use anyhow::Result;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::style::{self, anchored, bold, color, text, AXIS, GREY, TICK, VALUE};
use super::{Chart, Data, DrawResult};
use crate::format::summary::Row;

/// Reads one number of a summary row.
type Getter = fn(&Row) -> Option<f64>;

/// The percentiles the seed compares.
const PERCENTILES: [(&str, Getter); 3] = [
    ("p50", |r| r.p50_ms),
    ("p95", |r| r.p95_ms),
    ("p99", |r| r.p99_ms),
];

/// Compact number for a value label.
pub(super) fn fmt(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Axis ticks: no trailing zeros ("0", "2.5", "20").
pub(super) fn tick(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

pub(super) fn upper(max: f64) -> f64 {
    if max > 0.0 {
        max * 1.18
    } else {
        1.0
    }
}

fn legend_items(data: &Data) -> Vec<(String, RGBColor)> {
    data.impls.iter().map(|i| (i.clone(), color(i))).collect()
}

/// One bar of a grouped bar panel.
pub(super) struct Bar {
    pub group: usize,
    pub slot: usize,
    pub slots: usize,
    pub value: f64,
    /// The 95 % interval across repeated runs, drawn as an error bar.
    pub err: Option<(f64, f64)>,
    pub color: RGBColor,
    pub label: String,
}

/// Draws `text` below the x axis at the centre of `x` (data coordinates).
fn x_label<DB: DrawingBackend, Y: Ranged<ValueType = f64>>(
    area: &DrawingArea<DB, Shift>,
    chart: &ChartContext<'_, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
    x: f64,
    y: f64,
    label: &str,
) -> Result<()> {
    let (px, py) = chart.backend_coord(&(x, y));
    let (bx, by) = area.get_base_pixel();
    area.draw(&Text::new(
        label.to_string(),
        (px - bx, py - by + 16),
        anchored(text(AXIS), HPos::Center, VPos::Top),
    ))
    .drawn()
}

/// Vertical bars in groups (scenarios or percentiles), with value labels and optional
/// dashed reference lines.
#[allow(clippy::too_many_arguments)]
pub(super) fn bar_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    caption: Option<&str>,
    groups: &[String],
    bars: &[Bar],
    y_desc: &str,
    y_max: f64,
    hlines: &[(f64, String)],
    x_desc: &str,
    group_notes: &[String],
) -> Result<()> {
    let n = groups.len() as f64;
    let mut builder = ChartBuilder::on(area);
    if let Some(c) = caption {
        builder.caption(c, bold(AXIS));
    }
    // Reference lines are labelled in the right margin, clear of the bars' values.
    let label_room = hlines
        .iter()
        .filter_map(|(_, l)| area.estimate_text_size(l, &text(TICK)).ok())
        .map(|(w, _)| w as i32 + 40)
        .max()
        .unwrap_or(60);
    let mut chart = builder
        .margin(30)
        .margin_right(label_room)
        .x_label_area_size(150)
        .y_label_area_size(190)
        .build_cartesian_2d(-0.5f64..(n - 0.5), 0f64..y_max)
        .drawn()?;
    style::mesh(&mut chart)
        .disable_x_mesh()
        .x_label_formatter(&|_| String::new())
        .y_label_formatter(&|v| tick(*v))
        .y_desc(y_desc)
        .x_desc(x_desc)
        .draw()
        .drawn()?;
    for (v, label) in hlines {
        if *v > y_max {
            continue;
        }
        chart
            .draw_series(DashedLineSeries::new(
                vec![(-0.5, *v), (n - 0.5, *v)],
                20,
                14,
                GREY.stroke_width(4),
            ))
            .drawn()?;
        let (px, py) = chart.backend_coord(&(n - 0.5, *v));
        let (bx, by) = area.get_base_pixel();
        area.draw(&Text::new(
            label.clone(),
            (px - bx + 14, py - by),
            anchored(text(TICK).color(&GREY), HPos::Left, VPos::Center),
        ))
        .drawn()?;
    }
    for b in bars {
        let w = 0.8 / b.slots as f64;
        let x0 = b.group as f64 - 0.4 + b.slot as f64 * w;
        let (l, r) = (x0 + w * 0.06, x0 + w * 0.94);
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(l, 0.0), (r, b.value)],
                b.color.filled(),
            )))
            .drawn()?;
        let mut top = b.value;
        if let Some((lo, hi)) = b.err {
            let (c, cap) = ((l + r) / 2.0, (r - l) * 0.2);
            chart
                .draw_series([
                    PathElement::new(vec![(c, lo), (c, hi)], BLACK.stroke_width(4)),
                    PathElement::new(vec![(c - cap, lo), (c + cap, lo)], BLACK.stroke_width(4)),
                    PathElement::new(vec![(c - cap, hi), (c + cap, hi)], BLACK.stroke_width(4)),
                ])
                .drawn()?;
            top = top.max(hi);
        }
        chart
            .draw_series(std::iter::once(Text::new(
                b.label.clone(),
                ((l + r) / 2.0, top),
                anchored(text(VALUE), HPos::Center, VPos::Bottom),
            )))
            .drawn()?;
    }
    for (g, name) in groups.iter().enumerate() {
        x_label(area, &chart, g as f64, 0.0, name)?;
    }
    // A note above each group (e.g. a ratio), clear of the value labels.
    for (g, note) in group_notes.iter().enumerate() {
        let top = bars
            .iter()
            .filter(|b| b.group == g)
            .map(|b| b.err.map_or(b.value, |e| b.value.max(e.1)))
            .fold(0.0f64, f64::max);
        chart
            .draw_series(std::iter::once(Text::new(
                note.clone(),
                (g as f64, top + y_max * 0.07),
                anchored(bold(TICK), HPos::Center, VPos::Bottom),
            )))
            .drawn()?;
    }
    Ok(())
}

/// Bars of `value` per implementation, grouped by scenario, each with its interval when
/// the test ran more than once.
fn scenario_bars(data: &Data, value: Getter) -> (Vec<Bar>, f64) {
    let mut bars = vec![];
    let mut max = 0.0f64;
    for (g, sc) in data.scenarios.iter().enumerate() {
        for (slot, imp) in data.impls.iter().enumerate() {
            if let Some(v) = data.get(imp, sc).and_then(value) {
                let err = data.interval(imp, sc, value);
                max = max.max(v).max(err.map_or(0.0, |e| e.1));
                bars.push(Bar {
                    group: g,
                    slot,
                    slots: data.impls.len(),
                    value: v,
                    err,
                    color: color(imp),
                    label: fmt(v),
                });
            }
        }
    }
    (bars, max)
}

pub struct Throughput<'a>(pub &'a Data);

impl Chart for Throughput<'_> {
    fn name(&self) -> String {
        "throughput_comparison".into()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let d = self.0;
        let body = style::header(
            root,
            "Throughput by scenario",
            &format!(
                "completed jobs per second over each test's measured window — {}",
                d.load_text()
            ),
            &d.note(),
        )?;
        let body = style::legend(&body, &legend_items(d))?;
        let (bars, max) = scenario_bars(d, |r| r.throughput_jobs_s);
        let mut lines = vec![];
        let r0 = d.rows.iter().find(|r| r.offered_rate.is_some());
        if let Some(o) = r0.and_then(|r| r.offered_rate) {
            lines.push((o, format!("offered {o:.0} jobs/s")));
        }
        let top = upper(max.max(r0.and_then(|r| r.offered_rate).unwrap_or(0.0)));
        if let Some(c) = r0.and_then(|r| r.capacity_jobs_s).filter(|c| *c <= top) {
            lines.push((c, format!("capacity {c:.0} jobs/s")));
        }
        bar_panel(
            &body,
            None,
            &d.scenarios,
            &bars,
            "Throughput (jobs/s)",
            top,
            &lines,
            "Scenario",
            &[],
        )
    }
}

pub struct CpuUsage<'a>(pub &'a Data);

impl Chart for CpuUsage<'_> {
    fn name(&self) -> String {
        "cpu_usage".into()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let d = self.0;
        let body = style::header(
            root,
            "CPU use by scenario, in cores",
            &format!(
                "average over each test's measured window; 1 = one core busy — {}",
                d.load_text()
            ),
            &d.note(),
        )?;
        let body = style::legend(&body, &legend_items(d))?;
        let panels = body.split_evenly((1, 3));
        let one_core = [(1.0, "one core".to_string())];
        let panel = |i: usize, caption: &str, get: Getter| {
            let (bars, max) = scenario_bars(d, get);
            bar_panel(
                &panels[i],
                Some(caption),
                &d.scenarios,
                &bars,
                "CPU (cores)",
                upper(max.max(1.0)),
                &one_core,
                "Scenario",
                &[],
            )
        };
        panel(0, "Whole machine", |r| r.cpu_cores)?;
        panel(1, "Queue server, all processes", |r| r.server_cores)?;
        // A server that runs commands on one thread saturates at one core here.
        panel(2, "Server's busiest thread (peak 3 s)", |r| {
            r.server_busiest_thread_cores
        })
    }
}

pub struct LatencyComparison<'a>(pub &'a Data);

impl Chart for LatencyComparison<'_> {
    fn name(&self) -> String {
        "latency_comparison".into()
    }

    fn height(&self) -> u32 {
        2600
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let d = self.0;
        let body = style::header(
            root,
            "End-to-end latency by scenario and percentile",
            &format!(
                "intended enqueue → completed, ms (rows: scenarios; columns: percentiles; each panel its own scale) — {}",
                d.load_text()
            ),
            &d.note(),
        )?;
        let body = style::legend(&body, &legend_items(d))?;
        let pcts = PERCENTILES;
        let cells = body.split_evenly((d.scenarios.len(), 3));
        for (si, sc) in d.scenarios.iter().enumerate() {
            for (pi, (pname, get)) in pcts.iter().enumerate() {
                // Each panel its own scale: on one scale across scenarios, cold and warm
                // were a few pixels wide beside a load test's seconds-long backlog.
                let xmax = upper(
                    d.impls
                        .iter()
                        .filter_map(|imp| {
                            let v = d.get(imp, sc).and_then(get)?;
                            Some(d.interval(imp, sc, *get).map_or(v, |e| v.max(e.1)))
                        })
                        .fold(0.0f64, f64::max),
                );
                let cell = &cells[si * 3 + pi];
                let n = d.impls.len() as f64;
                let mut chart = ChartBuilder::on(cell)
                    .caption(format!("{sc} · {pname}"), bold(AXIS))
                    .margin(24)
                    .margin_right(50)
                    .x_label_area_size(110)
                    .y_label_area_size(if pi == 0 { 330 } else { 20 })
                    .build_cartesian_2d(0f64..xmax, -0.5f64..(n - 0.5))
                    .drawn()?;
                style::mesh(&mut chart)
                    .disable_y_mesh()
                    .y_label_formatter(&|_| String::new())
                    .x_label_formatter(&|v| tick(*v))
                    .x_labels(5)
                    .x_desc("latency (ms)")
                    .axis_desc_style(text(TICK))
                    .draw()
                    .drawn()?;
                for (i, imp) in d.impls.iter().enumerate() {
                    // First implementation on top.
                    let y = n - 1.0 - i as f64;
                    if let Some(v) = d.get(imp, sc).and_then(get) {
                        chart
                            .draw_series(std::iter::once(Rectangle::new(
                                [(0.0, y - 0.36), (v, y + 0.36)],
                                color(imp).filled(),
                            )))
                            .drawn()?;
                        let mut end = v;
                        if let Some((lo, hi)) = d.interval(imp, sc, *get) {
                            let w = BLACK.stroke_width(4);
                            chart
                                .draw_series([
                                    PathElement::new(vec![(lo, y), (hi, y)], w),
                                    PathElement::new(vec![(lo, y - 0.15), (lo, y + 0.15)], w),
                                    PathElement::new(vec![(hi, y - 0.15), (hi, y + 0.15)], w),
                                ])
                                .drawn()?;
                            end = end.max(hi);
                        }
                        chart
                            .draw_series(std::iter::once(Text::new(
                                format!(" {}", fmt(v)),
                                (end, y),
                                anchored(text(VALUE), HPos::Left, VPos::Center),
                            )))
                            .drawn()?;
                    }
                    if pi == 0 {
                        let (px, py) = chart.backend_coord(&(0.0, y));
                        let (bx, by) = cell.get_base_pixel();
                        cell.draw(&Text::new(
                            imp.clone(),
                            (px - bx - 14, py - by),
                            anchored(text(TICK), HPos::Right, VPos::Center),
                        ))
                        .drawn()?;
                    }
                }
            }
        }
        Ok(())
    }
}

pub struct LatencyDistribution<'a>(pub &'a Data);

impl Chart for LatencyDistribution<'_> {
    fn name(&self) -> String {
        "latency_distribution".into()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let d = self.0;
        let body = style::header(
            root,
            "End-to-end latency distribution per implementation",
            &format!(
                "box p25–p75, line p50, whiskers min–p99, dot max; ms on a log scale — {}",
                d.load_text()
            ),
            &d.note(),
        )?;
        let body = style::legend(&body, &legend_items(d))?;
        let lo = d
            .rows
            .iter()
            .filter_map(|r| r.min_ms)
            .fold(f64::MAX, f64::min)
            .clamp(0.01, 1e6)
            * 0.7;
        let hi = d
            .rows
            .iter()
            .filter_map(|r| r.max_ms)
            .fold(lo * 10.0, f64::max)
            * 1.6;
        let panels = body.split_evenly((1, d.scenarios.len()));
        for (si, sc) in d.scenarios.iter().enumerate() {
            let n = d.impls.len() as f64;
            let mut chart = ChartBuilder::on(&panels[si])
                .caption(sc.as_str(), bold(AXIS))
                .margin(30)
                .margin_right(50)
                .x_label_area_size(60)
                .y_label_area_size(if si == 0 { 190 } else { 120 })
                .build_cartesian_2d(-0.5f64..(n - 0.5), (lo..hi).log_scale())
                .drawn()?;
            style::mesh(&mut chart)
                .disable_x_mesh()
                .x_label_formatter(&|_| String::new())
                .y_label_formatter(&|v| tick(*v))
                .y_desc(if si == 0 {
                    "latency (ms, log scale)"
                } else {
                    ""
                })
                .draw()
                .drawn()?;
            for (i, imp) in d.impls.iter().enumerate() {
                let Some(r) = d.get(imp, sc) else { continue };
                let (Some(min), Some(p25), Some(p50), Some(p75), Some(p99), Some(max)) =
                    (r.min_ms, r.p25_ms, r.p50_ms, r.p75_ms, r.p99_ms, r.max_ms)
                else {
                    continue;
                };
                let x = i as f64;
                let c = color(imp);
                let line = c.stroke_width(5);
                let w = 0.28;
                chart
                    .draw_series([
                        PathElement::new(vec![(x, min.max(lo)), (x, p25)], line),
                        PathElement::new(vec![(x, p75), (x, p99)], line),
                        PathElement::new(
                            vec![(x - w / 2.0, min.max(lo)), (x + w / 2.0, min.max(lo))],
                            line,
                        ),
                        PathElement::new(vec![(x - w / 2.0, p99), (x + w / 2.0, p99)], line),
                    ])
                    .drawn()?;
                chart
                    .draw_series([
                        Rectangle::new([(x - w, p25), (x + w, p75)], c.mix(0.35).filled()),
                        Rectangle::new([(x - w, p25), (x + w, p75)], c.stroke_width(5)),
                    ])
                    .drawn()?;
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(x - w, p50), (x + w, p50)],
                        BLACK.stroke_width(7),
                    )))
                    .drawn()?;
                chart
                    .draw_series(std::iter::once(Circle::new((x, max), 11, c.filled())))
                    .drawn()?;
            }
        }
        Ok(())
    }
}

pub struct ScenarioComparison<'a>(pub &'a Data);

impl Chart for ScenarioComparison<'_> {
    fn name(&self) -> String {
        "scenario_comparison".into()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let d = self.0;
        let body = style::header(
            root,
            "How each implementation changes from cold to warm to load",
            &format!(
                "p99 end-to-end latency and throughput per scenario — {}",
                d.load_text()
            ),
            &d.note(),
        )?;
        let body = style::legend(&body, &legend_items(d))?;
        let panels = body.split_evenly((1, 2));
        let n = d.scenarios.len() as f64;
        let x = -0.3f64..(n - 0.7);
        // p99 on a log axis: a load test's backlog (seconds) beside cold and warm (ms)
        // would flatten them into the floor on a linear one.
        let p99 = |r: &Row| r.p99_ms;
        // The axes hold the error bars too, so no whisker is clipped.
        let (lo, hi) = d
            .rows
            .iter()
            .flat_map(|r| {
                let e = d.interval(&r.variant(), &r.scenario, p99);
                [p99(r), e.map(|e| e.0), e.map(|e| e.1)]
            })
            .flatten()
            .filter(|v| *v > 0.0)
            .fold((f64::MAX, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
        let (lo, hi) = if hi > 0.0 {
            (lo / 1.5, hi * 1.5)
        } else {
            (0.1, 10.0)
        };
        let mut chart = scenario_axes(&panels[0], "p99 end-to-end latency (log scale)")
            .build_cartesian_2d(x.clone(), (lo..hi).log_scale())
            .drawn()?;
        style::mesh(&mut chart)
            .disable_x_mesh()
            .x_label_formatter(&|_| String::new())
            .y_label_formatter(&|v| tick(*v))
            .y_desc("latency (ms)")
            .x_desc("Scenario")
            .draw()
            .drawn()?;
        scenario_lines(d, &panels[0], &mut chart, p99)?;
        let tput = |r: &Row| r.throughput_jobs_s;
        let ymax = upper(
            d.rows
                .iter()
                .filter_map(|r| {
                    let e = d.interval(&r.variant(), &r.scenario, tput);
                    Some(tput(r)?.max(e.map_or(0.0, |e| e.1)))
                })
                .fold(0.0f64, f64::max),
        );
        let mut chart = scenario_axes(&panels[1], "Throughput")
            .build_cartesian_2d(x, 0f64..ymax)
            .drawn()?;
        style::mesh(&mut chart)
            .disable_x_mesh()
            .x_label_formatter(&|_| String::new())
            .y_label_formatter(&|v| tick(*v))
            .y_desc("throughput (jobs/s)")
            .x_desc("Scenario")
            .draw()
            .drawn()?;
        scenario_lines(d, &panels[1], &mut chart, tput)?;
        Ok(())
    }
}

fn scenario_axes<'a, 'b, DB: DrawingBackend>(
    panel: &'a DrawingArea<DB, Shift>,
    caption: &str,
) -> ChartBuilder<'a, 'b, DB> {
    let mut b = ChartBuilder::on(panel);
    b.caption(caption, bold(AXIS))
        .margin(30)
        .margin_right(60)
        .x_label_area_size(150)
        .y_label_area_size(190);
    b
}

/// One line per implementation across the scenarios, on any y axis.
fn scenario_lines<DB: DrawingBackend, Y: Ranged<ValueType = f64>>(
    d: &Data,
    panel: &DrawingArea<DB, Shift>,
    chart: &mut ChartContext<'_, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
    get: Getter,
) -> Result<()> {
    for imp in &d.impls {
        let pts: Vec<(f64, f64)> = d
            .scenarios
            .iter()
            .enumerate()
            .filter_map(|(i, sc)| Some((i as f64, get(d.get(imp, sc)?)?)))
            .collect();
        let c = color(imp);
        chart
            .draw_series(LineSeries::new(pts.clone(), c.stroke_width(6)))
            .drawn()?;
        chart
            .draw_series(pts.iter().map(|p| Circle::new(*p, 14, c.filled())))
            .drawn()?;
        let whiskers = d.scenarios.iter().enumerate().filter_map(|(i, sc)| {
            let (lo, hi) = d.interval(imp, sc, get)?;
            Some(PathElement::new(
                vec![(i as f64, lo), (i as f64, hi)],
                c.stroke_width(5),
            ))
        });
        chart.draw_series(whiskers).drawn()?;
    }
    let y0 = chart.y_range().start;
    for (i, sc) in d.scenarios.iter().enumerate() {
        x_label(panel, chart, i as f64, y0, sc)?;
    }
    Ok(())
}

pub struct ValkeyVsBestPg<'a>(pub &'a Data);

/// The PostgreSQL design with the lowest p99 in a scenario.
fn best_pg<'a>(d: &'a Data, sc: &str) -> Option<&'a Row> {
    crate::format::summary::best_pg(d.rows.iter().filter(|r| r.scenario == sc))
}

impl Chart for ValkeyVsBestPg<'_> {
    fn name(&self) -> String {
        "valkey_vs_best_pg".into()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let d = self.0;
        let pairs: Vec<(&str, &Row, &Row)> = d
            .scenarios
            .iter()
            .filter_map(|sc| Some((sc.as_str(), best_pg(d, sc)?, d.valkey(sc)?)))
            .collect();
        let pcts = PERCENTILES;
        // The largest gap: PostgreSQL's latency over Valkey's, any scenario and percentile.
        let mut largest: Option<(f64, &str, &str)> = None;
        for (sc, p, v) in &pairs {
            for (name, get) in &pcts {
                if let (Some(a), Some(b)) = (get(p), get(v)) {
                    if b > 0.0 && largest.is_none_or(|(x, _, _)| a / b > x) {
                        largest = Some((a / b, sc, name));
                    }
                }
            }
        }
        let subtitle = match largest {
            Some((ratio, sc, pct)) => format!(
                "×: PostgreSQL's latency / Valkey's; largest gap {pct} {sc} ×{ratio:.2} — {}",
                d.load_text()
            ),
            None => d.load_text(),
        };
        let body = style::header(
            root,
            "Valkey Streams against the best PostgreSQL design (lowest p99) per scenario",
            &subtitle,
            &d.note(),
        )?;
        if pairs.is_empty() {
            let missing = if d.rows.iter().any(|r| r.backend == "valkey") {
                "PostgreSQL"
            } else {
                "Valkey"
            };
            return style::message(
                &body,
                &format!("Needs Valkey and PostgreSQL results in the same scenario: {missing} results are missing."),
            );
        }
        let mut items: Vec<(String, RGBColor)> = vec![];
        for (_, p, _) in &pairs {
            let label = format!("{} (best PostgreSQL)", p.queue);
            if !items.iter().any(|(l, _)| *l == label) {
                items.push((label, color(&p.queue)));
            }
        }
        if let Some((_, _, v)) = pairs.first() {
            items.push((v.queue.clone(), color(&v.queue)));
        }
        let body = style::legend(&body, &items)?;
        let panels = body.split_evenly((1, pairs.len()));
        let err = |r: &Row, sc: &str, get: Getter| d.interval(&r.variant(), sc, get);
        let ymax = upper(
            pairs
                .iter()
                .flat_map(|(sc, p, v)| {
                    [p, v].map(|r| err(r, sc, |r| r.p99_ms).map_or(r.p99_ms, |e| Some(e.1)))
                })
                .flatten()
                .fold(0.0f64, f64::max),
        );
        let groups: Vec<String> = pcts.iter().map(|(n, _)| n.to_string()).collect();
        for ((sc, p, v), panel) in pairs.iter().zip(panels.iter()) {
            let mut bars = vec![];
            for (g, (_, get)) in pcts.iter().enumerate() {
                for (slot, r) in [p, v].iter().enumerate() {
                    if let Some(val) = get(r) {
                        bars.push(Bar {
                            group: g,
                            slot,
                            slots: 2,
                            value: val,
                            err: err(r, sc, *get),
                            color: color(&r.queue),
                            label: fmt(val),
                        });
                    }
                }
            }
            // PostgreSQL's latency over Valkey's, above each pair.
            let ratios: Vec<String> = pcts
                .iter()
                .map(|(_, get)| match (get(p), get(v)) {
                    (Some(a), Some(b)) if b > 0.0 => format!("×{:.2}", a / b),
                    _ => String::new(),
                })
                .collect();
            bar_panel(
                panel,
                Some(&format!("{sc}: {} vs {}", p.queue, v.queue)),
                &groups,
                &bars,
                "end-to-end latency (ms)",
                ymax * 1.12,
                &[],
                "Percentile",
                &ratios,
            )?;
        }
        Ok(())
    }
}

/// Every run's p99 and throughput, one dot per run, per implementation and scenario: the
/// scatter the intervals summarise. Drawn when some test ran more than once.
pub struct RunSpread<'a>(pub &'a Data);

impl Chart for RunSpread<'_> {
    fn name(&self) -> String {
        "run_spread".into()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let d = self.0;
        let body = style::header(
            root,
            "Every run, per implementation and scenario",
            &format!(
                "dots: runs (hollow: left out of the intervals); bar: median of the clean runs — {}",
                d.load_text()
            ),
            &d.note(),
        )?;
        let body = style::legend(&body, &legend_items(d))?;
        let rows = body.split_evenly((2, d.scenarios.len()));
        let figures: [(&str, Getter, bool); 2] = [
            ("p99 (ms, log scale)", |r| r.p99_ms, true),
            ("throughput (jobs/s)", |r| r.throughput_jobs_s, false),
        ];
        for (fi, (desc, get, log)) in figures.iter().enumerate() {
            for (si, sc) in d.scenarios.iter().enumerate() {
                let cell = &rows[fi * d.scenarios.len() + si];
                let caption = format!("{sc} · {}", desc.split(' ').next().unwrap_or(desc));
                let vals: Vec<f64> = d
                    .runs
                    .iter()
                    .filter(|r| r.scenario == *sc)
                    .filter_map(get)
                    .filter(|v| *v > 0.0)
                    .collect();
                let (lo, hi) = vals
                    .iter()
                    .fold((f64::MAX, 0.0f64), |(a, b), v| (a.min(*v), b.max(*v)));
                let n = d.impls.len() as f64;
                if *log {
                    let (lo, hi) = if hi > 0.0 {
                        (lo / 1.3, hi * 1.3)
                    } else {
                        (0.1, 10.0)
                    };
                    let mut chart = spread_axes(cell, &caption)
                        .build_cartesian_2d(-0.5f64..(n - 0.5), (lo..hi).log_scale())
                        .drawn()?;
                    spread_mesh(&mut chart, desc)?;
                    spread_dots(d, sc, *get, &mut chart)?;
                } else {
                    let mut chart = spread_axes(cell, &caption)
                        .build_cartesian_2d(-0.5f64..(n - 0.5), 0f64..upper(hi))
                        .drawn()?;
                    spread_mesh(&mut chart, desc)?;
                    spread_dots(d, sc, *get, &mut chart)?;
                }
            }
        }
        Ok(())
    }
}

fn spread_axes<'a, 'b, DB: DrawingBackend>(
    cell: &'a DrawingArea<DB, Shift>,
    caption: &str,
) -> ChartBuilder<'a, 'b, DB> {
    let mut b = ChartBuilder::on(cell);
    b.caption(caption, bold(AXIS))
        .margin(24)
        .x_label_area_size(60)
        .y_label_area_size(170);
    b
}

fn spread_mesh<DB: DrawingBackend, Y: Ranged<ValueType = f64> + ValueFormatter<f64>>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
    desc: &str,
) -> Result<()> {
    style::mesh(chart)
        .disable_x_mesh()
        .x_label_formatter(&|_| String::new())
        .y_label_formatter(&|v| tick(*v))
        .y_desc(desc)
        .axis_desc_style(text(TICK))
        .draw()
        .drawn()
}

fn spread_dots<DB: DrawingBackend, Y: Ranged<ValueType = f64>>(
    d: &Data,
    sc: &str,
    get: Getter,
    chart: &mut ChartContext<'_, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
) -> Result<()> {
    for (i, imp) in d.impls.iter().enumerate() {
        let c = color(imp);
        let runs: Vec<&Row> = d
            .runs
            .iter()
            .filter(|r| r.variant() == *imp && r.scenario == sc)
            .collect();
        let k = runs.len().max(1) as f64;
        for (j, r) in runs.iter().enumerate() {
            let Some(v) = get(r).filter(|v| *v > 0.0) else {
                continue;
            };
            // Spread side by side so equal values stay visible.
            let x = i as f64 + (j as f64 - (k - 1.0) / 2.0) * (0.5 / k);
            let style = if r.comparable() {
                c.filled()
            } else {
                c.stroke_width(4)
            };
            chart
                .draw_series(std::iter::once(Circle::new((x, v), 12, style)))
                .drawn()?;
        }
        if let Some(m) = d.get(imp, sc).and_then(get).filter(|v| *v > 0.0) {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(i as f64 - 0.32, m), (i as f64 + 0.32, m)],
                    BLACK.stroke_width(5),
                )))
                .drawn()?;
        }
    }
    Ok(())
}
