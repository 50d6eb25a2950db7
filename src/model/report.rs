//! `evaluate_program`: every mapping of a program on the hardware the mappings need together, as a
//! table or JSON (what `dosa eval` prints).
//!
//! The hardware is derived from all mappings of the program (one accelerator runs them all): the
//! largest PE array any mapping needs and, per level, the largest per-instance tile times the
//! instance count of that array ([`super::exact::network_hardware`]), rounded up to buildable sizes
//! like every search report ([`crate::search::design::round_hardware`]); where the architecture
//! fixes a size (a `16x16` array, a `256 KiB` scratchpad) that size is used instead ([`pin_fixed`]),
//! so energies are those of the hardware the file describes. Every layer is then
//! evaluated on that hardware with the analytical model (no Timeloop rounding). Sizes are reported
//! both as usable (what a tile may use) and physical (twice that for double-buffered levels).

use super::exact::{
    check_mapping, energies_pj, evaluate_layer, min_hardware, network_hardware, EvalOptions,
    LayerEval, MinHardware,
};
use crate::ir::{Arch, Hardware, Program, Tensor};
use serde::Serialize;
use std::fmt::Write as _;

/// Size of one level, usable and physical, summed over its instances.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LevelSize {
    pub level: String,
    pub instances: f64,
    /// What tiles may use (KiB).
    pub usable_kib: f64,
    /// What to build (KiB): twice the usable size when double-buffered.
    pub physical_kib: f64,
}

/// Hardware as reported.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HardwareSummary {
    pub pe_dim: u64,
    /// Non-backing levels that keep something.
    pub levels: Vec<LevelSize>,
    /// Energy per word access of every level (pJ), at the usable size of one instance.
    pub pj_per_access: Vec<(String, f64)>,
}

/// Accesses of one level for one layer, per tensor (W, I, O), summed over instances.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LevelAccesses {
    pub level: String,
    pub reads: [f64; 3],
    pub fills: [f64; 3],
    pub updates: [f64; 3],
    pub total: f64,
    /// Cycles this level alone needs (absent when its bandwidth is unlimited).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cycles: Option<f64>,
    pub energy_uj: f64,
}

/// One mapped layer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerReport {
    pub network: String,
    pub layer: String,
    pub count: u64,
    pub mapping: String,
    pub latency_cycles: f64,
    pub energy_uj: f64,
    /// cycles x uJ, one instance of the layer.
    pub edp: f64,
    /// What this mapping alone needs.
    pub min_hardware: HardwareSummary,
    pub accesses: Vec<LevelAccesses>,
}

/// Count-weighted totals of one network over its mapped layers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NetworkTotals {
    pub network: String,
    pub mapped_layers: usize,
    pub unmapped_layers: usize,
    pub latency_cycles: f64,
    pub energy_uj: f64,
    pub edp: f64,
}

/// The whole evaluation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EvalReport {
    pub arch: String,
    /// The hardware every layer is evaluated on.
    pub hardware: HardwareSummary,
    pub layers: Vec<LayerReport>,
    pub networks: Vec<NetworkTotals>,
}

fn summary(arch: &Arch, hw: &Hardware) -> HardwareSummary {
    let levels = arch
        .levels
        .iter()
        .enumerate()
        .filter(|(_, l)| !l.is_backing && !l.keeps.is_empty())
        .map(|(i, l)| {
            let usable = hw.usable_bytes.get(i).copied().unwrap_or(0.0) / 1024.0;
            LevelSize {
                level: l.name.clone(),
                instances: l.instance_count(hw.pe_dim),
                usable_kib: usable,
                physical_kib: hw.physical_bytes(arch, i) / 1024.0,
            }
        })
        .collect();
    let pj = arch
        .levels
        .iter()
        .map(|l| l.name.clone())
        .zip(energies_pj(arch, hw))
        .collect();
    HardwareSummary {
        pe_dim: hw.pe_dim.round() as u64,
        levels,
        pj_per_access: pj,
    }
}

fn layer_hw(arch: &Arch, m: &MinHardware) -> Hardware {
    let pe = m.pe_dim as f64;
    Hardware {
        pe_dim: pe,
        usable_bytes: m
            .inst_bytes
            .iter()
            .zip(&arch.levels)
            .map(|(b, l)| b.unwrap_or(0.0) * l.instance_count(pe))
            .collect(),
    }
}

/// Evaluate every mapping of `program`; `Err` lists every mapping that cannot be evaluated.
pub fn evaluate_program(program: &Program) -> Result<EvalReport, Vec<String>> {
    evaluate_program_with(program, false)
}

