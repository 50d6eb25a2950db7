//! Small PNG charts shared by every command that plots: a scatter on a log x-axis (model error
//! against the reference value), a log-log scatter (prediction against measurement), and lines on a
//! log y-axis (best cost against evaluations, one series per method).
//!
//! Charts are rendered in memory with plotters' bitmap backend and an embedded DejaVu Sans font (no
//! system fonts or libraries), and returned as PNG bytes so that callers write them atomically.

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use plotters::style::FontStyle;
use std::sync::Once;

const SIZE: (u32, u32) = (900, 600);
const FONT: &str = "sans-serif";

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are a valid TTF shipped by the `dejavu` crate; failure would be a packaging bug,
        // and then text is simply not drawn.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
    });
}

/// Axis range covering `vals` with a margin; on a log axis only positive values count.
fn range(vals: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in vals.filter(|v| v.is_finite() && (!log || *v > 0.0)) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return if log { (1.0, 10.0) } else { (-1.0, 1.0) };
    }
    if log {
        if hi <= lo {
            (lo / 2.0, hi * 2.0)
        } else {
            (lo / 1.3, hi * 1.3)
        }
    } else if hi <= lo {
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        (lo - pad, hi + pad)
    } else {
        let pad = (hi - lo) * 0.05;
        (lo - pad, hi + pad)
    }
}

/// PNG bytes of an RGB buffer of [`SIZE`]: fast deflate with adaptive filters, deterministic.
fn encode(buf: &[u8]) -> Result<Vec<u8>, String> {
    let fail = |e: png::EncodingError| format!("PNG encoding failed: {e}");
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, SIZE.0, SIZE.1);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::Fast);
    enc.set_filter(png::FilterType::Sub);
    enc.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
    enc.write_header()
        .and_then(|mut w| w.write_image_data(buf))
        .map_err(fail)?;
    Ok(out)
}

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("plotting failed: {e:?}")
}

fn fmt_tick(v: &f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e5).contains(&a) {
        format!("{v:.0e}")
    } else if a >= 100.0 || *v == v.round() {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

/// Scatter of `(x, y)` points with a logarithmic x-axis and a linear y-axis (e.g. relative error %
/// against the reference value). A dashed zero line is drawn when the y range spans zero.
pub fn scatter_logx(
    title: &str,
    x_label: &str,
    y_label: &str,
    points: &[(f64, f64)],
) -> Result<Vec<u8>, String> {
    let pts: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(x, y)| *x > 0.0 && x.is_finite() && y.is_finite())
        .collect();
    let (x0, x1) = range(pts.iter().map(|p| p.0), true);
    let (y0, y1) = range(pts.iter().map(|p| p.1), false);
    let zero = (y0 < 0.0 && y1 > 0.0).then_some([(x0, 0.0), (x1, 0.0)]);
    let labels = [title, x_label, y_label];
    scatter(labels, (x0..x1).log_scale(), y0..y1, zero, &pts)
}

/// Scatter with both axes logarithmic (e.g. predicted against measured cycles); with `diagonal`,
/// the line y = x is drawn for reference.
pub fn scatter_loglog(
    title: &str,
    x_label: &str,
    y_label: &str,
    points: &[(f64, f64)],
    diagonal: bool,
) -> Result<Vec<u8>, String> {
    let pts: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(x, y)| *x > 0.0 && *y > 0.0 && x.is_finite() && y.is_finite())
        .collect();
    let (mut x0, mut x1) = range(pts.iter().map(|p| p.0), true);
    let (mut y0, mut y1) = range(pts.iter().map(|p| p.1), true);
    if diagonal {
        (x0, x1) = (x0.min(y0), x1.max(y1));
        (y0, y1) = (x0, x1);
    }
    let line = diagonal.then_some([(x0, x0), (x1, x1)]);
    let labels = [title, x_label, y_label];
    scatter(
        labels,
        (x0..x1).log_scale(),
        (y0..y1).log_scale(),
        line,
        &pts,
    )
}

/// The body both scatters share: axes `x` and `y` (linear or log), an optional dashed reference
/// line, the points as translucent dots. `labels` are the title and the two axis labels.
fn scatter<X, Y>(
    labels: [&str; 3],
    x: X,
    y: Y,
    reference: Option<[(f64, f64); 2]>,
    pts: &[(f64, f64)],
) -> Result<Vec<u8>, String>
where
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    register_font();
    let [title, x_label, y_label] = labels;
    let mut buf = vec![0u8; (SIZE.0 * SIZE.1 * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 24))
            .margin(15)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d(x, y)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .label_style((FONT, 15))
            .x_label_formatter(&fmt_tick)
            .y_label_formatter(&fmt_tick)
            .draw()
            .map_err(err)?;
        if let Some(line) = reference {
            chart
                .draw_series(DashedLineSeries::new(line, 6, 4, BLACK.stroke_width(1)))
                .map_err(err)?;
        }
        chart
            .draw_series(
                pts.iter()
                    .map(|&p| Circle::new(p, 2, BLUE.mix(0.5).filled())),
            )
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    encode(&buf)
}

/// One named line of a line chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// Lines with a linear x-axis and a logarithmic y-axis (e.g. best EDP against evaluations), one
/// colour and legend entry per series.
pub fn lines_logy(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> Result<Vec<u8>, String> {
    register_font();
    let all = || series.iter().flat_map(|s| s.points.iter().copied());
    let (x0, x1) = range(all().map(|p| p.0), false);
    let (y0, y1) = range(all().map(|p| p.1), true);
    let mut buf = vec![0u8; (SIZE.0 * SIZE.1 * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 24))
            .margin(15)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d(x0..x1, (y0..y1).log_scale())
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .label_style((FONT, 15))
            .x_label_formatter(&fmt_tick)
            .y_label_formatter(&fmt_tick)
            .draw()
            .map_err(err)?;
        for (i, s) in series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let pts: Vec<(f64, f64)> = s
                .points
                .iter()
                .copied()
                .filter(|(x, y)| x.is_finite() && *y > 0.0 && y.is_finite())
                .collect();
            chart
                .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                .map_err(err)?
                .label(s.name.clone())
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        if !series.is_empty() {
            chart
                .configure_series_labels()
                .label_font((FONT, 15))
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    encode(&buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_png(b: &[u8]) -> bool {
        b.starts_with(&[0x89, b'P', b'N', b'G'])
    }

    #[test]
    fn charts_render_to_png_even_when_degenerate() {
        let pts = vec![(1.0, 0.5), (10.0, -0.2), (1000.0, 0.0)];
        assert!(is_png(&scatter_logx("t", "x", "y", &pts).unwrap()));
        assert!(is_png(&scatter_logx("empty", "x", "y", &[]).unwrap()));
        assert!(is_png(
            &scatter_loglog("t", "x", "y", &[(1.0, 2.0), (3.0, 3.0)], true).unwrap()
        ));
        let s = vec![Series {
            name: "a".into(),
            points: vec![(0.0, 10.0), (5.0, 2.0)],
        }];
        assert!(is_png(&lines_logy("t", "x", "y", &s).unwrap()));
        assert!(is_png(&lines_logy("t", "x", "y", &[]).unwrap()));
    }
}
