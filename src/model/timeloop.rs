//! The reference data's Timeloop CSV (`shared/data/timeloop/*.csv`) as IR values.
//!
//! Each row is a layer (`prob.*`), a mapping in compact form (`mapping.mapping`), the hardware
//! Timeloop was given (`arch.*`) and its results (`target.*`). The sizes are what Timeloop was given,
//! with no double-buffering halving, so they become [`Hardware::usable_bytes`] as they are.

use crate::ir::{parse_compact, Arch, Hardware, Layer, LayerKind, Mapping};
use std::collections::HashMap;
use std::path::Path;

/// One usable row of the CSV.
#[derive(Clone, Debug, PartialEq)]
pub struct TimeloopRow {
    /// 1-based data line number (the header is line 1), for messages.
    pub line: usize,
    pub layer: Layer,
    pub mapping: Mapping,
    pub hw: Hardware,
    pub cycles: f64,
    pub energy_uj: f64,
}

/// A row that could not be turned into IR values, with the reason.
#[derive(Clone, Debug, PartialEq)]
pub struct SkippedRow {
    pub line: usize,
    pub reason: String,
}

const NEEDED: [&str; 18] = [
    "target.cycle",
    "target.energy",
    "mapping.mapping",
    "arch.pe",
    "arch.mem1_depth",
    "arch.mem1_width",
    "arch.mem2_depth",
    "arch.mem2_width",
    "prob.R",
    "prob.S",
    "prob.P",
    "prob.Q",
    "prob.C",
    "prob.K",
    "prob.N",
    "prob.Wstride",
    "prob.Hstride",
    "prob.Wdilation",
];

/// Read the whole file. `Err` only for an unreadable file or missing columns; bad rows are returned
/// as [`SkippedRow`]s, never dropped.
pub fn read_csv(path: &Path, arch: &Arch) -> Result<(Vec<TimeloopRow>, Vec<SkippedRow>), String> {
    let bytes =
        crate::util::read_file_capped(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(bytes.as_slice());
    let headers = rdr
        .headers()
        .map_err(|e| format!("{}: {e}", path.display()))?
        .clone();
    let col: HashMap<&str, usize> = headers.iter().enumerate().map(|(i, h)| (h, i)).collect();
    let missing: Vec<&str> = NEEDED
        .iter()
        .copied()
        .filter(|c| !col.contains_key(c))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "{}: missing column(s) {}",
            path.display(),
            missing.join(", ")
        ));
    }
    let hdil = col.get("prob.Hdilation").copied();
    let mut rows = Vec::new();
    let mut skipped = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2;
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                skipped.push(SkippedRow {
                    line,
                    reason: format!("unreadable record: {e}"),
                });
                continue;
            }
        };
        match parse_row(&rec, &col, hdil, arch, line) {
            Ok(r) => rows.push(r),
            Err(reason) => skipped.push(SkippedRow { line, reason }),
        }
    }
    Ok((rows, skipped))
}

fn field<'a>(
    rec: &'a csv::StringRecord,
    col: &HashMap<&str, usize>,
    name: &str,
) -> Result<&'a str, String> {
    rec.get(col[name])
        .map(str::trim)
        .ok_or_else(|| format!("missing `{name}`"))
}

fn num(rec: &csv::StringRecord, col: &HashMap<&str, usize>, name: &str) -> Result<f64, String> {
    let s = field(rec, col, name)?;
    let v: f64 = s
        .parse()
        .map_err(|_| format!("`{name}` is not a number: `{s}`"))?;
    if !v.is_finite() {
        return Err(format!("`{name}` is not finite"));
    }
    Ok(v)
}

fn count(rec: &csv::StringRecord, col: &HashMap<&str, usize>, name: &str) -> Result<u64, String> {
    let v = num(rec, col, name)?;
    if v < 1.0 || v.fract() != 0.0 || v > 1e15 {
        return Err(format!("`{name}` must be a positive integer, got {v}"));
    }
    Ok(v as u64)
}

fn parse_row(
    rec: &csv::StringRecord,
    col: &HashMap<&str, usize>,
    hdil: Option<usize>,
    arch: &Arch,
    line: usize,
) -> Result<TimeloopRow, String> {
    let dims = [
        count(rec, col, "prob.R")?,
        count(rec, col, "prob.S")?,
        count(rec, col, "prob.P")?,
        count(rec, col, "prob.Q")?,
        count(rec, col, "prob.C")?,
        count(rec, col, "prob.K")?,
        count(rec, col, "prob.N")?,
    ];
    let hdilation = match hdil.and_then(|i| rec.get(i)) {
        Some(s) if !s.trim().is_empty() => count(rec, col, "prob.Hdilation")?,
        _ => 1,
    };
    let layer = Layer {
        name: format!("row{line}"),
        kind: LayerKind::Conv,
        dims,
        wstride: count(rec, col, "prob.Wstride")?,
        hstride: count(rec, col, "prob.Hstride")?,
        wdilation: count(rec, col, "prob.Wdilation")?,
        hdilation,
        count: 1,
    };
    let text = field(rec, col, "mapping.mapping")?;
    let mapping = parse_compact(text).map_err(|e| format!("mapping: {e} (at byte {})", e.at))?;
    let pes = count(rec, col, "arch.pe")?;
    let pe = (pes as f64).sqrt().round() as u64;
    if pe * pe != pes {
        return Err(format!("`arch.pe` = {pes} is not a square PE array"));
    }
    if arch.levels.len() != 4 {
        return Err(format!(
            "the Timeloop columns describe 4 levels, the architecture has {}",
            arch.levels.len()
        ));
    }
    let pe_f = pe as f64;
    let acc_inst = count(rec, col, "arch.mem1_depth")? as f64
        * count(rec, col, "arch.mem1_width")? as f64
        / 8.0;
    let sp = count(rec, col, "arch.mem2_depth")? as f64
        * count(rec, col, "arch.mem2_width")? as f64
        / 8.0;
    let reg_inst = arch.levels[0].word_bits as f64 / 8.0;
    let hw = Hardware {
        pe_dim: pe_f,
        usable_bytes: vec![
            reg_inst * arch.levels[0].instance_count(pe_f),
            acc_inst * arch.levels[1].instance_count(pe_f),
            sp,
            0.0,
        ],
    };
    let cycles = num(rec, col, "target.cycle")?;
    let energy_uj = num(rec, col, "target.energy")?;
    if cycles <= 0.0 || energy_uj <= 0.0 {
        return Err("the Timeloop results must be positive".to_string());
    }
    Ok(TimeloopRow {
        line,
        layer,
        mapping,
        hw,
        cycles,
        energy_uj,
    })
}