/// Pin the derived hardware to the architecture's fixed sizes: a fixed PE array, and for every
/// level with a fixed capacity its usable size (half the physical one when double-buffered).
/// Errors name each level the mappings do not fit.
pub fn pin_fixed(arch: &Arch, derived: &Hardware) -> Result<Hardware, Vec<String>> {
    use crate::ir::Bound;
    let mut hw = derived.clone();
    let mut errors = Vec::new();
    if let Bound::Fixed(pe) = arch.pe_dim {
        if derived.pe_dim > pe as f64 + 1e-9 {
            errors.push(format!(
                "the mappings need a {0}x{0} PE array; `{1}` has {pe}x{pe}",
                derived.pe_dim, arch.name
            ));
        }
        hw.pe_dim = pe as f64;
    }
    for (i, lv) in arch.levels.iter().enumerate() {
        if lv.is_backing {
            continue;
        }
        if let Bound::Fixed(bytes) = lv.capacity {
            let inst_need = derived.usable_bytes[i] / lv.instance_count(derived.pe_dim).max(1.0);
            let usable = bytes as f64 * if lv.double_buffered { 0.5 } else { 1.0 };
            if inst_need > usable + 1e-9 {
                errors.push(format!(
                    "{}: the mappings need {} B per instance; a tile may use {} B of the fixed {} B",
                    lv.name, inst_need, usable, bytes
                ));
            }
            hw.usable_bytes[i] = usable * lv.instance_count(hw.pe_dim);
        }
    }
    if errors.is_empty() {
        Ok(hw)
    } else {
        Err(errors)
    }
}

/// Raise derived hardware to the Gemmini configuration of `arch` (its array side and usable
/// buffers), the hardware `auto` tiles are chosen for.
fn gemmini_configuration(arch: &Arch, hw: &mut Hardware) {
    let p = crate::gemmini::tiler::gemmini_params(arch);
    let Ok(lv) = crate::gemmini::tiler::gemmini_levels(arch) else {
        return;
    };
    let half = |i: usize| {
        if arch.levels[i].double_buffered {
            0.5
        } else {
            1.0
        }
    };
    let old_pe = hw.pe_dim;
    hw.pe_dim = hw.pe_dim.max(p.dim as f64);
    for (i, l) in arch.levels.iter().enumerate() {
        // Per-column and per-PE needs scale with the larger array.
        hw.usable_bytes[i] *= l.instance_count(hw.pe_dim) / l.instance_count(old_pe).max(1.0);
    }
    hw.usable_bytes[lv.spad] = hw.usable_bytes[lv.spad].max(p.spad_bytes() as f64 * half(lv.spad));
    hw.usable_bytes[lv.acc] = hw.usable_bytes[lv.acc].max(p.acc_bytes() as f64 * half(lv.acc));
    let reg = &arch.levels[lv.reg];
    let reg_bytes = reg.instance_count(hw.pe_dim) * f64::from(reg.word_bits) / 8.0;
    hw.usable_bytes[lv.reg] = hw.usable_bytes[lv.reg].max(reg_bytes);
}

