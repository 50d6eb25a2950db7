//! The `dosa` command line: one file per command, each a clap `Args` struct and a `run`.
//!
//! Exit codes: 0 success, 1 errors in the input (diagnostics printed), 2 usage errors.
//! A closed standard output (`dosa ... | head`) is not an error: output stops quietly, files
//! of `-o` are still written, and the exit code is what it would have been.

/// `print!` through [`out`]: a closed standard output ends output quietly instead of panicking.
macro_rules! out {
    ($($t:tt)*) => { $crate::cli::out(&format!($($t)*)) };
}

/// `println!` through [`out`].
macro_rules! outln {
    () => { $crate::cli::out("\n") };
    ($($t:tt)*) => { $crate::cli::out(&format!("{}\n", format_args!($($t)*))) };
}

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
use std::sync::atomic::{AtomicU8, Ordering};

/// State of standard output: 0 open, 1 closed by the reader (broken pipe), 2 failed otherwise.
static STDOUT_STATE: AtomicU8 = AtomicU8::new(0);

/// Write `text` to standard output. When the reader has gone away (a broken pipe, as with
/// `| head -1`) the rest of the output is dropped silently; any other write error is reported
/// once on stderr and makes the command exit 1. Never panics.
pub fn out(text: &str) {
    use std::io::Write;
    if STDOUT_STATE.load(Ordering::Relaxed) != 0 {
        return;
    }
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.write_all(text.as_bytes()).and_then(|()| o.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            STDOUT_STATE.store(1, Ordering::Relaxed);
        } else {
            STDOUT_STATE.store(2, Ordering::Relaxed);
            eprintln!("error: cannot write to standard output: {e}");
        }
    }
}

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
    let code = main_code(cli);
    if code == 0 && STDOUT_STATE.load(Ordering::Relaxed) == 2 {
        1
    } else {
        code
    }
}

fn main_code(cli: Cli) -> i32 {
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
