//! `dosa fit`: train the learned RTL-latency predictors on measured cycles and write a model file.

use super::CliError;
use crate::ir::Predictor;
use crate::learn::mlp::Activation;
use crate::learn::predictor::{HeldOut, SplitReport};
use crate::learn::{analytical, data, train, FitOptions};
use clap::Args;
use serde::Serialize;
use std::path::PathBuf;

/// `dosa fit --rtl CSV -o MODEL [--predictor both,dnn] [--seed S]`
#[derive(Args, Debug)]
pub struct FitArgs {
    /// Measured RTL cycles (columns `prob.*`, `mapping.mapping`, `target.gemmini_cycle`).
    #[arg(long, value_name = "CSV")]
    pub rtl: PathBuf,
    /// Measured RTL cycles of searched mappings (`gemmini_rtl_searched.csv` and files like it;
    /// repeatable): trained on with `--searched-weight`, and scored layer-disjointly (with
    /// Gemmini's own tiles when the file has `dse.auto_tiling`).
    #[arg(long, value_name = "CSV")]
    pub searched: Vec<PathBuf>,
    /// Copies of each searched row in training (0: score them only, never train on them).
    #[arg(long, default_value_t = crate::learn::train::SEARCHED_WEIGHT)]
    pub searched_weight: usize,
    /// Folds, by layer, of the score on searched mappings.
    #[arg(long, default_value_t = 4)]
    pub searched_folds: usize,
    /// Run only the searched-mapping evaluation (skip the two splits of `--rtl`).
    #[arg(long, requires = "searched")]
    pub searched_only: bool,
    /// Where to write the model (JSON).
    #[arg(short = 'o', long = "output", value_name = "MODEL")]
    pub output: PathBuf,
    /// Learned predictors to fit, comma-separated; the first is the file's default.
    #[arg(long, value_delimiter = ',', default_value = "both,dnn", value_parser = parse_predictor)]
    pub predictor: Vec<Predictor>,
    /// Seed of every random choice (splits, initial weights, shuffling).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Networks averaged per predictor.
    #[arg(long, default_value_t = 4)]
    pub ensemble: usize,
    /// Most epochs per network (early stopping usually ends sooner).
    #[arg(long, default_value_t = 1500)]
    pub epochs: usize,
    /// Hidden layer widths, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "16")]
    pub hidden: Vec<usize>,
    /// L2 penalty on the weights.
    #[arg(long, default_value_t = crate::learn::mlp::WEIGHT_DECAY)]
    pub weight_decay: f64,
    /// Adam step size.
    #[arg(long, default_value_t = 2e-3)]
    pub lr: f64,
    /// Huber threshold of the loss, in log latency (0.7: errors beyond a factor of 2 count
    /// linearly; 0: squared error). Robust to the few anomalous random rows (models/README.md).
    #[arg(long, default_value_t = crate::learn::mlp::HUBER)]
    pub huber: f64,
    /// Shrink of the learned correction toward the physical offset's model: `auto` fits it on
    /// the members' held-out layers (what transfers to unseen layers), a number in 0..=1 fixes
    /// it (1: none, the previous recipe).
    #[arg(long, default_value = "auto", value_parser = parse_shrink)]
    pub shrink: Shrink,
    /// Rows per epoch, drawn afresh each epoch from the (repeated) training rows (0: all of
    /// them): keeps the fit's time near that of the unrepeated data.
    #[arg(long, default_value_t = crate::learn::train::EPOCH_ROWS)]
    pub epoch_rows: usize,
    /// Hidden nonlinearity: tanh or gelu.
    #[arg(long, default_value = "tanh", value_parser = parse_activation)]
    pub activation: Activation,
    /// Cross-validate the held-out figures over this many folds (1: one 20% hold-out).
    #[arg(long, default_value_t = 1)]
    pub cv: usize,
    /// Repeat the held-out evaluations at this many seeds (`--seed`, `--seed` + 1, ...) and
    /// report each figure's mean, lowest and highest: other folds and initial weights move one
    /// seed's Spearman on the searched rows by about 0.005, more than many a change being
    /// compared. The model, its record and `--held-out-csv` are the first seed's.
    #[arg(long, default_value_t = 1, conflicts_with = "no_eval")]
    pub seeds: u64,
    /// Skip the held-out evaluations (faster; the file then records none).
    #[arg(long)]
    pub no_eval: bool,
    /// Print the held-out figures and each predictor's shrink as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also write every held-out row of the evaluations (split, row, layer, mapping, measured,
    /// each predictor's held-out prediction, roofline terms) as CSV, to see where the figures
    /// come from; with `--searched`, Gemmini's own tiles too (split `gemmini-auto`).
    #[arg(long, value_name = "FILE", conflicts_with = "no_eval")]
    pub held_out_csv: Option<PathBuf>,
}

