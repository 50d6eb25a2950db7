//! Predicted-versus-measured scatter plots (log-log PNG), one per predictor.
//!
//! Kept minimal and local to `learn`: no shared plotting module existed when this was written.
//! Text uses DejaVu Sans shipped inside the `dejavu` crate, so no system font is needed.

use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

static FONT: Once = Once::new();

fn register_font() {
    FONT.call_once(|| {
        // Registering an embedded, valid TrueType font cannot fail; ignore the impossible error.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

/// Draw `pred` against `meas` (cycles, log-log) with the y = x line, as a PNG at `path`.
/// The file is rendered to memory and written atomically.
pub fn scatter(path: &Path, title: &str, meas: &[f64], pred: &[f64]) -> Result<(), String> {
    register_font();
    const W: u32 = 800;
    const H: u32 = 760;
    let pos: Vec<(f64, f64)> = meas
        .iter()
        .zip(pred)
        .filter(|(m, p)| **m > 0.0 && **p > 0.0 && m.is_finite() && p.is_finite())
        .map(|(&m, &p)| (m, p))
        .collect();
    let (mut lo, mut hi) = (f64::INFINITY, 0.0f64);
    for &(m, p) in &pos {
        lo = lo.min(m).min(p);
        hi = hi.max(m).max(p);
    }
    if pos.is_empty() {
        (lo, hi) = (1.0, 10.0);
    }
    let (lo, hi) = (lo / 1.5, hi * 1.5);
    // Render beside the target and rename, so a failure leaves no partial PNG.
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}.png", std::process::id()));
    let drawn = (|| -> Result<(), String> {
        let root = BitMapBackend::new(&tmp, (W, H)).into_drawing_area();
        let e = |e: DrawingAreaErrorKind<_>| format!("plotting: {e}");
        root.fill(&WHITE).map_err(e)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d((lo..hi).log_scale(), (lo..hi).log_scale())
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc("measured RTL cycles")
            .y_desc("predicted cycles")
            .x_label_formatter(&|v| format!("{v:.0e}"))
            .y_label_formatter(&|v| format!("{v:.0e}"))
            .label_style(("sans-serif", 15))
            .draw()
            .map_err(e)?;
        chart
            .draw_series(LineSeries::new([(lo, lo), (hi, hi)], BLACK.stroke_width(1)))
            .map_err(e)?;
        chart
            .draw_series(
                pos.iter()
                    .map(|&(m, p)| Circle::new((m, p), 3, BLUE.mix(0.45).filled())),
            )
            .map_err(e)?;
        root.present().map_err(e)?;
        Ok(())
    })();
    match drawn
        .and_then(|_| std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display())))
    {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}
