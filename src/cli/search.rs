//! `dosa search FILE` (the one-loop search) and `dosa baseline FILE --kind KIND`.

use super::CliError;
use crate::ir::{Network, Objective, Predictor, Program, SearchSpec};
use crate::search::design::{report as make_report, Exact, Scored};
use crate::search::output::{curve_csv, render_text, report_json, result_program};
use crate::search::report::Report;
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::time::Instant;

/// `--round-every 0` gets the message `round_every 0` gets in a file.
const ROUND_EVERY_ZERO: &str = "`round_every` must be at least 1";

/// Options shared by `search` and `baseline`; each overrides the file's `search` block.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// The .dosa file: a network (and optionally an architecture and search settings).
    pub file: PathBuf,
    /// Which network of the file, if it has several.
    #[arg(long)]
    pub network: Option<String>,
    #[arg(long)]
    pub seed: Option<u64>,
    #[arg(long, value_enum)]
    pub objective: Option<ObjectiveArg>,
    /// Bound on the PE array side.
    #[arg(long)]
    pub pe_max: Option<u64>,
    /// Bound on the physical scratchpad, KiB.
    #[arg(long)]
    pub sp_max_kib: Option<f64>,
    /// Bound on the physical accumulator, KiB.
    #[arg(long)]
    pub acc_max_kib: Option<f64>,
    /// Print only the JSON report on stdout.
    #[arg(long)]
    pub json: bool,
    /// Write result.dosa, report.json, curve.csv and curve.png into this folder, replacing an
    /// earlier result there as a whole (a folder with other files is refused).
    #[arg(short = 'o', long = "out")]
    pub out: Option<PathBuf>,
    /// Report `seconds` as 0 so that two runs are byte-identical.
    #[arg(long)]
    pub no_timing: bool,
    /// `free`: design the array and buffers too; `fixed`: map onto the architecture's sizes.
    /// Default: fixed when the file's own `arch` fixes every size, else free.
    #[arg(long, value_enum)]
    pub hardware: Option<HardwareArg>,
    /// `gemmini`: only mappings Gemmini's C library runs (the default); `free`: anything the
    /// cost model accepts, as Timeloop's mapper searches (`emit gemmini` refuses what Gemmini
    /// cannot run).
    #[arg(long, value_enum)]
    pub mapspace: Option<MapspaceArg>,
}

/// The mapspace on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum MapspaceArg {
    Gemmini,
    Free,
}

/// The hardware mode on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum HardwareArg {
    Free,
    Fixed,
}

/// The objective on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ObjectiveArg {
    Edp,
    Energy,
    Latency,
}

impl From<ObjectiveArg> for Objective {
    fn from(o: ObjectiveArg) -> Objective {
        match o {
            ObjectiveArg::Edp => Objective::Edp,
            ObjectiveArg::Energy => Objective::Energy,
            ObjectiveArg::Latency => Objective::Latency,
        }
    }
}

/// The latency predictor on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum PredictorArg {
    Analytical,
    Dnn,
    Both,
}

/// How a suite search combines its networks (`--suite-objective`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SuiteObjectiveArg {
    Product,
    Totals,
}

/// `dosa search FILE [options]`.
#[derive(Args, Debug)]
pub struct SearchArgs {
    #[command(flatten)]
    pub common: Common,
    /// More .dosa files: a suite search designs one hardware for every network of every file,
    /// each network with its own mappings (README "Suite search").
    #[arg(value_name = "MORE")]
    pub more: Vec<PathBuf>,
    /// Suite only: one whole-number weight per network (how often it runs), in file order;
    /// default 1 each.
    #[arg(long, value_delimiter = ',')]
    pub weights: Option<Vec<u64>>,
    /// Suite only: `product` minimises the weighted geometric mean of the networks' own
    /// objectives (each network counts by its weight, whatever its size); `totals` the objective
    /// of the weighted totals (the suite run as one workload, network n run w_n times)
    #[arg(long, value_enum, default_value_t = SuiteObjectiveArg::Product)]
    pub suite_objective: SuiteObjectiveArg,
    #[arg(long)]
    pub starts: Option<u32>,
    #[arg(long)]
    pub steps: Option<u32>,
    #[arg(long)]
    pub round_every: Option<u32>,
    #[arg(long)]
    pub lr: Option<f64>,
    /// Latency predictor the search optimises against.
    #[arg(long, value_enum)]
    pub predictor: Option<PredictorArg>,
    /// Trained latency model for `--predictor dnn|both` (default: models/gemmini-rtl.json).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Also run the random, bo and gemmini-default baselines at the same budget: one table (each
    /// method's network cycles and EDP, with the EDP floor no design can beat under this model),
    /// one plot.
    #[arg(long)]
    pub compare: bool,
}

