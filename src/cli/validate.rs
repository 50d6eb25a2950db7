//! `dosa validate --timeloop CSV [--json] [--plot DIR]`: the exact evaluator against Timeloop's own
//! results on every row of a reference CSV (MODEL.md: the data is the ground truth).
//!
//! For latency, energy and EDP it reports MAPE, median and 90th-percentile absolute percentage
//! error and Spearman's rank correlation. Rows that cannot be evaluated are counted and their
//! reasons summarised on stderr, never dropped silently.

use super::CliError;
use crate::emit::plot;
use crate::ir::gemmini_arch;
use crate::model::exact::{evaluate_layer, EvalOptions};
use crate::model::stats::{error_stats, ErrorStats};
use crate::model::timeloop::{read_csv, SkippedRow};
use clap::Args;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// `dosa validate ...`
#[derive(Args, Debug)]
pub struct ValidateArgs {
    /// Timeloop results in the reference data's CSV format.
    #[arg(long, value_name = "CSV")]
    pub timeloop: PathBuf,
    /// Print JSON: {"rows", "skipped", "latency", "energy", "edp"} (percentages as plain numbers).
    #[arg(long)]
    pub json: bool,
    /// Write one PNG per metric (relative error against the Timeloop value) into DIR (replaced
    /// as a whole).
    #[arg(long, value_name = "DIR")]
    pub plot: Option<PathBuf>,
}

/// The `--json` output.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ValidateReport {
    pub rows: usize,
    pub skipped: usize,
    pub latency: ErrorStats,
    pub energy: ErrorStats,
    pub edp: ErrorStats,
}

/// Predictions and ground truth of every evaluated row, plus the rows that were skipped.
pub struct Validation {
    /// `(predicted, reference)` per metric, in row order.
    pub latency: Vec<(f64, f64)>,
    pub energy: Vec<(f64, f64)>,
    pub edp: Vec<(f64, f64)>,
    pub skipped: Vec<SkippedRow>,
}

impl Validation {
    /// The summary statistics.
    pub fn report(&self) -> ValidateReport {
        let st = |v: &[(f64, f64)]| {
            let (p, t): (Vec<f64>, Vec<f64>) = v.iter().copied().unzip();
            error_stats(&p, &t)
        };
        ValidateReport {
            rows: self.latency.len(),
            skipped: self.skipped.len(),
            latency: st(&self.latency),
            energy: st(&self.energy),
            edp: st(&self.edp),
        }
    }
}

/// Evaluate every row of the CSV at `path` on the built-in Gemmini with Timeloop's rounding.
pub fn validate_csv(path: &std::path::Path) -> Result<Validation, String> {
    let arch = gemmini_arch();
    let (rows, mut skipped) = read_csv(path, &arch)?;
    let opts = EvalOptions::timeloop(&arch);
    let results: Vec<Result<(f64, f64, f64, f64), SkippedRow>> = rows
        .par_iter()
        .map(|r| {
            evaluate_layer(&arch, &r.layer, &r.mapping, &r.hw, &opts)
                .map(|e| (e.cycles, r.cycles, e.energy_uj, r.energy_uj))
                .map_err(|e| SkippedRow {
                    line: r.line,
                    reason: e.to_string(),
                })
        })
        .collect();
    let mut v = Validation {
        latency: vec![],
        energy: vec![],
        edp: vec![],
        skipped: vec![],
    };
    for res in results {
        match res {
            Ok((pc, tc, pe, te)) => {
                v.latency.push((pc, tc));
                v.energy.push((pe, te));
                v.edp.push((pc * pe, tc * te));
            }
            Err(s) => skipped.push(s),
        }
    }
    skipped.sort_by_key(|s| s.line);
    v.skipped = skipped;
    Ok(v)
}

