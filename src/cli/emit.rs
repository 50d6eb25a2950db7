//! `dosa emit gemmini FILE -o DIR` (a bareMetalC program that checks and measures the mapped
//! layers on Gemmini)
//! and `dosa emit timeloop FILE -o DIR` (Timeloop inputs to cross-check them).

use super::CliError;
use crate::emit::{output, timeloop, EmittedFile};
use crate::gemmini::c::{self, loop_order_string, Api, GEMMINI_LOOP_ORDER};
use crate::ir::Program;
use clap::{Args, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};

/// `dosa emit ...`
#[derive(Args, Debug)]
pub struct EmitArgs {
    #[command(subcommand)]
    pub target: EmitTarget,
}

/// What to generate from a program's mappings.
#[derive(Subcommand, Debug)]
pub enum EmitTarget {
    /// A C program (and a parameter header) for gemmini-rocc-tests/bareMetalC that runs every
    /// mapped layer with its mapping's tiles and with Gemmini's own tiler, checks both results
    /// against a plain C reference and prints both cycle counts.
    Gemmini {
        /// The .dosa file whose mappings to emit.
        file: PathBuf,
        /// Output folder (created if missing; an earlier emit there is replaced as a whole).
        #[arg(short = 'o', long = "out")]
        out: PathBuf,
        /// `upstream`: Gemmini's fixed loop order; `dosa`: the research branch that takes the
        /// mapping's DRAM loop order as a string.
        #[arg(long, value_enum, default_value_t = ApiArg::Upstream)]
        api: ApiArg,
        /// Base name of the files and of the bareMetalC test (default: dosa_STEM, STEM being the
        /// input file name without its extension).
        #[arg(long)]
        name: Option<String>,
        /// Emit the timing-only program: no input data, no C reference, no comparison (for RTL
        /// simulation, where the reference loops would only cost time).
        #[arg(long)]
        no_verify: bool,
    },
    /// Timeloop architecture, problem and mapping YAML (v0.3: also an ERT) for every mapped layer.
    Timeloop {
        /// The .dosa file whose mappings to emit.
        file: PathBuf,
        /// Output folder (created if missing; an earlier emit there is replaced as a whole).
        #[arg(short = 'o', long = "out")]
        out: PathBuf,
        /// `v0.3`: what the shipped Timeloop (the fork behind the reference data) reads;
        /// `v0.4`: current Timeloop and timeloopfe.
        #[arg(long, value_enum, default_value_t = FormatArg::V03)]
        format: FormatArg,
    },
}

/// The `--format` values of `emit timeloop`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    #[value(name = "v0.3")]
    V03,
    #[value(name = "v0.4")]
    V04,
}

/// The `--api` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ApiArg {
    Upstream,
    Dosa,
}

fn default_name(file: &Path) -> String {
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("dosa_{stem}")
}

fn errors(list: Vec<String>) -> CliError {
    let mut msg: Vec<String> = list.into_iter().map(|e| format!("error: {e}")).collect();
    msg.push("error: nothing was written".to_string());
    CliError::Input(msg.join("\n"))
}

/// Replace the folder `out` by the files, all at once ([`output::commit_dir`]).
fn write(out: &Path, files: &[EmittedFile]) -> Result<String, CliError> {
    let pairs: Vec<(&str, &str)> = files
        .iter()
        .map(|f| (f.path.as_str(), f.contents.as_str()))
        .collect();
    output::commit_dir(out, &pairs).map_err(|e| CliError::write(out, &e))?;
    let names: Vec<String> = files
        .iter()
        .map(|f| out.join(&f.path).display().to_string())
        .collect();
    Ok(format!("wrote {}", names.join(", ")))
}

/// Whether a mapping's DRAM loops (those above 1) run in Gemmini's fixed order.
fn runs_in_gemmini_order(m: &crate::ir::Mapping) -> bool {
    let Some(top) = m.levels.last() else {
        return true;
    };
    let active: String = loop_order_string(m)
        .chars()
        .take_while(|c| {
            crate::ir::Dim::from_letter(*c).is_some_and(|d| top.temporal[d.index()] > 1)
        })
        .collect();
    let gemmini: String = GEMMINI_LOOP_ORDER
        .chars()
        .filter(|c| active.contains(*c))
        .collect();
    active == gemmini
}

