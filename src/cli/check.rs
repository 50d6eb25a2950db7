//! `dosa check FILE...`: load, check and optionally print the IR of `.dosa` files.

use super::CliError;
use crate::syntax::{check_path, check_stdin, Outcome};
use clap::{Args, ValueEnum};
use std::path::Path;

/// What `--emit` prints for each clean file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Emit {
    /// The checked program (IR) as JSON.
    Ir,
}

/// `dosa check`: exit 0 when every file is clean, 1 when any has errors, 2 on usage errors.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The files to check; `-` reads standard input (its imports resolve from the current folder).
    #[arg(required = true)]
    pub files: Vec<String>,
    /// Print something for each clean file instead of a summary line: `ir` prints the IR as JSON.
    #[arg(long, value_enum)]
    pub emit: Option<Emit>,
}

/// Check every file; diagnostics go to stderr, summaries or JSON to stdout.
pub fn run(args: CheckArgs) -> Result<i32, CliError> {
    if args.files.iter().filter(|f| *f == "-").count() > 1 {
        return Err(CliError::Usage(
            "`-` (standard input) can be given only once".into(),
        ));
    }
    for f in &args.files {
        if f != "-" && (!Path::new(f).exists() || Path::new(f).is_dir()) {
            return Err(CliError::Usage(format!("no such file: {f}")));
        }
    }
    let mut failed = false;
    for f in &args.files {
        let outcome = if f == "-" {
            check_stdin()
        } else {
            check_path(Path::new(f))
        };
        failed |= !report(f, &outcome, args.emit)?;
    }
    Ok(i32::from(failed))
}

/// Print one file's result; returns whether it was clean.
fn report(name: &str, o: &Outcome, emit: Option<Emit>) -> Result<bool, CliError> {
    let rendered = o.render();
    if !rendered.is_empty() {
        eprint!("{rendered}");
    }
    let errors = o.error_count();
    let Some(p) = o.program.as_ref().filter(|_| errors == 0) else {
        let shown = if name == "-" { "<stdin>" } else { name };
        eprintln!(
            "{shown}: {errors} error{}",
            if errors == 1 { "" } else { "s" }
        );
        return Ok(false);
    };
    match emit {
        Some(Emit::Ir) => {
            let json = serde_json::to_string_pretty(p)
                .map_err(|e| CliError::Input(format!("cannot print the IR: {e}")))?;
            outln!("{json}");
        }
        None => {
            let layers: usize = p.networks.iter().map(|n| n.layers.len()).sum();
            outln!(
                "{}: ok (arch `{}`, {} network{}, {layers} layer{}, {} mapping{})",
                if name == "-" { "<stdin>" } else { name },
                p.arch.name,
                p.networks.len(),
                plural(p.networks.len()),
                plural(layers),
                p.mappings.len(),
                plural(p.mappings.len()),
            );
        }
    }
    Ok(true)
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
