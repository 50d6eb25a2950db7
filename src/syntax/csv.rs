//! Networks from the reference data's CSV form
//! (`name,R,S,P,Q,C,K,N,Wstride,Hstride,Wdilation,Hdilation,count`), for `dosa import csv`.
//!
//! A row becomes a `matmul` when its name starts with `mm` (as BERT's do) and it has the shape of
//! one (R=S=Q=N=1, unit strides and dilations); every other row is a `conv`. Both lower to the
//! same loop nest, so the choice only affects which Gemmini call the emitters use.

use super::fmt::format_file;
use super::print::network_def;
use crate::ir::{Layer, LayerKind, Network};
use crate::syntax::ast::{File, Item};

/// The columns, in order, that a network CSV must have.
pub const HEADER: [&str; 13] = [
    "name",
    "R",
    "S",
    "P",
    "Q",
    "C",
    "K",
    "N",
    "Wstride",
    "Hstride",
    "Wdilation",
    "Hdilation",
    "count",
];

/// A problem in a CSV file, at a 1-based line and a byte range of the text (the row, or the
/// field when it can be located).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvError {
    pub line: u64,
    pub span: std::ops::Range<usize>,
    pub message: String,
}

impl std::fmt::Display for CsvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Read a network named `name` from CSV text; every problem is reported, not just the first.
pub fn network_from_csv(name: &str, text: &str) -> Result<Network, Vec<CsvError>> {
    network_from_csv_with_notes(name, text).map(|(n, _)| n)
}

/// The 1-based line of byte `at` (lines end at `\n`; CRLF text counts right, lone CRs do not:
/// normalise with [`super::normalize_text`] first).
fn line_of(text: &str, at: usize) -> u64 {
    let at = at.min(text.len());
    text.as_bytes()[..at]
        .iter()
        .filter(|&&b| b == b'\n')
        .count() as u64
        + 1
}

/// The byte range of the row starting at `start` (without its line ending), and of its field
/// `i` when the row has no quotes (a quoted field may hold commas).
fn row_span(text: &str, start: usize, field: Option<usize>) -> std::ops::Range<usize> {
    let start = start.min(text.len());
    let rest = &text[start..];
    let end = start + rest.find(['\n', '\r']).unwrap_or(rest.len());
    let row = &text[start..end];
    if let Some(i) = field.filter(|_| !row.contains('"')) {
        let mut lo = start;
        for (k, f) in row.split(',').enumerate() {
            if k == i {
                let t = f.trim_start();
                let lo = lo + (f.len() - t.len());
                return lo..lo + t.trim_end().len();
            }
            lo += f.len() + 1;
        }
    }
    start..end
}

