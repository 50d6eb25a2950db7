//! Presenting a search result: the text table, `report.json`, `curve.csv`, `curve.png` and
//! `result.dosa` (the derived architecture and every mapping, readable by `dosa check`/`eval`).

use super::design::Scored;
use super::report::Report;
use crate::ir::{Arch, Bound, Hardware, Instances, LayerMapping, Network, Program, SearchSpec};
use std::fmt::Write as _;
use std::path::Path;

/// The architecture to build for a derived design: `arch` with pe_dim and every sized level fixed
/// to the physical sizes of `hw` (per instance, as the IR stores capacities).
pub fn derived_arch(arch: &Arch, hw: &Hardware) -> Arch {
    let mut a = arch.clone();
    let pe = hw.pe_dim.round().max(1.0) as u64;
    a.pe_dim = Bound::Fixed(pe);
    for (i, l) in a.levels.iter_mut().enumerate() {
        if l.is_backing {
            continue;
        }
        let inst = match l.instances {
            Instances::PerPe => (pe * pe) as f64,
            Instances::PerColumn => pe as f64,
            Instances::Single => 1.0,
        };
        let phys = hw.physical_bytes(arch, i) / inst;
        l.capacity = Bound::Fixed(phys.ceil().max(1.0) as u64);
    }
    a
}

/// `result.dosa`: a program that `dosa check` accepts and `dosa eval` scores the same.
pub fn result_program(arch: &Arch, net: &Network, s: &Scored, spec: &SearchSpec) -> Program {
    Program {
        arch: derived_arch(arch, &s.hardware),
        networks: vec![net.clone()],
        mappings: net
            .layers
            .iter()
            .zip(&s.mappings)
            .map(|(l, m)| LayerMapping {
                network: net.name.clone(),
                layer: l.name.clone(),
                mapping: m.clone(),
                auto: s.auto,
            })
            .collect(),
        search: spec.clone(),
    }
}

/// `result.dosa` of a suite search: one architecture (the shared hardware) and every network
/// with its own mappings, `shared` holding each network's design on that hardware.
pub fn suite_program(
    arch: &Arch,
    networks: &[Network],
    shared: &[Scored],
    spec: &SearchSpec,
) -> Program {
    let mut p = Program {
        arch: arch.clone(),
        networks: Vec::new(),
        mappings: Vec::new(),
        search: spec.clone(),
    };
    for (n, s) in networks.iter().zip(shared) {
        let one = result_program(arch, n, s, spec);
        p.arch = one.arch;
        p.networks.extend(one.networks);
        p.mappings.extend(one.mappings);
    }
    p
}

/// The human-readable summary `dosa search` and `dosa baseline` print.
pub fn render_text(r: &Report) -> String {
    let mut o = String::new();
    let h = &r.hardware;
    let _ = writeln!(
        o,
        "{} ({} objective, seed {}, {} evaluations, {:.2} s)",
        r.method, r.objective, r.seed, r.evaluations, r.seconds
    );
    let _ = writeln!(
        o,
        "hardware: {}x{} PEs, scratchpad {} KiB, accumulator {} KiB (physical; tiles use {} / {} KiB)",
        h.pe_dim,
        h.pe_dim,
        fmt_num(h.scratchpad_kib),
        fmt_num(h.accumulator_kib),
        fmt_num(h.scratchpad_usable_kib),
        fmt_num(h.accumulator_usable_kib)
    );
    let w = r
        .layers
        .iter()
        .map(|l| l.name.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let _ = writeln!(
        o,
        "{:<w$}  {:>5}  {:>14}  {:>12}  {:>14}  mapping",
        "layer", "count", "cycles", "energy uJ", "EDP"
    );
    for l in &r.layers {
        let _ = writeln!(
            o,
            "{:<w$}  {:>5}  {:>14.0}  {:>12.3}  {:>14.4e}  {}",
            l.name,
            l.count,
            l.latency_cycles,
            l.energy_uj,
            l.latency_cycles * l.energy_uj,
            l.mapping
        );
    }
    let n = &r.network;
    let _ = writeln!(
        o,
        "network: {:.0} cycles, {:.3} uJ, EDP {:.6e} (count-weighted)",
        n.latency_cycles, n.energy_uj, n.edp
    );
    o
}

fn fmt_num(x: f64) -> String {
    if (x - x.round()).abs() < 1e-9 {
        format!("{}", x.round() as i64)
    } else {
        format!("{x:.3}")
    }
}

/// `curve.csv` with one column per method: evaluations, then best objective so far.
pub fn curve_csv(reports: &[&Report]) -> String {
    let mut o = String::from("method,evaluations,best\n");
    for r in reports {
        for (e, v) in &r.curve {
            let _ = writeln!(
                o,
                "{},{},{:e}",
                r.method,
                e,
                crate::util::finite_or(*v, 0.0)
            );
        }
    }
    o
}

/// Serialise a report as pretty JSON with a trailing newline.
pub fn report_json(r: &Report) -> String {
    let mut s = serde_json::to_string_pretty(r).unwrap_or_else(|_| "{}".into());
    s.push('\n');
    s
}

/// Replace the folder `dir` by exactly `files`, all at once (see [`crate::emit::output`]).
pub fn write_dir(dir: &Path, files: &[(&str, Vec<u8>)]) -> std::io::Result<()> {
    crate::emit::output::commit_dir(dir, files)
}