fn parse_predictor(s: &str) -> Result<Predictor, String> {
    match s {
        "dnn" => Ok(Predictor::Dnn),
        "both" => Ok(Predictor::Both),
        "analytical" => Err("`analytical` has nothing to fit; choose `dnn` or `both`".into()),
        _ => Err(format!("unknown predictor `{s}` (expected dnn or both)")),
    }
}

fn parse_activation(s: &str) -> Result<Activation, String> {
    match s {
        "tanh" => Ok(Activation::Tanh),
        "gelu" => Ok(Activation::Gelu),
        _ => Err(format!("unknown activation `{s}` (expected tanh or gelu)")),
    }
}

/// Print held-out figures as a table (stdout).
pub fn print_table(reports: &[SplitReport]) {
    for r in reports {
        let how = if r.folds > 1 {
            format!("{}-fold cross-validation", r.folds)
        } else {
            "one hold-out".to_string()
        };
        let what = match r.split.as_str() {
            "searched" => "searched mappings, layer-disjoint".to_string(),
            "gemmini-auto" => "Gemmini's own tiles of those layers".to_string(),
            s => format!("held out by {s}"),
        };
        outln!(
            "{what} ({how}): {} test rows ({} layers), {} training rows per fit",
            r.test_rows,
            r.test_layers,
            r.train_rows
        );
        outln!(
            "  {:<11} {:>9} {:>11} {:>9}",
            "predictor",
            "MAPE %",
            "median APE",
            "Spearman"
        );
        for a in &r.accuracy {
            let name = &a.predictor;
            outln!(
                "  {:<11} {:>9.2} {:>11.2} {:>9.4}",
                name,
                a.mape,
                a.median_ape,
                a.spearman
            );
        }
    }
}

/// One held-out figure over the seeds of `--seeds`.
#[derive(Debug, Serialize)]
struct Spread {
    mean: f64,
    min: f64,
    max: f64,
}

