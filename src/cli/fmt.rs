//! `dosa fmt FILE...`: rewrite `.dosa` files in canonical form, keeping comments.

use super::CliError;
use crate::syntax::{format_bytes, Formatted};
use crate::util::write_atomic;
use clap::Args;
use std::path::Path;

/// `dosa fmt`: by default rewrites each file in place (atomically, only if it changes).
#[derive(Args, Debug)]
pub struct FmtArgs {
    /// The files to format; `-` formats standard input to standard output.
    #[arg(required = true)]
    pub files: Vec<String>,
    /// Write nothing; exit 1 and name the files that are not formatted.
    #[arg(long, conflicts_with = "stdout")]
    pub check: bool,
    /// Print the formatted text to standard output instead of rewriting the files.
    #[arg(long)]
    pub stdout: bool,
}

/// Format every file; files are written only when all of them parsed.
pub fn run(args: FmtArgs) -> Result<i32, CliError> {
    if args.files.iter().filter(|f| *f == "-").count() > 1 {
        return Err(CliError::Usage(
            "`-` (standard input) can be given only once".into(),
        ));
    }
    let mut inputs = Vec::new();
    for f in &args.files {
        let text = if f == "-" {
            crate::util::read_capped(std::io::stdin())
                .map_err(|e| CliError::Usage(format!("cannot read standard input: {e}")))?
        } else {
            crate::util::read_file_capped(Path::new(f))
                .map_err(|e| CliError::Usage(format!("cannot read {f}: {e}")))?
        };
        inputs.push((f.clone(), text));
    }
    let mut failed = false;
    let mut outputs = Vec::new();
    for (f, text) in &inputs {
        let name = if f == "-" { "<stdin>" } else { f.as_str() };
        match format_bytes(name, text.clone()) {
            Formatted::Ok(out) => outputs.push((f, text, out)),
            Formatted::Err(diags) => {
                eprint!("{diags}");
                eprintln!("{name}: not formatted (it does not parse)");
                failed = true;
            }
        }
    }
    if failed {
        return Ok(1);
    }
    let mut unformatted = false;
    for (f, text, out) in outputs {
        if args.check {
            if out.as_bytes() != text.as_slice() {
                eprintln!("{f}: not formatted");
                unformatted = true;
            }
        } else if args.stdout || f == "-" {
            out!("{out}");
        } else if out.as_bytes() != text.as_slice() {
            write_atomic(Path::new(f), out.as_bytes())
                .map_err(|e| CliError::Input(format!("cannot write {f}: {e}")))?;
        }
    }
    Ok(i32::from(unformatted))
}