/// `emit gemmini` on a loaded program: the files are written only if every layer passes, and
/// replace `out` as a whole (refused if `out` holds files it does not write).
/// Returns the message to print.
pub fn emit_gemmini(
    program: &Program,
    source: &str,
    out: &Path,
    api: ApiArg,
    name: &str,
    verify: bool,
) -> Result<String, CliError> {
    let opts = c::Options {
        api: match api {
            ApiArg::Upstream => Api::Upstream,
            ApiArg::Dosa => Api::Dosa,
        },
        name: name.to_string(),
        source: source.to_string(),
        verify,
    };
    // Library callers get the same protection as the command: no foreign folder is replaced.
    output::check_dir(out, &|e| is_gemmini_output(name, e)).map_err(CliError::Usage)?;
    let files = c::emit(program, &opts).map_err(errors)?;
    let mut msg = write(out, &files)?;
    if api == ApiArg::Upstream {
        let other = program
            .mappings
            .iter()
            .filter(|m| !runs_in_gemmini_order(&m.mapping))
            .count();
        if other > 0 {
            msg.push_str(&format!(
                "\nnote: {other} mapping(s) ask for a DRAM loop order other than Gemmini's; upstream runs Gemmini's fixed order (use --api dosa for the research variant)"
            ));
        }
    }
    Ok(msg)
}

/// `emit timeloop` on a loaded program, in the default format (v0.3).
pub fn emit_timeloop(program: &Program, out: &Path) -> Result<String, CliError> {
    emit_timeloop_as(program, out, FormatArg::V03)
}

/// `emit timeloop` on a loaded program, in `format`.
pub fn emit_timeloop_as(
    program: &Program,
    out: &Path,
    format: FormatArg,
) -> Result<String, CliError> {
    let format = match format {
        FormatArg::V03 => timeloop::Format::V03,
        FormatArg::V04 => timeloop::Format::V04,
    };
    output::check_dir(out, &|e| is_timeloop_output(out, e)).map_err(CliError::Usage)?;
    let files = timeloop::emit_as(program, format).map_err(errors)?;
    write(out, &files)
}

/// Whether `entry` of an `emit gemmini` folder is a program it writes (`NAME.c`,
/// `NAME_params.h` for `name`, `NAME_*` or any `dosa_*` name), so an earlier one may be replaced.
fn is_gemmini_output(name: &str, entry: &str) -> bool {
    let stem = entry
        .strip_suffix("_params.h")
        .or_else(|| entry.strip_suffix(".c"));
    // `NAME_NETWORK` is one network's program of a suite result.
    stem.is_some_and(|s| s == name || s.starts_with("dosa_") || s.starts_with(&format!("{name}_")))
}

/// Whether `entry` of an `emit timeloop` folder is a layer folder it writes (`NN_net.layer`).
fn is_timeloop_output(dir: &Path, entry: &str) -> bool {
    entry.starts_with(|c: char| c.is_ascii_digit()) && dir.join(entry).is_dir()
}

/// Run `dosa emit`.
pub fn run(args: EmitArgs) -> Result<i32, CliError> {
    match &args.target {
        EmitTarget::Gemmini {
            out, name, file, ..
        } => {
            let name = name.clone().unwrap_or_else(|| default_name(file));
            output::check_dir(out, &|e| is_gemmini_output(&name, e)).map_err(CliError::Usage)?;
            super::require_file(file)?;
        }
        EmitTarget::Timeloop { out, file, .. } => {
            output::check_dir(out, &|e| is_timeloop_output(out, e)).map_err(CliError::Usage)?;
            super::require_file(file)?;
        }
    }
    let msg = match args.target {
        EmitTarget::Gemmini {
            file,
            out,
            api,
            name,
            no_verify,
        } => {
            let program = crate::syntax::load_path(&file).map_err(CliError::Input)?;
            let name = name.unwrap_or_else(|| default_name(&file));
            emit_gemmini(
                &program,
                &file.display().to_string(),
                &out,
                api,
                &name,
                !no_verify,
            )?
        }
        EmitTarget::Timeloop { file, out, format } => {
            let program = crate::syntax::load_path(&file).map_err(CliError::Input)?;
            emit_timeloop_as(&program, &out, format)?
        }
    };
    eprintln!("{msg}");
    Ok(0)
}
