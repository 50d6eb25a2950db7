//! `dosa import csv NET.csv [-o FILE]`: turn a network from the reference data's CSV form into
//! a `.dosa` network named after the file stem; `dosa import onnx MODEL.onnx [-o FILE] [--batch N]`
//! does the same for an ONNX model's Conv, Gemm and MatMul nodes.

use super::CliError;
use crate::syntax::csv::{network_from_csv_with_notes, network_source, render_csv_problems};
use clap::{Args, Subcommand};
use std::path::PathBuf;

/// `dosa import FORMAT ...`.
#[derive(Args, Debug)]
pub struct ImportArgs {
    #[command(subcommand)]
    pub format: ImportFormat,
}

/// The formats `dosa import` reads.
#[derive(Subcommand, Debug)]
pub enum ImportFormat {
    /// A network as `name,R,S,P,Q,C,K,N,Wstride,Hstride,Wdilation,Hdilation,count` rows.
    Csv(CsvArgs),
    /// An ONNX model: every Conv, Gemm and MatMul becomes a layer (shapes inferred).
    Onnx(OnnxArgs),
}

/// `dosa import onnx`.
#[derive(Args, Debug)]
pub struct OnnxArgs {
    /// The `.onnx` model; the network is named after its stem.
    pub input: PathBuf,
    /// Where to write the `.dosa` file (atomically); standard output when absent.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Size of symbolic (dynamic) batch dimensions.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch: u64,
}

/// `dosa import csv`.
#[derive(Args, Debug)]
pub struct CsvArgs {
    /// The CSV file; the network is named after its stem (`resnet50.csv` -> `resnet50`).
    pub input: PathBuf,
    /// Where to write the `.dosa` file (atomically); standard output when absent.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

/// Convert; on any error print every problem with its line and write nothing.
pub fn run(args: ImportArgs) -> Result<i32, CliError> {
    let a = match args.format {
        ImportFormat::Csv(a) => a,
        ImportFormat::Onnx(a) => return run_onnx(a),
    };
    let shown = a.input.display().to_string();
    if let Some(out) = &a.output {
        crate::util::check_writable_file(out).map_err(CliError::Usage)?;
    }
    let bytes =
        crate::util::read_file_capped(&a.input).map_err(|e| CliError::read(&a.input, &e))?;
    let Ok(text) = String::from_utf8(bytes) else {
        return Err(CliError::Input(format!("{shown}: not UTF-8 text")));
    };
    let name = a
        .input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "network".into());
    let text = crate::syntax::normalize_text(&text);
    let (net, notes) = network_from_csv_with_notes(&name, &text).map_err(|errs| {
        CliError::Input(format!(
            "{}{shown}: {} error{}, nothing written",
            render_csv_problems(&shown, &text, &errs, false),
            errs.len(),
            if errs.len() == 1 { "" } else { "s" }
        ))
    })?;
    if !notes.is_empty() {
        eprint!("{}", render_csv_problems(&shown, &text, &notes, true));
    }
    let origin = a
        .input
        .file_name()
        .map_or(shown.clone(), |n| n.to_string_lossy().into_owned());
    let source = network_source(&net, &origin);
    write_network(&net, &source, &name, &shown, a.output.as_ref())
}

/// Largest ONNX file read: protobuf's own 2 GiB limit (weights make models far larger than
/// the text inputs' cap).
const MAX_ONNX_BYTES: u64 = 2 << 30;

/// Convert an ONNX model; on any error print it and write nothing.
fn run_onnx(a: OnnxArgs) -> Result<i32, CliError> {
    let shown = a.input.display().to_string();
    if let Some(out) = &a.output {
        crate::util::check_writable_file(out).map_err(CliError::Usage)?;
    }
    let bytes = (|| {
        use std::io::Read;
        let f = std::fs::File::open(&a.input)?;
        let mut b = Vec::new();
        f.take(MAX_ONNX_BYTES + 1).read_to_end(&mut b)?;
        if b.len() as u64 > MAX_ONNX_BYTES {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "larger than 2 GiB",
            ));
        }
        Ok(b)
    })()
    .map_err(|e| CliError::read(&a.input, &e))?;
    let name = a
        .input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "network".into());
    let imp = crate::syntax::onnx::network_from_onnx(&name, &bytes, a.batch)
        .map_err(|e| CliError::Input(format!("error: {shown}: {e}; nothing written")))?;
    for n in &imp.notes {
        eprintln!("note: {shown}: {n}");
    }
    let origin = a
        .input
        .file_name()
        .map_or(shown.clone(), |n| n.to_string_lossy().into_owned());
    let source = crate::syntax::onnx::onnx_network_source(&imp, &origin);
    write_network(&imp.network, &source, &name, &shown, a.output.as_ref())
}

/// Check that `source` loads back to exactly `net` (a failure is a bug in the importer), then
/// write it to `output` all at once, or print it: the one ending of every import.
fn write_network(
    net: &crate::ir::Network,
    source: &str,
    name: &str,
    shown: &str,
    output: Option<&PathBuf>,
) -> Result<i32, CliError> {
    match crate::syntax::load_text(&format!("{name}.dosa"), source) {
        Ok(p) if p.networks.len() == 1 && p.networks[0] == *net => {}
        Ok(_) => {
            return Err(CliError::Input(format!(
                "{shown}: the generated network does not read back the same (a bug)"
            )))
        }
        Err(diags) => {
            return Err(CliError::Input(format!(
                "{diags}{shown}: the generated network does not check (a bug)"
            )))
        }
    }
    match output {
        Some(out) => {
            crate::emit::output::commit_file(out, source.as_bytes())
                .map_err(|e| CliError::write(out, &e))?;
            eprintln!(
                "{}: network `{}` with {} layers",
                out.display(),
                net.name,
                net.layers.len()
            );
        }
        None => out!("{source}"),
    }
    Ok(0)
}