/// [`network_from_csv`], also returning notes on rows that were read with a normalised value
/// (a stride or dilation of 0 in a direction where it cannot matter, as DOSA's workload files
/// write for 1-D convolutions, becomes 1).
pub fn network_from_csv_with_notes(
    name: &str,
    text: &str,
) -> Result<(Network, Vec<CsvError>), Vec<CsvError>> {
    let mut errors = Vec::new();
    let mut notes = Vec::new();
    let err = |start: usize, field: Option<usize>, message: String| CsvError {
        line: line_of(text, start),
        span: row_span(text, start, field),
        message,
    };
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(::csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut layers: Vec<(u64, Layer)> = Vec::new();
    let mut saw_header = false;
    for rec in reader.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let at = e.position().map_or(0, |p| p.byte() as usize);
                errors.push(err(
                    at,
                    None,
                    format!("not readable as CSV: {}", csv_message(&e)),
                ));
                continue;
            }
        };
        let at = rec.position().map_or(0, |p| p.byte() as usize);
        let line = line_of(text, at);
        if rec.iter().all(str::is_empty) {
            continue;
        }
        if !saw_header {
            saw_header = true;
            let got: Vec<&str> = rec.iter().collect();
            let ok = got.len() == HEADER.len()
                && got
                    .iter()
                    .zip(HEADER)
                    .all(|(g, h)| g.eq_ignore_ascii_case(h));
            if !ok {
                errors.push(err(
                    at,
                    None,
                    format!(
                        "the header must be `{}`, found `{}`",
                        HEADER.join(","),
                        got.join(",")
                    ),
                ));
                return Err(errors);
            }
            continue;
        }
        if rec.len() != HEADER.len() {
            errors.push(err(
                at,
                None,
                format!("expected {} fields, found {}", HEADER.len(), rec.len()),
            ));
            continue;
        }
        let lname = &rec[0];
        if lname.is_empty() {
            errors.push(err(at, Some(0), "the layer name is empty".into()));
            continue;
        }
        let mut vals = [0u64; 12];
        let mut bad = false;
        for (i, v) in vals.iter_mut().enumerate() {
            let field = &rec[i + 1];
            match field.parse::<u64>() {
                Ok(x) => *v = x,
                Err(_) => {
                    errors.push(err(
                        at,
                        Some(i + 1),
                        format!(
                            "column `{}`: `{field}` is not a positive whole number",
                            HEADER[i + 1]
                        ),
                    ));
                    bad = true;
                }
            }
        }
        // A stride or dilation no output can observe: Wstride with P = 1, Hstride with Q = 1,
        // Wdilation with R = 1, Hdilation with S = 1 (DOSA's files write Wstride=0 for 1-D
        // convolutions). Read as 1, with a note.
        for (i, extent, dim) in [(7, 2, "P"), (8, 3, "Q"), (9, 0, "R"), (10, 1, "S")] {
            if vals[i] == 0 && vals[extent] == 1 {
                vals[i] = 1;
                notes.push(err(
                    at,
                    Some(i + 1),
                    format!(
                        "column `{}` is 0 in layer `{lname}`; read as 1 (with {dim} = 1 it has no effect)",
                        HEADER[i + 1]
                    ),
                ));
            }
        }
        for (i, &v) in vals.iter().enumerate() {
            if v == 0 && !rec[i + 1].is_empty() && rec[i + 1].parse::<u64>().is_ok() {
                errors.push(err(
                    at,
                    Some(i + 1),
                    format!(
                        "column `{}` must be at least 1, found `{}`",
                        HEADER[i + 1],
                        &rec[i + 1]
                    ),
                ));
                bad = true;
            }
        }
        if let Some((first, _)) = layers.iter().find(|(_, l)| l.name == lname) {
            errors.push(err(
                at,
                Some(0),
                format!("layer `{lname}` already appears on line {first}"),
            ));
            continue;
        }
        if bad {
            continue;
        }
        let dims = [
            vals[0], vals[1], vals[2], vals[3], vals[4], vals[5], vals[6],
        ];
        if dims
            .iter()
            .try_fold(1u128, |a, &d| a.checked_mul(d as u128))
            .is_none_or(|m| m > u64::MAX as u128)
        {
            errors.push(err(
                at,
                None,
                format!("layer `{lname}` has more than 2^64 MACs"),
            ));
            continue;
        }
        let window = |out: u64, stride: u64, filt: u64, dil: u64| {
            (out as u128 - 1) * (stride as u128) + (filt as u128 - 1) * (dil as u128)
                < (u64::MAX as u128)
        };
        if !window(dims[2], vals[7], dims[0], vals[9])
            || !window(dims[3], vals[8], dims[1], vals[10])
        {
            errors.push(err(
                at,
                None,
                format!("the input window of layer `{lname}` is larger than 2^64"),
            ));
            continue;
        }
        let [r, s, _, q, _, _, n] = dims;
        let unit = vals[7..11].iter().all(|&v| v == 1);
        let is_mm = lname.to_ascii_lowercase().starts_with("mm")
            && r == 1
            && s == 1
            && q == 1
            && n == 1
            && unit;
        layers.push((
            line,
            Layer {
                name: lname.to_string(),
                kind: if is_mm {
                    LayerKind::Matmul
                } else {
                    LayerKind::Conv
                },
                dims,
                wstride: vals[7],
                hstride: vals[8],
                wdilation: vals[9],
                hdilation: vals[10],
                count: vals[11],
            },
        ));
    }
    if !saw_header {
        errors.push(err(
            0,
            None,
            format!(
                "the file is empty; expected the header `{}`",
                HEADER.join(",")
            ),
        ));
    } else if layers.is_empty() && errors.is_empty() {
        errors.push(err(0, None, "the file has a header but no layers".into()));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok((
        Network {
            name: name.to_string(),
            layers: layers.into_iter().map(|(_, l)| l).collect(),
        },
        notes,
    ))
}