/// Which baseline.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum BaselineKind {
    /// 10 random hardware configurations, random legal mappings on each.
    Random,
    /// Bayesian optimisation over the hardware (30 points: 5 random, then by expected
    /// improvement under a Gaussian process), random legal mappings on each.
    Bo,
    /// Gemmini's shipped hardware with its own tiler.
    GemminiDefault,
}

/// `dosa baseline FILE --kind KIND`.
#[derive(Args, Debug)]
pub struct BaselineArgs {
    #[command(flatten)]
    pub common: Common,
    #[arg(long, value_enum)]
    pub kind: BaselineKind,
    /// Network samples (hardware points x mappings per layer) for `random` (10 points) and `bo`
    /// (30 points, fewer mappings each); default = the search's budget (starts x steps).
    #[arg(long)]
    pub samples: Option<u64>,
}

/// What a `search`/`baseline` `-o` folder holds (`alone/` of a suite search): an earlier result
/// there may be replaced whole.
fn is_search_output(name: &str) -> bool {
    matches!(
        name,
        "result.dosa"
            | "report.json"
            | "curve.csv"
            | "curve.png"
            | "compare.txt"
            | "compare.json"
            | "random"
            | "bo"
            | "gemmini-default"
            | "alone"
    )
}

fn load(c: &Common) -> Result<(Program, Network, SearchSpec), CliError> {
    if let Some(dir) = &c.out {
        crate::emit::output::check_dir(dir, &is_search_output).map_err(CliError::Usage)?;
    }
    super::require_file(&c.file)?;
    let program = crate::syntax::load_path(&c.file).map_err(CliError::Input)?;
    let net = pick_network(c, &program)?;
    let spec = spec_of(c, &program)?;
    Ok((program, net, spec))
}