impl Spread {
    fn of(v: &[f64]) -> Spread {
        Spread {
            mean: v.iter().sum::<f64>() / v.len().max(1) as f64,
            min: v.iter().copied().fold(f64::INFINITY, f64::min),
            max: v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }
}

/// A split's and predictor's figures over the seeds of `--seeds`.
#[derive(Debug, Serialize)]
struct OverSeeds {
    split: String,
    predictor: String,
    mape: Spread,
    median_ape: Spread,
    spearman: Spread,
}

/// Each (split, predictor) of the first run, with its figures gathered over every run (the runs
/// differ in seed only, so each holds the same splits and predictors).
fn over_seeds(runs: &[Vec<SplitReport>]) -> Vec<OverSeeds> {
    let mut out = Vec::new();
    for r in &runs[0] {
        for a in &r.accuracy {
            let found: Vec<&HeldOut> = runs
                .iter()
                .filter_map(|run| {
                    run.iter()
                        .filter(|x| x.split == r.split)
                        .flat_map(|x| &x.accuracy)
                        .find(|b| b.predictor == a.predictor)
                })
                .collect();
            let col = |f: fn(&HeldOut) -> f64| {
                Spread::of(&found.iter().map(|b| f(b)).collect::<Vec<_>>())
            };
            out.push(OverSeeds {
                split: r.split.clone(),
                predictor: a.predictor.clone(),
                mape: col(|b| b.mape),
                median_ape: col(|b| b.median_ape),
                spearman: col(|b| b.spearman),
            });
        }
    }
    out
}

fn print_over_seeds(figures: &[OverSeeds], first: u64, last: u64) {
    outln!("over seeds {first}-{last} (mean, lowest-highest):");
    outln!(
        "  {:<13} {:<11} {:>22} {:>24}",
        "split",
        "predictor",
        "MAPE %",
        "Spearman"
    );
    for f in figures {
        let (m, s) = (&f.mape, &f.spearman);
        outln!(
            "  {:<13} {:<11} {:>22} {:>24}",
            f.split,
            f.predictor,
            format!("{:.2} ({:.2}-{:.2})", m.mean, m.min, m.max),
            format!("{:.4} ({:.4}-{:.4})", s.mean, s.min, s.max)
        );
    }
}

/// The CSV of `--held-out-csv`, in the form of `predict --csv` with a first `split` column.
fn held_out_csv(
    rows: &[train::HeldOutRow],
    roof: Option<&dyn analytical::Roofline>,
) -> Result<String, String> {
    let Some(first) = rows.first() else {
        return super::predict::rows_csv(&[], Some(&[]), &[], roof);
    };
    // One column per predictor: every evaluation scores the same ones, in the same order.
    let names = |r: &train::HeldOutRow| -> Vec<String> {
        r.predictions.iter().map(|(n, _)| n.clone()).collect()
    };
    if rows.iter().any(|r| names(r) != names(first)) {
        return Err("error: the evaluations scored different predictors".into());
    }
    let preds: Vec<(&str, Vec<f64>)> = (0..first.predictions.len())
        .map(|p| {
            let v = rows.iter().map(|r| r.predictions[p].1).collect();
            (first.predictions[p].0.as_str(), v)
        })
        .collect();
    let idx: Vec<(usize, &data::Sample)> = rows.iter().map(|r| (r.row, &r.sample)).collect();
    let split: Vec<&str> = rows.iter().map(|r| r.split).collect();
    super::predict::rows_csv(&idx, Some(&split), &preds, roof)
}

/// `--shrink`: fitted (`auto`) or fixed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Shrink(pub Option<f64>);

fn parse_shrink(s: &str) -> Result<Shrink, String> {
    if s == "auto" {
        return Ok(Shrink(None));
    }
    match s.parse::<f64>() {
        Ok(a) if (0.0..=1.0).contains(&a) => Ok(Shrink(Some(a))),
        _ => Err(format!("`{s}` is not `auto` or a number in 0..=1")),
    }
}

/// Run `dosa fit`.
pub fn run(args: FitArgs) -> Result<i32, CliError> {
    let rates_ok = args.lr > 0.0
        && args.lr.is_finite()
        && args.weight_decay >= 0.0
        && args.weight_decay.is_finite()
        && args.huber >= 0.0
        && args.huber.is_finite();
    if args.hidden.is_empty()
        || args.hidden.contains(&0)
        || args.ensemble == 0
        || args.epochs == 0
        || args.seeds == 0
        || !rates_ok
    {
        return Err(CliError::Usage(
            "--hidden widths, --ensemble, --epochs, --seeds and --lr must be positive, --weight-decay and --huber not negative".into(),
        ));
    }
    let Some(last_seed) = args.seed.checked_add(args.seeds - 1) else {
        return Err(CliError::Usage("--seed + --seeds - 1 overflows".into()));
    };
    crate::util::check_writable_file(&args.output).map_err(CliError::Usage)?;
    if let Some(p) = &args.held_out_csv {
        crate::util::check_writable_file(p).map_err(CliError::Usage)?;
    }
    super::require_file(&args.rtl)?;
    let samples =
        data::load_csv(&args.rtl, true).map_err(|e| CliError::Input(format!("error: {e}")))?;
    let mut searched = Vec::new();
    let mut autos = Vec::new();
    for p in &args.searched {
        let err = |e: data::DataError| CliError::Input(format!("error: {e}"));
        let (rows, auto) = (
            data::load_csv(p, true).map_err(err)?,
            data::load_auto(p).map_err(err)?,
        );
        // Rows are numbered over all searched files, as the held-out CSV reports them.
        autos.extend(auto.into_iter().map(|mut a| {
            a.row += searched.len();
            a
        }));
        searched.extend(rows);
    }
    let roof = analytical::default_roofline();
    let opts = FitOptions {
        predictors: args.predictor.clone(),
        seed: args.seed,
        ensemble: args.ensemble,
        evaluate: !args.no_eval,
        k_folds: args.cv.max(1),
        searched_weight: args.searched_weight,
        searched_folds: args.searched_folds.max(2),
        searched_only: args.searched_only,
        shrink: args.shrink.0,
        config: crate::learn::mlp::TrainConfig {
            hidden: args.hidden.clone(),
            act: args.activation,
            max_epochs: args.epochs,
            weight_decay: args.weight_decay,
            lr: args.lr,
            epoch_rows: (args.epoch_rows > 0).then_some(args.epoch_rows),
            huber: (args.huber > 0.0).then_some(args.huber),
            ..Default::default()
        },
        ..Default::default()
    };
    let bar = super::progress::bar(
        train::planned_epochs(&opts, roof.is_some(), !searched.is_empty()) * args.seeds,
        "fitting",
    );
    let tick = || bar.inc(1);
    let input = |e: String| CliError::Input(format!("error: {e}"));
    let (model, rows) =
        train::fit_searched(&samples, &searched, &autos, roof.as_deref(), &opts, &tick)
            .map_err(input)?;
    let mut runs = vec![model.file.training.held_out.clone()];
    for seed in args.seed + 1..=last_seed {
        let o = FitOptions {
            seed,
            ..opts.clone()
        };
        let (held, _) = train::evaluate(&samples, &searched, &autos, roof.as_deref(), &o, &tick)
            .map_err(input)?;
        runs.push(held);
    }
    bar.finish_and_clear();
    let spread = (args.seeds > 1).then(|| over_seeds(&runs));
    // The model and the held-out CSV are written together: a failure leaves neither.
    let mut files = vec![(args.output.clone(), model.to_json())];
    if let Some(path) = &args.held_out_csv {
        let text = held_out_csv(&rows, roof.as_deref()).map_err(CliError::Input)?;
        files.push((path.clone(), text.into_bytes()));
    }
    crate::emit::output::commit_files(&files).map_err(|e| {
        let names: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
        CliError::write(std::path::Path::new(&names.join(", ")), &e)
    })?;
    let held = &model.file.training.held_out;
    if args.json {
        let predictors: Vec<serde_json::Value> = model
            .learned()
            .iter()
            .map(|l| serde_json::json!({"name": l.predictor().name(), "shrink": l.file.shrink}))
            .collect();
        let mut v = serde_json::json!({
            "rows": samples.len(),
            "searched_rows": searched.len(),
            "predictors": predictors,
            "held_out": held
        });
        if let Some(sp) = &spread {
            v["seeds"] = serde_json::json!({"first": args.seed, "last": last_seed, "figures": sp});
        }
        outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        print_table(held);
        if let Some(sp) = &spread {
            print_over_seeds(sp, args.seed, last_seed);
        }
        let names: Vec<String> = model
            .learned()
            .iter()
            .map(|l| format!("{} shrink {:.2}", l.predictor().name(), l.file.shrink))
            .collect();
        outln!(
            "wrote {} ({}; {} rows, {} of them searched)",
            args.output.display(),
            names.join(", "),
            samples.len() + searched.len(),
            searched.len()
        );
    }
    Ok(0)
}
