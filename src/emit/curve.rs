//! The search-curve figure: best objective so far against cost-model evaluations, log y-axis,
//! one line per method (the form of the reference paper's search-curve figure).

use crate::search::report::Report;
use plotters::prelude::*;

fn register_font() {
    static FONT: std::sync::Once = std::sync::Once::new();
    FONT.call_once(|| {
        // DejaVu Sans ships inside the `dejavu` crate: no system font or fontconfig needed.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

/// Render the curves of `reports` as PNG bytes.
pub fn curve_png(reports: &[&Report]) -> Result<Vec<u8>, String> {
    register_font();
    const W: u32 = 900;
    const H: u32 = 600;
    let mut buf = vec![0u8; (W * H * 3) as usize];
    let pts: Vec<Vec<(f64, f64)>> = reports
        .iter()
        .map(|r| {
            r.curve
                .iter()
                .filter(|(_, v)| v.is_finite() && *v > 0.0)
                .map(|&(e, v)| (e.max(1) as f64, v))
                .collect()
        })
        .collect();
    let all = pts.iter().flatten();
    let (mut xmax, mut ylo, mut yhi) = (1.0f64, f64::INFINITY, 0.0f64);
    for &(x, y) in all {
        xmax = xmax.max(x);
        ylo = ylo.min(y);
        yhi = yhi.max(y);
    }
    if !ylo.is_finite() {
        (ylo, yhi) = (1.0, 10.0);
    }
    let objective = reports
        .first()
        .map_or("edp", |r| r.objective.as_str())
        .to_string();
    {
        let root = BitMapBackend::with_buffer(&mut buf, (W, H)).into_drawing_area();
        let e = |e: DrawingAreaErrorKind<_>| format!("plotting: {e}");
        root.fill(&WHITE).map_err(e)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("best {objective} so far"), ("sans-serif", 24))
            .margin(20)
            .x_label_area_size(45)
            .y_label_area_size(90)
            .build_cartesian_2d(0.0..xmax * 1.02, (ylo / 1.2..yhi * 1.2).log_scale())
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc("cost-model evaluations")
            .y_desc(objective.as_str())
            .y_label_formatter(&|v| format!("{v:.2e}"))
            .draw()
            .map_err(e)?;
        let colors = [BLUE, RED, GREEN, MAGENTA, CYAN, BLACK];
        for (i, (r, p)) in reports.iter().zip(&pts).enumerate() {
            let c = colors[i % colors.len()];
            // A step line: the best value holds until the next improvement.
            let mut steps = Vec::new();
            for (j, &(x, y)) in p.iter().enumerate() {
                if j > 0 {
                    steps.push((x, p[j - 1].1));
                }
                steps.push((x, y));
            }
            if let Some(&(_, y)) = p.last() {
                steps.push((xmax, y));
            }
            chart
                .draw_series(LineSeries::new(steps, c.stroke_width(2)))
                .map_err(e)?
                .label(r.method.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(e)?;
        root.present().map_err(e)?;
    }
    image_png(&buf, W, H)
}

/// Encode RGB bytes as PNG in memory (the `image` crate plotters' encoder already brings in).
fn image_png(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>, String> {
    let mut out = std::io::Cursor::new(Vec::new());
    image::write_buffer_with_format(
        &mut out,
        rgb,
        w,
        h,
        image::ColorType::Rgb8,
        image::ImageOutputFormat::Png,
    )
    .map_err(|e| format!("encoding PNG: {e}"))?;
    Ok(out.into_inner())
}
