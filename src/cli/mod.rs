//! The `dosa` command line: one file per command, each a clap `Args` struct and a `run`.
//!
//! Exit codes: 0 success, 1 errors in the input (diagnostics printed), 2 usage errors.

pub mod check;
pub mod emit;
pub mod eval;
pub mod fmt;
pub mod import;
pub mod search;
pub mod tile;
pub mod validate;

pub mod fit;
pub mod predict;

use clap::{Parser, Subcommand};

/// Top-level parser; `dosa --help` lists the commands.
#[derive(Parser, Debug)]
#[command(
    name = "dosa",
    version,
    about = "Mapping-first design of DNN accelerators"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Every command that works today.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check .dosa files (with their imports) and report every error.
    Check(check::CheckArgs),
    /// Rewrite .dosa files in canonical form, keeping comments.
    Fmt(fmt::FmtArgs),
    /// Turn networks from other formats into .dosa.
    Import(import::ImportArgs),
    /// Design hardware and mappings together (the one-loop search).
    Search(search::SearchArgs),
    /// Run a baseline method with the same report format.
    Baseline(search::BaselineArgs),
    /// Tiles an accelerator's own library would pick for every layer (the default baseline).
    Tile(tile::TileArgs),
    /// Generate code or tool inputs from a program's mappings.
    Emit(emit::EmitArgs),
    /// Latency, energy, EDP, accesses and minimum hardware of a program's mappings.
    Eval(eval::EvalArgs),
    /// Check the cost model against Timeloop results (MAPE, percentiles, Spearman).
    Validate(validate::ValidateArgs),
    /// Train the learned RTL-latency predictors on measured cycles.
    Fit(fit::FitArgs),
    /// Score every latency predictor against measured RTL cycles.
    Predict(predict::PredictArgs),
}

/// Failure of a command: `Input` errors were already reported as diagnostics (exit 1),
/// `Usage` errors are bad flags or paths (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Usage(String),
}

/// Parse the process arguments, run the command, return the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    match run(cli.command) {
        Ok(code) => code,
        Err(CliError::Input(msg)) => {
            if !msg.is_empty() {
                eprintln!("{msg}");
            }
            1
        }
        Err(CliError::Usage(msg)) => {
            eprintln!("error: {msg}");
            2
        }
    }
}

/// Dispatch one command.
pub fn run(command: Command) -> Result<i32, CliError> {
    match command {
        Command::Check(a) => check::run(a),
        Command::Fmt(a) => fmt::run(a),
        Command::Import(a) => import::run(a),
        Command::Search(a) => search::run_search(a),
        Command::Baseline(a) => search::run_baseline(a),
        Command::Tile(a) => tile::run(a),
        Command::Emit(a) => emit::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Validate(a) => validate::run(a),
        Command::Fit(a) => fit::run(a),
        Command::Predict(a) => predict::run(a),
    }
}
