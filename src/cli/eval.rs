//! `dosa eval FILE [--json]`: latency, energy, EDP, access counts and minimum hardware of every
//! mapping in a program, on the hardware the mappings need together.

use super::CliError;
use crate::model::report::{evaluate_program_with, render_text};
use clap::Args;
use std::path::PathBuf;

/// `dosa eval ...`
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// The .dosa file whose mappings to evaluate.
    pub file: PathBuf,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Follow Timeloop's integer rounding (cycles per level, whole blocks), as the reference data does.
    #[arg(long)]
    pub timeloop: bool,
}

/// Run the command.
pub fn run(args: EvalArgs) -> Result<i32, CliError> {
    if !args.file.is_file() {
        return Err(CliError::Usage(format!(
            "no such file: {}",
            args.file.display()
        )));
    }
    let program = crate::syntax::load_path(&args.file).map_err(CliError::Input)?;
    if program.mappings.is_empty() {
        return Err(CliError::Input(format!(
            "{}: the program maps no layer; nothing to evaluate",
            args.file.display()
        )));
    }
    let report = evaluate_program_with(&program, args.timeloop)
        .map_err(|errs| CliError::Input(errs.join("\n")))?;
    if args.json {
        let text =
            serde_json::to_string_pretty(&report).map_err(|e| CliError::Input(e.to_string()))?;
        outln!("{text}");
    } else {
        out!("{}", render_text(&report));
    }
    Ok(0)
}
