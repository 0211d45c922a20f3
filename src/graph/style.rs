//! One look for every chart: one colour per implementation (Okabe–Ito, readable by
//! colour-blind readers), an embedded font, and sizes legible at 10 inches wide.

use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::DrawResult;

pub const FONT: &str = "sans-serif";
pub const TITLE: u32 = 62;
pub const SUBTITLE: u32 = 38;
pub const AXIS: u32 = 44;
pub const TICK: u32 = 38;
pub const LEGEND: u32 = 40;
pub const VALUE: u32 = 32;

pub fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are the crate's own files: registering them cannot fail.
        let _ = plotters::style::register_font(
            FONT,
            FontStyle::Normal,
            include_bytes!("fonts/DejaVuSans.ttf"),
        );
        let _ = plotters::style::register_font(
            FONT,
            FontStyle::Bold,
            include_bytes!("fonts/DejaVuSans-Bold.ttf"),
        );
    });
}

/// The seed's designs keep their colours; any other design gets one of the rest of the
/// palette, chosen from its name so that it is the same in every chart.
pub fn color(imp: &str) -> RGBColor {
    match imp {
        "skip_locked" => RGBColor(0, 114, 178),
        "delete_returning" => RGBColor(230, 159, 0),
        "partitioned" => RGBColor(0, 158, 115),
        "valkey_streams" => RGBColor(213, 94, 0),
        other => {
            const REST: [RGBColor; 3] = [
                RGBColor(204, 121, 167),
                RGBColor(86, 180, 233),
                RGBColor(240, 228, 66),
            ];
            let h = other
                .bytes()
                .fold(0usize, |h, b| h.wrapping_mul(31) + b as usize);
            REST[h % REST.len()]
        }
    }
}

pub const GREY: RGBColor = RGBColor(110, 110, 110);

/// A chart's mesh with the house style (text sizes, light grid); callers add labels.
pub fn mesh<'a, 'b, DB, XT, YT, X, Y>(
    chart: &'b mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
) -> plotters::chart::MeshStyle<'a, 'b, X, Y, DB>
where
    DB: DrawingBackend,
    X: plotters::coord::ranged1d::Ranged<ValueType = XT>
        + plotters::coord::ranged1d::ValueFormatter<XT>,
    Y: plotters::coord::ranged1d::Ranged<ValueType = YT>
        + plotters::coord::ranged1d::ValueFormatter<YT>,
{
    let mut m = chart.configure_mesh();
    m.axis_desc_style(text(AXIS))
        .label_style(text(TICK))
        .light_line_style(RGBColor(238, 238, 238))
        .bold_line_style(RGBColor(215, 215, 215));
    m
}

pub fn text(size: u32) -> TextStyle<'static> {
    TextStyle::from((FONT, size).into_font()).color(&BLACK)
}

pub fn bold(size: u32) -> TextStyle<'static> {
    TextStyle::from((FONT, size, FontStyle::Bold).into_font()).color(&BLACK)
}

pub fn anchored(style: TextStyle<'static>, h: HPos, v: VPos) -> TextStyle<'static> {
    style.pos(Pos::new(h, v))
}

/// Title, a subtitle line, and the note (smoke, missing data); returns the area below.
pub fn header<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    subtitle: &str,
    note: &str,
) -> anyhow::Result<DrawingArea<DB, Shift>> {
    let (w, _) = root.dim_in_pixel();
    let cx = (w / 2) as i32;
    let (top, body) = root.split_vertically(if note.is_empty() { 150 } else { 200 });
    top.draw(&Text::new(
        title.to_string(),
        (cx, 22),
        anchored(bold(TITLE), HPos::Center, VPos::Top),
    ))
    .drawn()?;
    top.draw(&Text::new(
        subtitle.to_string(),
        (cx, 100),
        anchored(text(SUBTITLE), HPos::Center, VPos::Top),
    ))
    .drawn()?;
    if !note.is_empty() {
        top.draw(&Text::new(
            note.to_string(),
            (cx, 148),
            anchored(
                text(SUBTITLE).color(&RGBColor(170, 20, 20)),
                HPos::Center,
                VPos::Top,
            ),
        ))
        .drawn()?;
    }
    Ok(body)
}

/// The opening every chart shares: title, subtitle, the note (smoke, missing data) and,
/// unless `legend` is empty, a row of colour swatches; returns the area below.
pub fn open<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    subtitle: &str,
    note: &str,
    legend: &[(String, RGBColor)],
) -> anyhow::Result<DrawingArea<DB, Shift>> {
    let body = header(root, title, subtitle, note)?;
    if legend.is_empty() {
        return Ok(body);
    }
    self::legend(&body, legend)
}

/// A text style in a design's colour (the helpers above take only fixed colours).
pub fn coloured<'a>(base: TextStyle<'static>, c: &'a RGBColor, h: HPos, v: VPos) -> TextStyle<'a> {
    base.color(c).pos(Pos::new(h, v))
}

/// Legend entries for series named `(queue, tier, name)`, each in its design's colour.
pub fn legend_of(names: &[(String, String, String)]) -> Vec<(String, RGBColor)> {
    names
        .iter()
        .map(|(q, _, n)| (n.clone(), color(q)))
        .collect()
}

/// A row of colour swatches with names, centred; returns the area below it.
pub fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    items: &[(String, RGBColor)],
) -> anyhow::Result<DrawingArea<DB, Shift>> {
    let (top, rest) = area.split_vertically(80);
    let (w, _) = top.dim_in_pixel();
    let style = anchored(text(LEGEND), HPos::Left, VPos::Center);
    let widths: Vec<i32> = items
        .iter()
        .map(|(n, _)| {
            top.estimate_text_size(n, &style)
                .map(|(tw, _)| tw as i32)
                .unwrap_or(300)
        })
        .collect();
    let total: i32 = widths.iter().map(|tw| tw + 60 + 70).sum::<i32>() - 70;
    let mut x = (w as i32 - total) / 2;
    for ((name, c), tw) in items.iter().zip(widths) {
        top.draw(&Rectangle::new([(x, 22), (x + 44, 62)], c.filled()))
            .drawn()?;
        top.draw(&Text::new(name.clone(), (x + 60, 42), style.clone()))
            .drawn()?;
        x += tw + 60 + 70;
    }
    Ok(rest)
}

/// A centred message where a chart cannot be drawn.
pub fn message<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, msg: &str) -> anyhow::Result<()> {
    let (w, h) = area.dim_in_pixel();
    area.draw(&Text::new(
        msg.to_string(),
        ((w / 2) as i32, (h / 2) as i32),
        anchored(text(AXIS).color(&GREY), HPos::Center, VPos::Center),
    ))
    .drawn()?;
    Ok(())
}
