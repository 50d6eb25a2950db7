//! `dosa predict`: accuracy of every latency predictor against measured RTL cycles.

use super::CliError;
use crate::emit::plot::scatter_loglog;
use crate::learn::predictor::AccuracyJson;
use crate::learn::{analytical, data, train, LatencyModel};
use crate::model::stats::error_stats;
use clap::Args;
use std::path::PathBuf;

/// `dosa predict --rtl CSV --model MODEL [--json] [--plot DIR] [--csv FILE]`
#[derive(Args, Debug)]
pub struct PredictArgs {
    /// Measured RTL cycles to predict and score against.
    #[arg(long, value_name = "CSV")]
    pub rtl: PathBuf,
    /// A model file written by `dosa fit`.
    #[arg(long, value_name = "MODEL")]
    pub model: PathBuf,
    /// Print `{"rows": N, "<predictor>": {"mape", "median_ape", "spearman"}, ...}`.
    #[arg(long)]
    pub json: bool,
    /// Write predicted-vs-measured scatter plots (PNG, log-log) into this folder (replaced as a
    /// whole).
    #[arg(long, value_name = "DIR")]
    pub plot: Option<PathBuf>,
    /// Write every row's prediction per predictor, with the analytical roofline's terms, as CSV
    /// (for analysing where a predictor errs).
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
}

/// The per-row CSV of `predict --csv` and `fit --held-out-csv`: for each row its evaluation
/// (a first `split` column when `split` is given), its index in its file, the layer, the
/// mapping, the measured cycles, each predictor's cycles (`preds[p][k]` for the k-th row) and
/// the roofline's terms (empty without the analytical model).
pub(super) fn rows_csv(
    rows: &[(usize, &data::Sample)],
    split: Option<&[&str]>,
    preds: &[(&str, Vec<f64>)],
    roof: Option<&dyn analytical::Roofline>,
) -> Result<String, String> {
    use std::fmt::Write as _;
    let num = |x: f64| crate::util::finite_or(x, 0.0).to_string();
    let mut out = String::from(if split.is_some() { "split," } else { "" });
    out.push_str("row,layer,mapping,measured");
    for (name, _) in preds {
        let _ = write!(out, ",{name}");
    }
    for t in analytical::TERM_NAMES {
        let _ = write!(out, ",roof_{t}");
    }
    out.push('\n');
    for (k, &(i, s)) in rows.iter().enumerate() {
        if let Some(sp) = split {
            let _ = write!(out, "{},", sp[k]);
        }
        let dims: Vec<String> = s.layer.dims.iter().map(|d| d.to_string()).collect();
        let _ = write!(
            out,
            "{i},{},\"{}\",{}",
            dims.join("_"),
            s.mapping,
            s.cycles.map(num).unwrap_or_default()
        );
        for (_, p) in preds {
            let _ = write!(out, ",{}", num(p[k]));
        }
        let terms = match roof {
            Some(r) => r.terms(&s.layer, &s.mapping)?.map(num),
            None => Default::default(),
        };
        let _ = write!(out, ",{}", terms.join(","));
        out.push('\n');
    }
    Ok(out)
}

/// What `dosa predict --json` prints, in this key order; a predictor the model or build lacks is
/// left out.
#[derive(serde::Serialize)]
struct PredictReport {
    rows: usize,
    /// Rows and layers of the file the model was trained on (figures on those are no test).
    training_overlap: crate::learn::predictor::Overlap,
    #[serde(skip_serializing_if = "Option::is_none")]
    analytical: Option<AccuracyJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dnn: Option<AccuracyJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    both: Option<AccuracyJson>,
    /// The same figures on Gemmini's own tiles (`dse.auto_tiling`), when the file has them.
    #[serde(skip_serializing_if = "Option::is_none")]
    gemmini_auto: Option<AutoReport>,
}

#[derive(serde::Serialize)]
struct AutoReport {
    rows: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    analytical: Option<AccuracyJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dnn: Option<AccuracyJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    both: Option<AccuracyJson>,
}

/// Predictions of every available predictor for Gemmini's own tiles, in report order.
fn predict_autos(
    autos: &[data::AutoRow],
    model: &LatencyModel,
    roof: Option<&dyn analytical::Roofline>,
) -> Result<Vec<(&'static str, Vec<f64>)>, String> {
    let mut out = Vec::new();
    if roof.is_some() {
        out.push(("analytical", train::predict_autos(autos, None, roof)?));
    }
    for p in [crate::ir::Predictor::Dnn, crate::ir::Predictor::Both] {
        if let Some(l) = model.get(p) {
            if p == crate::ir::Predictor::Both && roof.is_none() {
                continue;
            }
            out.push((p.name(), train::predict_autos(autos, Some(l), roof)?));
        }
    }
    Ok(out)
}

fn print_table(preds: &[(&str, Vec<f64>)], meas: &[f64]) {
    outln!(
        "{:<11} {:>9} {:>11} {:>9}",
        "predictor",
        "MAPE %",
        "median APE",
        "Spearman"
    );
    for (name, p) in preds {
        let a = error_stats(p, meas);
        outln!(
            "{:<11} {:>9.2} {:>11.2} {:>9.4}",
            name,
            a.mape,
            a.median_ape,
            a.spearman
        );
    }
}

