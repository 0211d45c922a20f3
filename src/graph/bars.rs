//! What the charts of summary rows share: grouped bars with value labels and error bars,
//! reference lines, axis ticks and number labels.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::style::{self, anchored, bold, color, text, AXIS, GREY, TICK, VALUE};
use super::{Data, DrawResult};
use crate::format::summary::Row;

/// Reads one number of a summary row.
pub type Getter = fn(&Row) -> Option<f64>;

/// The percentiles the seed compares.
pub const PERCENTILES: [(&str, Getter); 3] = [
    ("p50", |r| r.p50_ms),
    ("p95", |r| r.p95_ms),
    ("p99", |r| r.p99_ms),
];

/// Compact number for a value label.
pub fn fmt(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Axis ticks: no trailing zeros ("0", "2.5", "20").
pub fn tick(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

pub fn upper(max: f64) -> f64 {
    if max > 0.0 {
        max * 1.18
    } else {
        1.0
    }
}

pub fn legend_items(data: &Data) -> Vec<(String, RGBColor)> {
    data.impls.iter().map(|i| (i.clone(), color(i))).collect()
}

/// One bar of a grouped bar panel.
pub struct Bar {
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
pub fn x_label<DB: DrawingBackend, Y: Ranged<ValueType = f64>>(
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
pub fn bar_panel<DB: DrawingBackend>(
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
        bar(&mut chart, b)?;
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

/// One bar with its error bar (the interval across repeats) and its value on top.
fn bar<DB: DrawingBackend>(
    chart: &mut ChartContext<
        '_,
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    b: &Bar,
) -> Result<()> {
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
    Ok(())
}

/// Bars of `value` per implementation, grouped by scenario, each with its interval when
/// the test ran more than once.
pub fn scenario_bars(data: &Data, value: Getter) -> (Vec<Bar>, f64) {
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
