//! The search-curve figure: best objective so far against cost-model evaluations, log y-axis,
//! one line per method (the form of the reference paper's search-curve figure).

use super::plot::{lines_logy, Series};
use crate::search::report::Report;

/// Render the curves of `reports` as PNG bytes. Each curve is drawn as steps (the best value
/// holds until the next improvement) and extended to the largest evaluation count shown. A
/// `floor` (a lower bound no design beats) is drawn as one more, flat line.
pub fn curve_png(reports: &[&Report], floor: Option<f64>) -> Result<Vec<u8>, String> {
    let xmax = reports
        .iter()
        .flat_map(|r| r.curve.iter().map(|c| c.0))
        .max()
        .unwrap_or(1) as f64;
    let mut series: Vec<Series> = reports
        .iter()
        .map(|r| {
            let mut points = Vec::new();
            for (j, &(x, y)) in r.curve.iter().enumerate() {
                if j > 0 {
                    points.push((x as f64, r.curve[j - 1].1));
                }
                points.push((x as f64, y));
            }
            if let Some(&(_, y)) = r.curve.last() {
                points.push((xmax, y));
            }
            Series {
                name: r.method.clone(),
                points,
            }
        })
        .collect();
    if let Some(f) = floor.filter(|f| f.is_finite() && *f > 0.0) {
        series.push(Series {
            name: "floor (bound)".into(),
            points: vec![(0.0, f), (xmax, f)],
        });
    }
    let objective = reports.first().map_or("edp", |r| r.objective.as_str());
    lines_logy(
        &format!("best {objective} so far"),
        "cost-model evaluations",
        objective,
        &series,
    )
}