/// [`evaluate_program`], optionally with Timeloop's integer rounding (to compare with its rows).
pub fn evaluate_program_with(program: &Program, timeloop: bool) -> Result<EvalReport, Vec<String>> {
    let arch = &program.arch;
    let mut errors = Vec::new();
    let mut items = Vec::new();
    for lm in &program.mappings {
        let Some(layer) = program.layer(&lm.network, &lm.layer) else {
            errors.push(format!("{}.{}: no such layer", lm.network, lm.layer));
            continue;
        };
        // An `auto` layer's mapping is Gemmini's tiles, partial last tiles included.
        let mh = check_mapping(arch, layer, &lm.mapping)
            .and_then(|_| min_hardware(arch, layer, &lm.mapping))
            .map_err(|e| e.to_string());
        match mh {
            Ok(mh) => items.push((lm, layer, mh)),
            Err(e) => errors.push(format!("{}.{}: {e}", lm.network, lm.layer)),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    // `auto` layers run Gemmini's tiles, sized for Gemmini's configuration, not their own need.
    let mins: Vec<MinHardware> = items
        .iter()
        .filter(|(lm, _, _)| !lm.auto)
        .map(|(_, _, m)| m.clone())
        .collect();
    let mut derived = network_hardware(arch, &mins);
    if items.iter().any(|(lm, _, _)| lm.auto) {
        gemmini_configuration(arch, &mut derived);
    }
    let hw = pin_fixed(arch, &crate::search::design::round_hardware(arch, &derived))?;
    let opts = if timeloop {
        EvalOptions::timeloop(arch)
    } else {
        EvalOptions::analytical(arch)
    };
    let mut layers = Vec::new();
    for (lm, layer, mh) in &items {
        let ev: LayerEval = evaluate_layer(arch, layer, &lm.mapping, &hw, &opts)
            .map_err(|e| vec![format!("{}.{}: {e}", lm.network, lm.layer)])?;
        let what = format!("layer `{}.{}`", lm.network, lm.layer);
        let level_values = ev.levels.iter().flat_map(|l| {
            [
                (format!("{} accesses", l.name), l.total),
                (format!("{} energy", l.name), l.energy_uj),
            ]
        });
        finite_values(
            &what,
            [
                ("latency".to_string(), ev.cycles),
                ("energy".to_string(), ev.energy_uj),
                ("EDP".to_string(), ev.edp),
            ]
            .into_iter()
            .chain(level_values),
        )
        .map_err(|e| vec![e])?;
        let own = if lm.auto {
            hw.clone()
        } else {
            crate::search::design::round_hardware(arch, &layer_hw(arch, mh))
        };
        layers.push(LayerReport {
            network: lm.network.clone(),
            layer: lm.layer.clone(),
            count: layer.count,
            mapping: if lm.auto {
                format!("auto ({})", lm.mapping)
            } else {
                lm.mapping.to_string()
            },
            latency_cycles: ev.cycles,
            energy_uj: ev.energy_uj,
            edp: ev.edp,
            min_hardware: summary(arch, &own),
            accesses: ev
                .levels
                .iter()
                .map(|l| LevelAccesses {
                    level: l.name.clone(),
                    reads: l.reads,
                    fills: l.fills,
                    updates: l.updates,
                    total: l.total,
                    cycles: l.cycles,
                    energy_uj: l.energy_uj,
                })
                .collect(),
        });
    }
    let networks = program
        .networks
        .iter()
        .map(|n| {
            let mine: Vec<&LayerReport> = layers.iter().filter(|l| l.network == n.name).collect();
            let lat: f64 = mine.iter().map(|l| l.count as f64 * l.latency_cycles).sum();
            let en: f64 = mine.iter().map(|l| l.count as f64 * l.energy_uj).sum();
            let mapped = n
                .layers
                .iter()
                .filter(|l| mine.iter().any(|m| m.layer == l.name))
                .count();
            finite_values(
                &format!("network `{}`", n.name),
                [
                    ("latency (count-weighted)".to_string(), lat),
                    ("energy (count-weighted)".to_string(), en),
                    ("EDP".to_string(), lat * en),
                ],
            )?;
            Ok(NetworkTotals {
                network: n.name.clone(),
                mapped_layers: mapped,
                unmapped_layers: n.layers.len() - mapped,
                latency_cycles: lat,
                energy_uj: en,
                edp: lat * en,
            })
        })
        .collect::<Result<Vec<_>, String>>()
        .map_err(|e| vec![e])?;
    Ok(EvalReport {
        arch: arch.name.clone(),
        hardware: summary(arch, &hw),
        layers,
        networks,
    })
}

/// `Err` naming `what` and the first value that is not a finite number: the model's products
/// overflowed (inputs beyond what `check` can bound, e.g. huge counts with huge energies). No NaN
/// or infinity may reach a report, and 0 or `null` in its place would be a wrong answer.
pub fn finite_values(
    what: &str,
    values: impl IntoIterator<Item = (String, f64)>,
) -> Result<(), String> {
    for (name, v) in values {
        if !v.is_finite() {
            return Err(format!(
                "{what}: the {name} is not a finite number ({v}); the model's values overflow. Check the energies (`mac_energy`, level `energy`), bandwidths and counts"
            ));
        }
    }
    Ok(())
}

fn g(x: f64) -> String {
    if x == 0.0 {
        "0".into()
    } else if x.abs() >= 1e6 || x.abs() < 1e-2 {
        format!("{x:.4e}")
    } else if x == x.round() {
        format!("{x:.0}")
    } else {
        format!("{x:.3}")
    }
}

/// A readable text rendering of the report.
pub fn render_text(r: &EvalReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "architecture {}: {}x{} PEs (sizes rounded up; physical = 2 x usable when double-buffered)",
        r.arch, r.hardware.pe_dim, r.hardware.pe_dim
    );
    let _ = writeln!(
        s,
        "  {:<14} {:>9} {:>12} {:>13}",
        "level", "instances", "usable KiB", "physical KiB"
    );
    for l in &r.hardware.levels {
        let _ = writeln!(
            s,
            "  {:<14} {:>9} {:>12.3} {:>13.3}",
            l.level, l.instances, l.usable_kib, l.physical_kib
        );
    }
    let pj: Vec<String> = r
        .hardware
        .pj_per_access
        .iter()
        .map(|(n, v)| format!("{n} {v:.4}"))
        .collect();
    let _ = writeln!(s, "  pJ per access: {}", pj.join(", "));
    for l in &r.layers {
        let _ = writeln!(
            s,
            "\n{}.{} (x{})  {}",
            l.network, l.layer, l.count, l.mapping
        );
        let _ = writeln!(
            s,
            "  latency {} cycles, energy {} uJ, EDP {}",
            g(l.latency_cycles),
            g(l.energy_uj),
            g(l.edp)
        );
        let need: Vec<String> = l
            .min_hardware
            .levels
            .iter()
            .map(|v| {
                format!(
                    "{} {:.3} KiB usable ({:.3} physical)",
                    v.level, v.usable_kib, v.physical_kib
                )
            })
            .collect();
        let _ = writeln!(
            s,
            "  alone it needs {}x{} PEs, {}",
            l.min_hardware.pe_dim,
            l.min_hardware.pe_dim,
            need.join(", ")
        );
        let _ = writeln!(
            s,
            "  {:<14} {:>32} {:>32} {:>11} {:>11} {:>11}",
            "level", "reads W/I/O", "fills W/I/O", "updates O", "cycles", "uJ"
        );
        for a in &l.accesses {
            let trip = |v: [f64; 3]| format!("{}/{}/{}", g(v[0]), g(v[1]), g(v[2]));
            let _ = writeln!(
                s,
                "  {:<14} {:>32} {:>32} {:>11} {:>11} {:>11}",
                a.level,
                trip(a.reads),
                trip(a.fills),
                g(a.updates[Tensor::O.index()]),
                a.cycles.map_or("-".into(), g),
                g(a.energy_uj)
            );
        }
    }
    for n in &r.networks {
        let _ = writeln!(
            s,
            "\nnetwork {}: latency {} cycles, energy {} uJ, EDP {} ({} of {} layers mapped, count-weighted)",
            n.network,
            g(n.latency_cycles),
            g(n.energy_uj),
            g(n.edp),
            n.mapped_layers,
            n.mapped_layers + n.unmapped_layers
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{gemmini_arch, parse_compact, Layer, LayerMapping, Network, SearchSpec};

    fn program() -> Program {
        let mut l1 = Layer::conv("conv1", [7, 7, 112, 112, 3, 64, 1], 2, 2);
        l1.count = 2;
        let l2 = Layer::matmul("fc", 128, 768, 768);
        Program {
            arch: gemmini_arch(),
            networks: vec![Network {
                name: "tiny".into(),
                layers: vec![l1, l2],
            }],
            mappings: vec![
                LayerMapping {
                    network: "tiny".into(),
                    layer: "conv1".into(),
                    mapping: parse_compact(
                        "L3[WIO] K4 Q28 - L2[WI] N1 K16X - L1[O] S7 R7 Q4 P7 C3X - L0[W] P16",
                    )
                    .unwrap(),
                    auto: false,
                },
                LayerMapping {
                    network: "tiny".into(),
                    layer: "fc".into(),
                    mapping: parse_compact(
                        "L3[WIO] C48 K12 P8 - L2[WI] N1 K16X - L1[O] K4 C16X - L0[W] P16",
                    )
                    .unwrap(),
                    auto: false,
                },
            ],
            search: SearchSpec::default(),
        }
    }

    #[test]
    fn totals_are_count_weighted_and_hardware_covers_every_layer() {
        let r = evaluate_program(&program()).unwrap();
        assert_eq!(r.layers.len(), 2);
        let n = &r.networks[0];
        let want = 2.0 * r.layers[0].latency_cycles + r.layers[1].latency_cycles;
        assert!((n.latency_cycles - want).abs() < 1e-9 * want);
        assert_eq!(n.edp, n.latency_cycles * n.energy_uj);
        assert_eq!(r.hardware.pe_dim, 16);
        for l in &r.layers {
            for (need, have) in l.min_hardware.levels.iter().zip(&r.hardware.levels) {
                assert!(
                    need.usable_kib <= have.usable_kib + 1e-9,
                    "{need:?} {have:?}"
                );
                assert_eq!(
                    need.physical_kib,
                    2.0 * need.usable_kib * if need.level == "Registers" { 0.5 } else { 1.0 }
                );
            }
        }
        let text = render_text(&r);
        assert!(text.contains("network tiny"));
        assert!(serde_json::to_string(&r)
            .unwrap()
            .contains("\"latency_cycles\""));
    }

    #[test]
    fn bad_mappings_are_reported_not_panicking() {
        let mut p = program();
        p.mappings[1].mapping =
            parse_compact("L3[WIO] C48 - L2[WI] N1 K16X - L1[O] K4 C16X - L0[W] P16").unwrap();
        p.mappings.push(LayerMapping {
            network: "tiny".into(),
            layer: "nope".into(),
            mapping: p.mappings[0].mapping.clone(),
            auto: false,
        });
        let e = evaluate_program(&p).unwrap_err();
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].contains("tiny.fc"));
        assert!(e[1].contains("no such layer"));
    }
}