/// Problems (or notes) of a CSV file as rendered codespan diagnostics, like `dosa check`'s:
/// `text` must be the text the problems were found in.
pub fn render_csv_problems(name: &str, text: &str, problems: &[CsvError], notes: bool) -> String {
    use codespan_reporting::diagnostic::{Diagnostic, Label};
    use codespan_reporting::files::SimpleFile;
    let file = SimpleFile::new(name, text);
    let config = codespan_reporting::term::Config::default();
    let mut out = String::new();
    for p in problems {
        let d = if notes {
            Diagnostic::note()
        } else {
            Diagnostic::error().with_code("csv")
        };
        let d = d
            .with_message(&p.message)
            .with_labels(vec![Label::primary((), p.span.clone())]);
        match codespan_reporting::term::emit_into_string(&config, &file, &d) {
            Ok(r) => out.push_str(&r),
            Err(_) => out.push_str(&format!("{name}:{}: {}\n", p.line, p.message)),
        }
    }
    out
}

fn csv_message(e: &::csv::Error) -> String {
    match e.kind() {
        ::csv::ErrorKind::Utf8 { .. } => "invalid UTF-8".into(),
        _ => e.to_string(),
    }
}

/// `.dosa` source for one network, with a header comment saying where it came from.
pub fn network_source(net: &Network, origin: &str) -> String {
    let file = File {
        items: vec![Item::Network(network_def(net))],
    };
    let body = format_file(&file, "", &[]);
    format!(
        "# Network `{}`, imported from {origin} by `dosa import csv`.\n\
         # It names no architecture: a program importing it gets the built-in Gemmini unless it has an `arch`.\n\n{body}",
        net.name.replace('\n', " ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "name,R,S,P,Q,C,K,N,Wstride,Hstride,Wdilation,Hdilation,count\n";

    #[test]
    fn rows_become_layers() {
        let t = format!("{H}conv1,7,7,112,112,3,64,1,2,2,1,1,1\nmm_0,1,1,128,1,768,768,1,1,1,1,1,2\nfc,1,1,1,1,4096,1000,1,1,1,1,1,1\n");
        let n = network_from_csv("net", &t).unwrap();
        assert_eq!(n.layers.len(), 3);
        assert_eq!(n.layers[0].kind, LayerKind::Conv);
        assert_eq!(n.layers[0].wstride, 2);
        assert_eq!(n.layers[1].kind, LayerKind::Matmul);
        assert_eq!(n.layers[1], {
            let mut l = Layer::matmul("mm_0", 128, 768, 768);
            l.count = 2;
            l
        });
        assert_eq!(n.layers[2].kind, LayerKind::Conv);
    }

    #[test]
    fn every_bad_row_is_reported_with_its_line() {
        let t = format!("{H}a,1,1,1,1,1,1,1,1,1,1,1,1\nb,1,x,1,1,1,1,1,1,1,1,1,1\nc,1,1\na,1,1,1,1,1,1,1,1,1,1,1,1\nd,0,1,1,1,1,1,1,1,1,1,1,1\n");
        let e = network_from_csv("net", &t).unwrap_err();
        let lines: Vec<u64> = e.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![3, 4, 5, 6], "{e:?}");
        assert!(e[2].message.contains("line 2"));
    }

    #[test]
    fn bad_headers_and_empty_files() {
        assert_eq!(network_from_csv("n", "").unwrap_err()[0].line, 1);
        assert!(network_from_csv("n", "a,b\n1,2\n").unwrap_err()[0]
            .message
            .contains("header"));
        assert!(network_from_csv("n", H).unwrap_err()[0]
            .message
            .contains("no layers"));
    }
}