/// Predictions of every available predictor for the rows, in report order.
pub fn predict_all(
    samples: &[data::Sample],
    model: &LatencyModel,
    roof: Option<&dyn analytical::Roofline>,
) -> Result<Vec<(&'static str, Vec<f64>)>, String> {
    let pts: Vec<_> = samples.iter().map(|s| (&s.layer, &s.mapping)).collect();
    let mut out = Vec::new();
    if let Some(r) = roof {
        let a = pts
            .iter()
            .map(|(l, m)| r.cycles(l, m))
            .collect::<Result<Vec<_>, _>>()?;
        out.push(("analytical", a));
    }
    // Report order is fixed (dnn before both) whatever the file order.
    for p in [crate::ir::Predictor::Dnn, crate::ir::Predictor::Both] {
        if let Some(l) = model.get(p) {
            if p == crate::ir::Predictor::Both && roof.is_none() {
                continue;
            }
            out.push((p.name(), l.predict(&pts, roof)?));
        }
    }
    Ok(out)
}

/// Run `dosa predict`.
pub fn run(args: PredictArgs) -> Result<i32, CliError> {
    if let Some(dir) = &args.plot {
        crate::emit::output::check_dir(dir, &|e| {
            matches!(e, "analytical.png" | "dnn.png" | "both.png")
        })
        .map_err(CliError::Usage)?;
    }
    super::require_file(&args.model)?;
    super::require_file(&args.rtl)?;
    let model =
        LatencyModel::load(&args.model).map_err(|e| CliError::Input(format!("error: {e}")))?;
    let samples =
        data::load_csv(&args.rtl, true).map_err(|e| CliError::Input(format!("error: {e}")))?;
    let roof = analytical::default_roofline();
    if roof.is_none() {
        eprintln!("note: the analytical model is not available in this build; reporting learned predictors only");
    }
    let preds = predict_all(&samples, &model, roof.as_deref())
        .map_err(|e| CliError::Input(format!("error: {e}")))?;
    let autos = data::load_auto(&args.rtl).map_err(|e| CliError::Input(format!("error: {e}")))?;
    let auto_preds = predict_autos(&autos, &model, roof.as_deref())
        .map_err(|e| CliError::Input(format!("error: {e}")))?;
    let auto_meas: Vec<f64> = autos.iter().map(|a| a.cycles).collect();
    let overlap = model.overlap(&samples);
    if overlap.rows > 0 || overlap.layers > 0 {
        eprintln!(
            "note: the model was trained on {} of these {} rows and {} of their {} layers; \
             its figures on them are not a held-out test (`dosa fit --searched` reports layer-disjoint ones)",
            overlap.rows,
            samples.len(),
            overlap.layers,
            overlap.file_layers
        );
    }
    let meas: Vec<f64> = samples.iter().map(|s| s.cycles.unwrap_or(1.0)).collect();
    if let Some(path) = &args.csv {
        let rows: Vec<(usize, &data::Sample)> = samples.iter().enumerate().collect();
        let text = rows_csv(&rows, None, &preds, roof.as_deref())
            .map_err(|e| CliError::Input(format!("error: {e}")))?;
        crate::emit::output::commit_file(path, text.as_bytes())
            .map_err(|e| CliError::write(path, &e))?;
    }
    if let Some(dir) = &args.plot {
        // Render everything first, so a plotting failure writes no file.
        let mut pngs = Vec::new();
        for (name, p) in &preds {
            let a = error_stats(p, &meas);
            let title = format!(
                "{name}: {} rows, MAPE {:.1}%, Spearman {:.3}",
                samples.len(),
                a.mape,
                a.spearman
            );
            let pts: Vec<(f64, f64)> = meas.iter().copied().zip(p.iter().copied()).collect();
            let png = scatter_loglog(
                &title,
                "measured RTL cycles",
                "predicted cycles",
                &pts,
                true,
            )
            .map_err(CliError::Input)?;
            pngs.push((format!("{name}.png"), png));
        }
        crate::emit::output::commit_dir(dir, &pngs).map_err(|e| CliError::write(dir, &e))?;
    }
    if args.json {
        let get = |n: &str| {
            preds
                .iter()
                .find(|(name, _)| *name == n)
                .map(|(_, p)| AccuracyJson::from(error_stats(p, &meas)))
        };
        let get_auto = |n: &str| {
            auto_preds
                .iter()
                .find(|(name, _)| *name == n)
                .map(|(_, p)| AccuracyJson::from(error_stats(p, &auto_meas)))
        };
        let report = PredictReport {
            rows: samples.len(),
            training_overlap: overlap,
            analytical: get("analytical"),
            dnn: get("dnn"),
            both: get("both"),
            gemmini_auto: (!autos.is_empty()).then(|| AutoReport {
                rows: autos.len(),
                analytical: get_auto("analytical"),
                dnn: get_auto("dnn"),
                both: get_auto("both"),
            }),
        };
        outln!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        outln!("{} rows", samples.len());
        print_table(&preds, &meas);
        if !autos.is_empty() {
            outln!(
                "Gemmini's own tiles (dse.auto_tiling): {} rows",
                autos.len()
            );
            print_table(&auto_preds, &auto_meas);
        }
    }
    Ok(0)
}
