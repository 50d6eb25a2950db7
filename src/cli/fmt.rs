//! `dosa fmt FILE...`: rewrite `.dosa` files in canonical form, keeping comments.

use super::CliError;
use crate::syntax::{format_bytes, Formatted};
use clap::Args;
use std::path::{Path, PathBuf};

/// `dosa fmt`: by default rewrites each file in place (atomically, only if it changes; all files
/// or, on a write error, none).
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
                .map_err(|e| CliError::read(Path::new("standard input"), &e))?
        } else {
            crate::util::read_file_capped(Path::new(f))
                .map_err(|e| CliError::read(Path::new(f), &e))?
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
    // In-place rewrites are collected and committed together: all temp files first, then the
    // renames, so a full disk changes no file (see `crate::emit::output`).
    let mut rewrites: Vec<(PathBuf, &str)> = Vec::new();
    for (f, text, out) in &outputs {
        if args.check {
            if out.as_bytes() != text.as_slice() {
                eprintln!("{f}: not formatted");
                unformatted = true;
            }
        } else if args.stdout || *f == "-" {
            out!("{out}");
        } else if out.as_bytes() != text.as_slice() {
            rewrites.push((PathBuf::from(f), out.as_str()));
        }
    }
    if !rewrites.is_empty() {
        crate::emit::output::commit_files(&rewrites).map_err(|e| {
            let names: Vec<String> = rewrites
                .iter()
                .map(|(p, _)| p.display().to_string())
                .collect();
            CliError::write(Path::new(&names.join(", ")), &e)
        })?;
    }
    Ok(i32::from(unformatted))
}