/// Skip reasons with how often each occurs and the first line it occurs on, most frequent first.
pub fn summarise_skips(skipped: &[SkippedRow]) -> Vec<(String, usize, usize)> {
    let mut by: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for s in skipped {
        let e = by.entry(s.reason.as_str()).or_insert((0, s.line));
        e.0 += 1;
        e.1 = e.1.min(s.line);
    }
    let mut out: Vec<(String, usize, usize)> = by
        .into_iter()
        .map(|(r, (n, l))| (r.to_string(), n, l))
        .collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then(a.2.cmp(&b.2)));
    out
}

/// One PNG per metric: relative error (%) against the Timeloop value, on a log x-axis.
pub fn plots(v: &Validation) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut files = Vec::new();
    for (name, unit, data) in [
        ("latency", "cycles", &v.latency),
        ("energy", "uJ", &v.energy),
        ("edp", "cycles x uJ", &v.edp),
    ] {
        let pts: Vec<(f64, f64)> = data
            .iter()
            .map(|&(p, t)| (t, if t != 0.0 { (p - t) / t * 100.0 } else { 0.0 }))
            .collect();
        let png = plot::scatter_logx(
            &format!("dosa vs Timeloop: {name} ({} rows)", pts.len()),
            &format!("Timeloop {name} ({unit})"),
            "relative error (%)",
            &pts,
        )?;
        files.push((format!("validate_{name}.png"), png));
    }
    Ok(files)
}

/// Replace the folder `dir` by the files, all at once ([`crate::emit::output::commit_dir`]).
pub fn write_binary_files(
    dir: &std::path::Path,
    files: &[(String, Vec<u8>)],
) -> Result<(), std::io::Error> {
    crate::emit::output::commit_dir(dir, files)
}

/// Whether `entry` of a `--plot` folder is a plot `validate` writes.
fn is_validate_plot(entry: &str) -> bool {
    matches!(
        entry,
        "validate_latency.png" | "validate_energy.png" | "validate_edp.png"
    )
}

/// Render the report as text.
pub fn render_text(path: &std::path::Path, r: &ValidateReport) -> String {
    let mut s = format!(
        "{}: {} rows evaluated, {} skipped (Timeloop rounding on)\n\n",
        path.display(),
        r.rows,
        r.skipped
    );
    s.push_str(&format!(
        "{:<8} {:>12} {:>14} {:>12} {:>12}\n",
        "metric", "MAPE %", "median APE %", "p90 APE %", "Spearman"
    ));
    for (n, st) in [
        ("latency", &r.latency),
        ("energy", &r.energy),
        ("edp", &r.edp),
    ] {
        s.push_str(&format!(
            "{:<8} {:>12.6} {:>14.6} {:>12.6} {:>12.8}\n",
            n, st.mape, st.median_ape, st.p90_ape, st.spearman
        ));
    }
    s
}

/// Run the command.
pub fn run(args: ValidateArgs) -> Result<i32, CliError> {
    if let Some(dir) = &args.plot {
        crate::emit::output::check_dir(dir, &is_validate_plot).map_err(CliError::Usage)?;
    }
    super::require_file(&args.timeloop)?;
    let v = validate_csv(&args.timeloop).map_err(|e| CliError::Input(format!("error: {e}")))?;
    let report = v.report();
    if let Some(dir) = &args.plot {
        let files = plots(&v).map_err(CliError::Input)?;
        write_binary_files(dir, &files).map_err(|e| CliError::write(dir, &e))?;
    }
    if !v.skipped.is_empty() {
        eprintln!("{} row(s) skipped:", v.skipped.len());
        for (reason, n, line) in summarise_skips(&v.skipped).iter().take(10) {
            eprintln!("  {n} x {reason} (first at line {line})");
        }
    }
    if args.json {
        let text =
            serde_json::to_string_pretty(&report).map_err(|e| CliError::Input(e.to_string()))?;
        outln!("{text}");
    } else {
        out!("{}", render_text(&args.timeloop, &report));
    }
    Ok(0)
}
