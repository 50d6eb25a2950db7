//! Stage `emit`: see the crate documentation for where it sits in the pipeline.
//!
//! - [`timeloop`]: Timeloop YAML (v0.3 for the shipped fork, v0.4 for current Timeloop) to cross-check any result;
//! - [`plot`]: PNG charts (log-x scatter, log-log scatter, log-y lines) for reports;
//! - [`curve`]: the search-curve figure;
//! - [`output`]: the transactional writer every command's files go through.

pub mod curve;
pub mod output;
pub mod plot;
pub mod timeloop;

use crate::ir::{Layer, Mapping, Program};
use std::path::Path;

/// One generated file, path relative to the output folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmittedFile {
    pub path: String,
    pub contents: String,
}

/// Replace the folder `dir` by exactly `files`, all at once ([`output::commit_dir`]), so that a
/// failing or killed command leaves the complete old set or the complete new one.
pub fn write_files(dir: &Path, files: &[EmittedFile]) -> Result<(), String> {
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|f| (f.path.as_str(), f.contents.as_str()))
        .collect();
    output::commit_dir(dir, &files).map_err(|e| format!("cannot write {}: {e}", dir.display()))
}

/// A name made safe for C identifiers, file names and Makefile targets: ASCII letters, digits
/// and `_`, starting with a letter.
pub fn c_identifier(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if !out.starts_with(|c: char| c.is_ascii_alphabetic()) {
        out.insert_str(0, "l_");
    }
    out
}

/// One mapping of a program with the layer it maps.
pub struct Mapped<'a> {
    /// Position among the program's mappings.
    pub index: usize,
    /// `network.layer`, as every emitter names the layer in files and errors.
    pub label: String,
    pub layer: &'a Layer,
    pub mapping: &'a Mapping,
    /// `map ... auto`: Gemmini's own tiler runs the layer (`mapping` is its first piece's).
    pub auto: bool,
}

/// The shared front half of every emitter: each mapping resolved to its layer, in program order,
/// or the error for a mapping whose layer does not exist; `Err` when there is nothing to emit.
pub fn mapped_layers(program: &Program) -> Result<Vec<Result<Mapped<'_>, String>>, Vec<String>> {
    if program.mappings.is_empty() {
        return Err(vec![
            "the program has no mappings; nothing to emit".to_string()
        ]);
    }
    Ok(program
        .mappings
        .iter()
        .enumerate()
        .map(|(i, lm)| {
            let label = format!("{}.{}", lm.network, lm.layer);
            match program.layer(&lm.network, &lm.layer) {
                Some(layer) => Ok(Mapped {
                    index: i,
                    label,
                    layer,
                    mapping: &lm.mapping,
                    auto: lm.auto,
                }),
                None => Err(format!(
                    "mapping {i} (`{label}`): no such layer in the program's networks"
                )),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_safe() {
        assert_eq!(c_identifier("resnet50"), "resnet50");
        assert_eq!(c_identifier("_outputs_input.80"), "l__outputs_input_80");
        assert_eq!(c_identifier("My Net-2"), "my_net_2");
    }

    #[test]
    fn write_files_is_all_or_nothing() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("out");
        let ok = vec![EmittedFile {
            path: "sub/c.txt".into(),
            contents: "c".into(),
        }];
        write_files(&dir, &ok).unwrap();
        // The second file's parent is the first file, so its write fails.
        let files = vec![
            EmittedFile {
                path: "a.txt".into(),
                contents: "a".into(),
            },
            EmittedFile {
                path: "a.txt/b.txt".into(),
                contents: "b".into(),
            },
        ];
        assert!(write_files(&dir, &files).is_err());
        assert!(!dir.join("a.txt").exists());
        assert_eq!(std::fs::read_to_string(dir.join("sub/c.txt")).unwrap(), "c");
        assert_eq!(std::fs::read_dir(base.path()).unwrap().count(), 1);
    }
}
