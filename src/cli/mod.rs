//! The `dosa` command line: one file per command, each a clap `Args` struct and a `run`.
//!
//! Exit codes, one per kind of failure and the same in every command (README "Exit codes"):
//! 0 success; 1 the input is wrong (diagnostics printed; also `fmt --check` on unformatted
//! files); 2 usage (bad flags, a missing input file, an unusable `-o`, all found before any work);
//! 3 an I/O error after those checks (a read or write failed: disk full, permissions); nothing is
//! written. A SIGINT/SIGTERM/SIGHUP removes the temps and ends the process by that signal.
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
pub mod progress;

use clap::{Parser, Subcommand};
use std::sync::atomic::{AtomicU8, Ordering};

/// State of standard output: 0 open, 1 closed by the reader (broken pipe), 2 failed otherwise.
static STDOUT_STATE: AtomicU8 = AtomicU8::new(0);

/// Write `text` to standard output. When the reader has gone away (a broken pipe, as with
/// `| head -1`) the rest of the output is dropped silently; any other write error is reported
/// once on stderr and makes the command exit 3. Never panics.
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

/// Failure of a command, one kind per exit code: `Input` errors were already reported as
/// diagnostics (exit 1), `Usage` errors are bad flags or paths found before any work (exit 2),
/// `Io` errors are reads or writes the system refused afterwards (exit 3).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Io(String),
}

/// Exit code of a successful command.
pub const EXIT_OK: i32 = 0;
/// Exit code when the input has errors (diagnostics printed).
pub const EXIT_INPUT: i32 = 1;
/// Exit code of usage errors (clap's own code for bad flags).
pub const EXIT_USAGE: i32 = 2;
/// Exit code when a read or write fails after the up-front checks.
pub const EXIT_IO: i32 = 3;

impl CliError {
    /// The error for a failed read of input file `path`: a missing file (or a folder) is a usage
    /// error, an input over the size cap an input error, anything else an I/O error.
    pub fn read(path: &std::path::Path, e: &std::io::Error) -> CliError {
        let shown = path.display();
        match e.kind() {
            std::io::ErrorKind::NotFound => CliError::Usage(format!("no such file: {shown}")),
            std::io::ErrorKind::IsADirectory => {
                CliError::Usage(format!("{shown} is a folder, not a file"))
            }
            std::io::ErrorKind::InvalidData => {
                CliError::Input(format!("error: cannot read {shown}: {e}"))
            }
            _ => CliError::Io(format!("cannot read {shown}: {}", io_msg(e))),
        }
    }

    /// The error for a failed write of output `path` (exit 3).
    pub fn write(path: &std::path::Path, e: &std::io::Error) -> CliError {
        CliError::Io(format!(
            "cannot write {}: {}; nothing was written",
            path.display(),
            io_msg(e)
        ))
    }
}

/// An I/O error's message without Rust's ` (os error N)` suffix.
fn io_msg(e: &std::io::Error) -> String {
    let s = e.to_string();
    s.split(" (os error").next().unwrap_or_default().to_string()
}

/// Usage error unless `path` is an existing file (checked before any work).
pub fn require_file(path: &std::path::Path) -> Result<(), CliError> {
    if path.is_dir() {
        return Err(CliError::Usage(format!(
            "{} is a folder, not a file",
            path.display()
        )));
    }
    if !path.exists() {
        return Err(CliError::Usage(format!("no such file: {}", path.display())));
    }
    Ok(())
}

/// Parse the process arguments, run the command, return the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { EXIT_OK };
            let _ = e.print();
            return code;
        }
    };
    let code = main_code(cli);
    if code == EXIT_OK && STDOUT_STATE.load(Ordering::Relaxed) == 2 {
        EXIT_IO
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
            EXIT_INPUT
        }
        Err(CliError::Usage(msg)) => {
            eprintln!("error: {msg}");
            EXIT_USAGE
        }
        Err(CliError::Io(msg)) => {
            eprintln!("error: {msg}");
            EXIT_IO
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