/// The network of `program` to search: `--network`, else the only one.
fn pick_network(c: &Common, program: &Program) -> Result<Network, CliError> {
    Ok(match &c.network {
        Some(n) => program
            .networks
            .iter()
            .find(|x| &x.name == n)
            .cloned()
            .ok_or_else(|| CliError::Usage(format!("no network `{n}` in {}", c.file.display())))?,
        None => match program.networks.as_slice() {
            [one] => one.clone(),
            [] => {
                return Err(CliError::Usage(format!(
                    "{} defines no network to search",
                    c.file.display()
                )))
            }
            many => {
                return Err(CliError::Usage(format!(
                    "{} defines {} networks; choose one with --network ({})",
                    c.file.display(),
                    many.len(),
                    many.iter()
                        .map(|n| n.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )))
            }
        },
    })
}

/// The file's search settings with the command line's overrides, bounds checked.
fn spec_of(c: &Common, program: &Program) -> Result<SearchSpec, CliError> {
    let mut spec = program.search.clone();
    // Bounds on the command line ask for a co-design within them.
    if c.pe_max.is_some() || c.sp_max_kib.is_some() || c.acc_max_kib.is_some() {
        spec.hardware = Some(crate::ir::HardwareMode::Free);
    }
    if let Some(h) = c.hardware {
        spec.hardware = Some(match h {
            HardwareArg::Free => crate::ir::HardwareMode::Free,
            HardwareArg::Fixed => crate::ir::HardwareMode::Fixed,
        });
    }
    if let Some(m) = c.mapspace {
        spec.mapspace = match m {
            MapspaceArg::Gemmini => crate::ir::Mapspace::Gemmini,
            MapspaceArg::Free => crate::ir::Mapspace::Free,
        };
    }
    if let Some(s) = c.seed {
        spec.seed = s;
    }
    if let Some(o) = c.objective {
        spec.objective = o.into();
    }
    if c.pe_max.is_some() {
        spec.bounds.pe_max = c.pe_max;
    }
    if c.sp_max_kib.is_some() {
        spec.bounds.sp_max_kib = c.sp_max_kib;
    }
    if c.acc_max_kib.is_some() {
        spec.bounds.acc_max_kib = c.acc_max_kib;
    }
    for (name, v) in [
        ("--sp-max-kib", c.sp_max_kib),
        ("--acc-max-kib", c.acc_max_kib),
    ] {
        if v.is_some_and(|v| !(v.is_finite() && v > 0.0)) {
            return Err(CliError::Usage(format!("{name} must be a positive number")));
        }
    }
    if c.pe_max == Some(0) {
        return Err(CliError::Usage("--pe-max must be at least 1".into()));
    }
    // The file's own bounds were checked with it; what is left comes from the flags.
    if let Some(u) = crate::search::design::unmeetable_bounds(&program.arch, &spec.bounds).first() {
        use crate::search::design::BoundKind;
        let (flag, value) = match u.kind {
            BoundKind::Pe => ("--pe-max", c.pe_max.map(|v| v.to_string())),
            BoundKind::Scratchpad => ("--sp-max-kib", c.sp_max_kib.map(|v| v.to_string())),
            BoundKind::Accumulator => ("--acc-max-kib", c.acc_max_kib.map(|v| v.to_string())),
        };
        return Err(CliError::Usage(format!(
            "{flag} {} cannot be met by any design: {}; the least is {}",
            value.unwrap_or_default(),
            u.why,
            u.least
        )));
    }
    Ok(spec)
}

/// Print or write a finished run.
#[allow(clippy::too_many_arguments)]
fn finish(
    c: &Common,
    program: &Program,
    net: &Network,
    spec: &SearchSpec,
    s: &Scored,
    reports: &[&Report],
    others: &[&Scored],
    floor: f64,
) -> Result<i32, CliError> {
    let floor_report = crate::search::report::FloorReport {
        edp: crate::util::finite_or(floor, 0.0),
    };
    let reports: Vec<Report> = reports
        .iter()
        .map(|r| {
            let mut r = (*r).clone();
            r.floor = Some(floor_report.clone());
            r
        })
        .collect();
    let reports: Vec<&Report> = reports.iter().collect();
    let reports = &reports[..];
    let compare = reports.len() > 1;
    let floor = compare.then_some(floor);
    let main = reports[0];
    let comparison = || {
        let doc = crate::search::report::Comparison {
            methods: reports.to_vec(),
            floor: floor_report.clone(),
        };
        let mut j = serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".into());
        j.push('\n');
        j
    };
    let layer_values = net.layers.iter().zip(&s.costs).map(|(l, c)| {
        crate::model::report::finite_values(
            &format!("layer `{}.{}`", net.name, l.name),
            [
                ("latency".to_string(), c.0),
                ("energy".to_string(), c.1),
                ("EDP".to_string(), c.0 * c.1),
            ],
        )
    });
    layer_values
        .chain([crate::model::report::finite_values(
            &format!("network `{}`", net.name),
            [
                ("latency (count-weighted)".to_string(), s.latency),
                ("energy (count-weighted)".to_string(), s.energy),
                ("EDP".to_string(), s.edp()),
            ],
        )])
        .collect::<Result<Vec<()>, String>>()
        .map_err(|e| CliError::Input(format!("error: {e}")))?;
    // Files first: a reader that closes standard output early must not cost the files.
    if let Some(dir) = &c.out {
        let result = result_program(&program.arch, net, s, spec);
        let src = crate::syntax::program_to_source(&result);
        // The result must read back: a design that does not is a bug, not an output.
        crate::syntax::load_text("result.dosa", &src).map_err(|e| {
            CliError::Input(format!("internal error: result.dosa does not check:\n{e}"))
        })?;
        let png = crate::emit::curve::curve_png(reports, floor).map_err(CliError::Input)?;
        let mut files: Vec<(&str, Vec<u8>)> = vec![
            ("result.dosa", src.into_bytes()),
            ("report.json", report_json(main).into_bytes()),
            ("curve.csv", curve_csv(reports).into_bytes()),
            ("curve.png", png),
        ];
        // Every other method's design in its own folder.
        let mut names: Vec<String> = Vec::new();
        let mut bodies: Vec<Vec<u8>> = Vec::new();
        for (r, o) in reports[1..].iter().zip(others) {
            let src =
                crate::syntax::program_to_source(&result_program(&program.arch, net, o, spec));
            names.push(format!("{}/result.dosa", r.method));
            bodies.push(src.into_bytes());
            names.push(format!("{}/report.json", r.method));
            bodies.push(report_json(r).into_bytes());
        }
        files.extend(names.iter().map(|n| n.as_str()).zip(bodies));
        if compare {
            files.push(("compare.txt", comparison_table(reports, floor).into_bytes()));
            files.push(("compare.json", comparison().into_bytes()));
        }
        crate::emit::output::commit_dir(dir, &files).map_err(|e| CliError::write(dir, &e))?;
    }
    if c.json && compare {
        out!("{}", comparison());
    } else if c.json {
        out!("{}", report_json(main));
    } else {
        for r in reports {
            outln!("{}", render_text(r));
        }
        if reports.len() > 1 {
            out!("{}", comparison_table(reports, floor));
        }
    }
    Ok(0)
}

/// One row per method: its network latency (predicted RTL cycles under `--predictor both`, the
/// comparison the research method headlines), its EDP and the ratio of its EDP to the first's;
/// with a `floor` (a lower bound on EDP), one more row for it and a column of every method's
/// ratio to it, so a reader sees how much room is left.
pub fn comparison_table(reports: &[&Report], floor: Option<f64>) -> String {
    use std::fmt::Write as _;
    let ratio = |a: f64, b: f64| crate::util::finite_or(a / b, 0.0);
    let mut o =
        String::from("method            evaluations        cycles   network EDP     vs first");
    o.push_str(if floor.is_some() {
        "   vs floor\n"
    } else {
        "\n"
    });
    let base = reports[0].network.edp;
    for r in reports {
        let _ = write!(
            o,
            "{:<16}  {:>11}  {:>12.4e}  {:>12.4e}  {:>9.2}x",
            r.method,
            r.evaluations,
            crate::util::finite_or(r.network.latency_cycles, 0.0),
            r.network.edp,
            ratio(r.network.edp, base)
        );
        match floor {
            Some(f) => {
                let _ = writeln!(o, "  {:>9.2}x", ratio(r.network.edp, f));
            }
            None => o.push('\n'),
        }
    }
    if let Some(f) = floor {
        let f = crate::util::finite_or(f, 0.0);
        let _ = writeln!(
            o,
            "{:<16}  {:>11}  {:>12}  {:>12.4e}  {:>9.2}x  {:>9.2}x",
            "floor (bound)",
            "-",
            "-",
            f,
            ratio(f, base),
            1.0
        );
    }
    o
}

fn secs(c: &Common, t: Instant) -> f64 {
    if c.no_timing {
        0.0
    } else {
        t.elapsed().as_secs_f64()
    }
}

fn run_random(
    model: &dyn Exact,
    net: &Network,
    spec: &SearchSpec,
    samples: u64,
    c: &Common,
) -> (Scored, Report) {
    let t = Instant::now();
    let hw_samples = 10u32;
    let per_hw = (samples / hw_samples as u64).max(1) as u32;
    let (s, evals, curve) = crate::search::baseline::random_search(
        model,
        &net.layers,
        &spec.bounds,
        spec.objective,
        hw_samples,
        per_hw,
        spec.seed,
    );
    let r = make_report(
        "random",
        spec.objective,
        spec.seed,
        evals,
        secs(c, t),
        model.arch(),
        &net.layers,
        &s,
        curve,
    );
    (s, r)
}

/// Bayesian optimisation at a budget of `samples` network samples: [`crate::search::bo::HW_POINTS`]
/// hardware points (fewer if the budget is smaller) with `samples / points` mappings per layer.
fn run_bo(
    model: &dyn Exact,
    net: &Network,
    spec: &SearchSpec,
    samples: u64,
    c: &Common,
) -> (Scored, Report) {
    let t = Instant::now();
    let points = (crate::search::bo::HW_POINTS as u64).min(samples.max(1)) as u32;
    let per_point = (samples / points as u64).clamp(1, u32::MAX as u64) as u32;
    let (s, evals, curve) = crate::search::bo::bo_search(
        model,
        &net.layers,
        &spec.bounds,
        spec.objective,
        points,
        per_point,
        spec.seed,
    );
    let r = make_report(
        "bo",
        spec.objective,
        spec.seed,
        evals,
        secs(c, t),
        model.arch(),
        &net.layers,
        &s,
        curve,
    );
    (s, r)
}

/// The EDP floor for `--compare` ([`crate::search::floor`]): on the largest PE array any compared
/// design may use (the bound, else the search's default range, or Gemmini's shipped array if
/// larger, since `gemmini-default` ignores the bounds), with latency lowered by the most a learned
/// correction may take off under `--predictor both`.
fn edp_floor(arch: &crate::ir::Arch, net: &Network, spec: &SearchSpec) -> f64 {
    let pe_cap = spec
        .bounds
        .pe_max
        .unwrap_or(crate::search::baseline::PE_RANGE.1 as u64)
        .max(crate::gemmini::tiler::gemmini_params(arch).dim)
        .max(arch.pe_min);
    let f = crate::search::floor::network_floor(arch, &net.layers, pe_cap);
    let scale = match spec.predictor {
        Predictor::Both => crate::search::learned::MIN_LOG_CORRECTION.exp(),
        _ => 1.0,
    };
    f.latency * scale * f.energy
}

fn run_gemmini(
    model: &dyn Exact,
    net: &Network,
    spec: &SearchSpec,
    c: &Common,
) -> Result<(Scored, Report), CliError> {
    let t = Instant::now();
    let s =
        crate::search::baseline::gemmini_default(model, &net.layers).map_err(CliError::Input)?;
    let v = s.objective(spec.objective);
    let r = make_report(
        "gemmini-default",
        spec.objective,
        spec.seed,
        1,
        secs(c, t),
        model.arch(),
        &net.layers,
        &s,
        vec![(1, v)],
    );
    Ok((s, r))
}

/// `dosa search`.
pub fn run_search(a: SearchArgs) -> Result<i32, CliError> {
    if !a.more.is_empty() {
        return run_suite(a);
    }
    if a.weights.is_some() {
        return Err(CliError::Usage(
            "--weights weighs the networks of a suite: give several files (`dosa search A.dosa B.dosa --weights 1,2`)".into(),
        ));
    }
    let (program, net, mut spec) = load(&a.common)?;
    search_flags(&a, &mut spec)?;
    let engine =
        crate::search::Engine::new(&program.arch, &net.layers, &spec).map_err(CliError::Input)?;
    let run = engine.spec();
    let progress = super::progress::spinner(format!(
        "search: {} starts x {} steps on {} layers",
        run.starts,
        run.steps,
        net.layers.len()
    ));
    let t = Instant::now();
    let res = crate::search::dosa::search(engine.exact(), engine.relaxation(), &net.layers, run);
    let r = make_report(
        "search",
        spec.objective,
        spec.seed,
        res.evaluations,
        secs(&a.common, t),
        &program.arch,
        &net.layers,
        &res.best,
        res.curve.clone(),
    );
    let floor = edp_floor(&program.arch, &net, run);
    if !a.compare {
        progress.finish_and_clear();
        return finish(
            &a.common,
            &program,
            &net,
            &spec,
            &res.best,
            &[&r],
            &[],
            floor,
        );
    }
    progress.set_message("baseline random (--compare)");
    let (rs, rr) = run_random(engine.exact(), &net, run, res.evaluations, &a.common);
    progress.set_message("baseline bo (--compare)");
    let (bs, br) = run_bo(engine.exact(), &net, run, res.evaluations, &a.common);
    progress.set_message("baseline gemmini-default (--compare)");
    let (gs, gr) = run_gemmini(engine.exact(), &net, run, &a.common)?;
    progress.finish_and_clear();
    finish(
        &a.common,
        &program,
        &net,
        &spec,
        &res.best,
        &[&r, &rr, &br, &gr],
        &[&rs, &bs, &gs],
        floor,
    )
}

/// `dosa baseline`.
pub fn run_baseline(a: BaselineArgs) -> Result<i32, CliError> {
    let (program, net, spec) = load(&a.common)?;
    crate::model::exact::check_arch(&program.arch).map_err(|e| CliError::Input(e.to_string()))?;
    let (spec, fixed) =
        crate::search::mapping_target(&program.arch, &spec).map_err(CliError::Input)?;
    let model =
        crate::search::AnalyticalModel::new(&crate::search::search_arch(&program.arch, &spec))
            .with_fixed(fixed);
    let samples = a
        .samples
        .unwrap_or(spec.starts as u64 * spec.steps as u64)
        .max(1);
    let progress = super::progress::spinner(format!(
        "baseline {}",
        a.kind
            .to_possible_value()
            .map_or(String::new(), |v| v.get_name().to_string())
    ));
    let (s, r) = match a.kind {
        BaselineKind::Random => run_random(&model, &net, &spec, samples, &a.common),
        BaselineKind::Bo => run_bo(&model, &net, &spec, samples, &a.common),
        BaselineKind::GemminiDefault => run_gemmini(&model, &net, &spec, &a.common)?,
    };
    progress.finish_and_clear();
    let floor = edp_floor(&program.arch, &net, &spec);
    finish(&a.common, &program, &net, &spec, &s, &[&r], &[], floor)
}

/// The search's own flags (`--starts`, `--steps`, ...) over the file's settings.
fn search_flags(a: &SearchArgs, spec: &mut SearchSpec) -> Result<(), CliError> {
    if let Some(v) = a.starts {
        spec.starts = v;
    }
    if let Some(v) = a.steps {
        spec.steps = v;
    }
    if let Some(v) = a.round_every {
        if v == 0 {
            return Err(CliError::Usage(ROUND_EVERY_ZERO.into()));
        }
        spec.round_every = v;
    }
    if let Some(v) = a.lr {
        if !(v.is_finite() && v > 0.0) {
            return Err(CliError::Usage("--lr must be a positive number".into()));
        }
        spec.lr = v;
    }
    if let Some(p) = a.predictor {
        spec.predictor = match p {
            PredictorArg::Analytical => Predictor::Analytical,
            PredictorArg::Dnn => Predictor::Dnn,
            PredictorArg::Both => Predictor::Both,
        };
    }
    if let Some(m) = &a.model {
        spec.model = Some(m.display().to_string());
    }
    if spec.starts == 0 || spec.steps == 0 {
        return Err(CliError::Usage(
            "--starts and --steps must be at least 1".into(),
        ));
    }
    Ok(())
}

/// `dosa search A.dosa B.dosa ... [--weights ...]`: one hardware for every network of the files
/// ([`crate::search::suite`]), each network also searched alone and run with `gemmini-default`
/// for comparison.
fn run_suite(a: SearchArgs) -> Result<i32, CliError> {
    use crate::search::suite;
    let c = &a.common;
    if a.compare {
        return Err(CliError::Usage(
            "--compare is for one network; a suite search always compares each network's design alone and gemmini-default".into(),
        ));
    }
    if c.network.is_some() {
        return Err(CliError::Usage(
            "--network picks one network of one file; a suite takes every network of every file"
                .into(),
        ));
    }
    if let Some(dir) = &c.out {
        crate::emit::output::check_dir(dir, &is_search_output).map_err(CliError::Usage)?;
    }
    let files: Vec<&PathBuf> = std::iter::once(&c.file).chain(&a.more).collect();
    for f in &files {
        super::require_file(f)?;
    }
    let mut programs = Vec::new();
    for f in &files {
        programs.push(crate::syntax::load_path(f).map_err(CliError::Input)?);
    }
    let first = &programs[0];
    let mut networks: Vec<Network> = Vec::new();
    for (f, p) in files.iter().zip(&programs) {
        if p.arch != first.arch {
            return Err(CliError::Input(format!(
                "error: {} and {} describe different architectures (`{}` and `{}`); a suite designs one hardware for one architecture",
                files[0].display(),
                f.display(),
                first.arch.name,
                p.arch.name
            )));
        }
        if p.networks.is_empty() {
            return Err(CliError::Usage(format!(
                "{} defines no network to search",
                f.display()
            )));
        }
        for n in &p.networks {
            if networks.iter().any(|m| m.name == n.name) {
                return Err(CliError::Input(format!(
                    "error: two networks of the suite are named `{}` ({}); network names must be distinct",
                    n.name,
                    f.display()
                )));
            }
            networks.push(n.clone());
        }
    }
    let weights = match &a.weights {
        None => vec![1; networks.len()],
        Some(w) if w.len() != networks.len() => {
            return Err(CliError::Usage(format!(
                "--weights has {} values for {} networks ({})",
                w.len(),
                networks.len(),
                networks
                    .iter()
                    .map(|n| n.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
        Some(w) if w.contains(&0) => {
            return Err(CliError::Usage(
                "--weights must be whole numbers of at least 1".into(),
            ))
        }
        Some(w) => w.clone(),
    };
    // The first file's search settings, overridden by the flags.
    let mut spec = spec_of(c, first)?;
    search_flags(&a, &mut spec)?;
    // `product` weighs each network's objective by its weight; `totals` weighs its counts.
    let product = a.suite_objective == SuiteObjectiveArg::Product;
    let counts = if product {
        vec![1; networks.len()]
    } else {
        weights.clone()
    };
    let layers =
        suite::union(&networks, &counts).map_err(|e| CliError::Input(format!("error: {e}")))?;
    let goal = product.then(|| {
        let sizes: Vec<usize> = networks.iter().map(|n| n.layers.len()).collect();
        std::sync::Arc::new(crate::ir::SuiteObjective::new(&sizes, &weights))
    });
    let arch = &first.arch;
    let engine = crate::search::Engine::new_suite(arch, &layers, &spec, goal.clone())
        .map_err(CliError::Input)?;
    let run = engine.spec();
    let progress = super::progress::spinner(format!(
        "suite search: {} networks, {} starts x {} steps on {} layers",
        networks.len(),
        run.starts,
        run.steps,
        layers.len()
    ));
    let t = Instant::now();
    let res = crate::search::dosa::search(engine.exact(), engine.relaxation(), &layers, run);
    let seconds = secs(c, t);
    let shared = suite::split(engine.exact(), &networks, &res.best);
    // Each network alone, with the same settings: what sharing the hardware costs it.
    let t = Instant::now();
    let mut alone = Vec::new();
    for n in &networks {
        progress.set_message(format!("{} alone", n.name));
        let e = crate::search::Engine::new(arch, &n.layers, &spec).map_err(CliError::Input)?;
        alone
            .push(crate::search::dosa::search(e.exact(), e.relaxation(), &n.layers, e.spec()).best);
    }
    let alone_seconds = secs(c, t);
    progress.set_message("gemmini-default");
    let gemmini = networks
        .iter()
        .map(|n| crate::search::baseline::gemmini_default(engine.exact(), &n.layers))
        .collect::<Result<Vec<_>, _>>()
        .map_err(CliError::Input)?;
    progress.finish_and_clear();
    let report = suite::report(
        engine.exact(),
        goal.as_deref(),
        spec.objective,
        spec.seed,
        res.evaluations,
        (seconds, alone_seconds),
        &networks,
        &weights,
        &res.best,
        &shared,
        &alone,
        &gemmini,
    );
    let check = |what: &str, s: &crate::search::design::Scored| {
        crate::model::report::finite_values(
            what,
            [
                ("latency".to_string(), s.latency),
                ("energy".to_string(), s.energy),
                ("EDP".to_string(), s.edp()),
            ],
        )
    };
    std::iter::once(check("suite", &res.best))
        .chain(
            networks
                .iter()
                .zip(&shared)
                .map(|(n, s)| check(&format!("network `{}`", n.name), s)),
        )
        .collect::<Result<Vec<()>, String>>()
        .map_err(|e| CliError::Input(format!("error: {e}")))?;
    let mut json = serde_json::to_string_pretty(&report).unwrap_or_else(|_| "{}".into());
    json.push('\n');
    if let Some(dir) = &c.out {
        let result = crate::search::output::suite_program(&first.arch, &networks, &shared, &spec);
        let src = crate::syntax::program_to_source(&result);
        crate::syntax::load_text("result.dosa", &src).map_err(|e| {
            CliError::Input(format!("internal error: result.dosa does not check:\n{e}"))
        })?;
        let mut files: Vec<(String, Vec<u8>)> = vec![
            ("result.dosa".into(), src.into_bytes()),
            ("report.json".into(), json.clone().into_bytes()),
        ];
        // Each network's own design, numbered so that no two names collide.
        for (i, (n, s)) in networks.iter().zip(&alone).enumerate() {
            let p = crate::search::output::result_program(&first.arch, n, s, &spec);
            files.push((
                format!(
                    "alone/{}_{}.dosa",
                    i + 1,
                    crate::emit::c_identifier(&n.name)
                ),
                crate::syntax::program_to_source(&p).into_bytes(),
            ));
        }
        let files: Vec<(&str, Vec<u8>)> =
            files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
        crate::emit::output::commit_dir(dir, &files).map_err(|e| CliError::write(dir, &e))?;
    }
    if c.json {
        out!("{json}");
    } else {
        out!("{}", suite::render_text(&report));
    }
    Ok(0)
}
