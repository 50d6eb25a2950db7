//! Timeloop input files per mapped layer, so that anyone with Timeloop can cross-check a result
//! of this project's cost model. Two input formats, because the Timeloop that generated the
//! reference data reads only the older one:
//!
//! - [`Format::V03`] (nested `subtree`/`local`, `meshX`): what the DOSA fork of Timeloop
//!   (`shared/timeloop/bin/timeloop-model`) reads. Layout
//!   `DIR/<index>_<network.layer>/{arch,problem,mapping,ert}.yaml`; run
//!   `timeloop-model arch.yaml problem.yaml mapping.yaml ert.yaml` in that folder. On a design
//!   with fixed sizes it gives `dosa eval --timeloop`'s cycles and energy.
//! - [`Format::V04`] (`!Container`/`!Component` nodes): current Timeloop and timeloopfe
//!   (`Specification.from_yaml_files`). Layout `DIR/<index>_<network.layer>/{arch,problem,mapping}.yaml`.
//!
//! The YAML is written by hand, with the problem's dims named as in this project (R S P Q C K N;
//! K is Timeloop's usual M).
//!
//! Sizes: Timeloop has no double buffering, so each buffer is given what a tile may use (half
//! of the physical buffer for the double-buffered scratchpad and accumulator), which is how the
//! reference Timeloop data was produced; the physical size is in a comment. A size the
//! architecture leaves free (derived by the search) is the minimum the layer's mapping needs
//! (MODEL.md section 4), as is a free PE array (`max(spatial C, spatial K, 2)`).

use super::EmittedFile;
use crate::ir::{Arch, Bandwidth, Dim, Instances, Layer, Level, Mapping, Program, Tensor};
use std::fmt::Write as _;

/// The hardware one layer's files describe.
#[derive(Clone, Debug, PartialEq)]
pub struct TimeloopHw {
    pub pe_dim: u64,
    /// Per level (innermost first): bytes one instance may use; `None` for the backing store.
    pub usable_bytes: Vec<Option<u64>>,
    /// Per level: whether the size was derived from the mapping (the architecture left it free).
    pub derived: Vec<bool>,
}

fn tensor_name(t: Tensor) -> &'static str {
    match t {
        Tensor::W => "Weights",
        Tensor::I => "Inputs",
        Tensor::O => "Outputs",
    }
}

/// Words of tensor `t` held by one instance of level `upto`: the product of the factors of the
/// levels up to it (MODEL.md section 4), inputs with their sliding window.
pub fn tile_words(layer: &Layer, mapping: &Mapping, upto: usize, t: Tensor) -> u64 {
    let f = |d: Dim| -> u64 {
        mapping.levels[..=upto.min(mapping.levels.len().saturating_sub(1))]
            .iter()
            .map(|l| l.temporal[d.index()].saturating_mul(l.spatial[d.index()]))
            .fold(1u64, |a, b| a.saturating_mul(b))
    };
    use Dim::*;
    match t {
        Tensor::W => [f(R), f(S), f(C), f(K)]
            .iter()
            .fold(1u64, |a, &b| a.saturating_mul(b)),
        Tensor::O => [f(P), f(Q), f(K), f(N)]
            .iter()
            .fold(1u64, |a, &b| a.saturating_mul(b)),
        Tensor::I => {
            let span = |out: u64, stride: u64, k: u64, dil: u64| {
                out.saturating_sub(1)
                    .saturating_mul(stride)
                    .saturating_add(k.saturating_sub(1).saturating_mul(dil))
                    .saturating_add(1)
            };
            let w = span(f(P), layer.wstride, f(R), layer.wdilation);
            let h = span(f(Q), layer.hstride, f(S), layer.hdilation);
            [f(N), f(C), w, h]
                .iter()
                .fold(1u64, |a, &b| a.saturating_mul(b))
        }
    }
}

fn instances(level: &Level, pe: u64) -> u64 {
    match level.instances {
        Instances::PerPe => pe * pe,
        Instances::PerColumn => pe,
        Instances::Single => 1,
    }
}

fn word_bytes(level: &Level) -> u64 {
    u64::from(level.word_bits.div_ceil(8).max(1))
}

/// The sizes to give Timeloop for one layer's mapping.
pub fn hardware(arch: &Arch, layer: &Layer, mapping: &Mapping) -> TimeloopHw {
    let max_spatial = Dim::ALL
        .iter()
        .map(|&d| mapping.spatial(d))
        .max()
        .unwrap_or(1);
    let pe_dim = arch
        .pe_dim
        .max()
        .unwrap_or(max_spatial.max(arch.pe_min).max(2));
    let mut usable = Vec::new();
    let mut derived = Vec::new();
    for (i, level) in arch.levels.iter().enumerate() {
        if level.is_backing {
            usable.push(None);
            derived.push(false);
            continue;
        }
        match level.capacity.max() {
            Some(phys) => {
                usable.push(Some(if level.double_buffered {
                    phys / 2
                } else {
                    phys
                }));
                derived.push(false);
            }
            None => {
                let words: u64 = level
                    .keeps
                    .iter()
                    .map(|t| tile_words(layer, mapping, i, t))
                    .sum();
                usable.push(Some(words.saturating_mul(word_bytes(level))));
                derived.push(true);
            }
        }
    }
    TimeloopHw {
        pe_dim,
        usable_bytes: usable,
        derived,
    }
}

fn yaml_name(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() {
        "level".to_string()
    } else {
        out
    }
}

fn comment(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Per level (innermost first) the fan-out `(meshX, meshY)` from it to the next level in (the
/// MACs below the innermost level), for a PE array of side `pe`: the first fan-out met going
/// inward takes X, the next Y.
fn fanouts(arch: &Arch, pe: u64) -> Vec<Option<(u64, u64)>> {
    let n = arch.levels.len();
    let mut out = vec![None; n];
    let mut prev = 1u64;
    let mut x_used = false;
    for i in (0..n).rev() {
        let count = instances(&arch.levels[i], pe);
        if count > prev && i + 1 < n {
            let f = split_ratio(count / prev, pe, x_used);
            x_used |= f.0 > 1;
            out[i + 1] = Some(f);
        }
        prev = count;
    }
    let macs = pe * pe;
    if n > 0 && macs > prev {
        out[0] = Some(split_ratio(macs / prev, pe, x_used));
    }
    out
}

fn split_ratio(ratio: u64, pe: u64, x_used: bool) -> (u64, u64) {
    if ratio == pe * pe && pe > 1 && !x_used {
        (pe, pe)
    } else if !x_used {
        (ratio, 1)
    } else {
        (1, ratio)
    }
}

fn container(out: &mut String, fan: (u64, u64)) {
    let name = match fan {
        (x, 1) if x > 1 => "PECols",
        (1, _) => "PERows",
        _ => "PEs",
    };
    let _ = writeln!(out, "  - !Container");
    let _ = writeln!(out, "    name: {name}");
    let mut parts = Vec::new();
    if fan.0 > 1 {
        parts.push(format!("meshX: {}", fan.0));
    }
    if fan.1 > 1 {
        parts.push(format!("meshY: {}", fan.1));
    }
    let _ = writeln!(out, "    spatial: {{{}}}", parts.join(", "));
}

/// Words per cycle one instance of a level serves, if limited.
fn bandwidth(level: &Level, pe: u64) -> Option<f64> {
    level.bandwidth.map(|b| match b {
        Bandwidth::Words(w) => w,
        Bandwidth::PerPeDim(c) => c * pe as f64,
        // Per instance: the level has one instance per unit of the spatial dim.
        Bandwidth::PerSpatial(c, _) => c,
    })
}

fn num(x: f64) -> String {
    let x = crate::util::finite_or(x, 0.0);
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// The architecture in Timeloop v0.4 form.
pub fn arch_yaml(arch: &Arch, hw: &TimeloopHw, title: &str) -> String {
    let pe = hw.pe_dim;
    let fan = fanouts(arch, pe);
    let mut y = String::new();
    let _ = writeln!(
        y,
        "# Generated by dosa: architecture `{}` for {}.",
        comment(&arch.name),
        comment(title)
    );
    let _ = writeln!(y, "# Timeloop v0.4. Buffer sizes are what one tile may use: Gemmini's C library double-buffers,");
    let _ = writeln!(
        y,
        "# so a double-buffered buffer is physically twice as large (see each buffer's comment)."
    );
    let _ = writeln!(y, "# PE array: {pe} x {pe}.");
    let _ = writeln!(y, "architecture:");
    let _ = writeln!(y, "  version: 0.4");
    let _ = writeln!(y, "  nodes:");
    let _ = writeln!(y, "  - !Container");
    let _ = writeln!(y, "    name: System");
    let _ = writeln!(
        y,
        "    attributes: {{technology: \"40nm\", global_cycle_seconds: 1e-9}}"
    );
    let n = arch.levels.len();
    for i in (0..n).rev() {
        let level = &arch.levels[i];
        if i + 1 < n {
            if let Some(f) = fan[i + 1] {
                container(&mut y, f);
            }
        }
        let name = yaml_name(&level.name);
        let bits = level.word_bits;
        let bw = bandwidth(level, pe)
            .map(|b| format!(", shared_bandwidth: {}", num(b)))
            .unwrap_or_default();
        let _ = writeln!(y, "  - !Component");
        let _ = writeln!(y, "    name: {name}");
        if level.is_backing {
            let _ = writeln!(y, "    class: DRAM");
            let _ = writeln!(
                y,
                "    attributes: {{type: \"LPDDR4\", width: 64, datawidth: {bits}{bw}}}"
            );
            continue;
        }
        let usable = hw.usable_bytes[i].unwrap_or(0);
        let wb = word_bytes(level);
        let row_words = if instances(level, pe) == 1 { pe } else { 1 };
        let depth = usable.div_ceil(row_words * wb).max(1);
        let width = row_words * u64::from(bits);
        let class = if level.instances == Instances::PerPe {
            "regfile"
        } else {
            "SRAM"
        };
        let note = if hw.derived[i] {
            "derived from the mapping (the architecture leaves it free)".to_string()
        } else if level.double_buffered {
            format!("physical {} B, double-buffered", usable * 2)
        } else {
            format!("physical {usable} B")
        };
        let kib = usable as f64 / 1024.0;
        let _ = writeln!(
            y,
            "    # {usable} B per instance x {} instance(s), {note}; dosa's energy: {:.5} pJ per access",
            instances(level, pe),
            crate::util::finite_or(level.energy.at(kib), 0.0)
        );
        let _ = writeln!(y, "    class: {class}");
        let _ = writeln!(
            y,
            "    attributes: {{depth: {depth}, width: {width}, datawidth: {bits}{bw}}}"
        );
    }
    if let Some(f) = fan[0] {
        container(&mut y, f);
    }
    let _ = writeln!(y, "  - !Component");
    let _ = writeln!(y, "    name: MACC");
    let _ = writeln!(
        y,
        "    # dosa's energy: {} pJ per MAC",
        crate::util::finite_or(arch.mac_energy_pj, 0.0)
    );
    let _ = writeln!(y, "    class: intmac");
    let _ = writeln!(y, "    attributes: {{width: 8}}");
    y
}

/// The layer as a Timeloop v0.4 convolution problem (dims R S P Q C K N).
pub fn problem_yaml(layer: &Layer, title: &str) -> String {
    let mut y = String::new();
    let _ = writeln!(y, "# Generated by dosa: {}.", comment(title));
    let _ = writeln!(y, "problem:");
    let _ = writeln!(y, "  version: 0.4");
    let _ = writeln!(y, "  shape:");
    let _ = writeln!(y, "    name: CNN_Layer");
    let _ = writeln!(y, "    dimensions: [R, S, P, Q, C, K, N]");
    let _ = writeln!(y, "    coefficients:");
    for c in ["Wstride", "Hstride", "Wdilation", "Hdilation"] {
        let _ = writeln!(y, "    - {{name: {c}, default: 1}}");
    }
    let _ = writeln!(y, "    data_spaces:");
    let _ = writeln!(y, "    - name: Weights");
    let _ = writeln!(y, "      projection: [[[C]], [[K]], [[R]], [[S]]]");
    let _ = writeln!(y, "    - name: Inputs");
    let _ = writeln!(y, "      projection:");
    let _ = writeln!(y, "      - [[N]]");
    let _ = writeln!(y, "      - [[C]]");
    let _ = writeln!(y, "      - [[R, Wdilation], [P, Wstride]]");
    let _ = writeln!(y, "      - [[S, Hdilation], [Q, Hstride]]");
    let _ = writeln!(y, "    - name: Outputs");
    let _ = writeln!(y, "      projection: [[[N]], [[K]], [[Q]], [[P]]]");
    let _ = writeln!(y, "      read_write: true");
    let _ = writeln!(y, "  instance:");
    for d in Dim::ALL {
        let _ = writeln!(y, "    {d}: {}", layer.dim(d));
    }
    let _ = writeln!(y, "    Wstride: {}", layer.wstride);
    let _ = writeln!(y, "    Hstride: {}", layer.hstride);
    let _ = writeln!(y, "    Wdilation: {}", layer.wdilation);
    let _ = writeln!(y, "    Hdilation: {}", layer.hdilation);
    y
}

fn factors(f: &[u64; 7]) -> String {
    Dim::ALL
        .iter()
        .map(|d| format!("{d}={}", f[d.index()]))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The mapping in Timeloop's form: per level (outermost first) its temporal loops (permutation
/// innermost first), its spatial fan-out if any, and which tensors it keeps.
pub fn mapping_yaml(arch: &Arch, hw: &TimeloopHw, mapping: &Mapping, title: &str) -> String {
    let fan = fanouts(arch, hw.pe_dim);
    let mut y = String::new();
    let _ = writeln!(y, "# Generated by dosa: {}.", comment(title));
    let _ = writeln!(y, "# Compact form: {}", comment(&mapping.to_string()));
    let _ = writeln!(
        y,
        "# Permutations list loops innermost first, as Timeloop reads them."
    );
    let _ = writeln!(y, "mapping:");
    for i in (0..mapping.levels.len().min(arch.levels.len())).rev() {
        let lm = &mapping.levels[i];
        let name = yaml_name(&arch.levels[i].name);
        let perm: String = lm.order.iter().rev().map(|d| d.letter()).collect();
        let _ = writeln!(y, "- target: {name}");
        let _ = writeln!(y, "  type: temporal");
        let _ = writeln!(y, "  factors: {}", factors(&lm.temporal));
        let _ = writeln!(y, "  permutation: {perm}");
        if lm.spatial.iter().any(|&s| s > 1) {
            let mut order: Vec<Dim> = Dim::ALL
                .iter()
                .copied()
                .filter(|d| lm.spatial[d.index()] > 1)
                .collect();
            order.extend(
                Dim::ALL
                    .iter()
                    .copied()
                    .filter(|d| lm.spatial[d.index()] <= 1),
            );
            let split = match fan[i] {
                Some((x, 1)) if x > 1 => 7,
                Some((1, _)) => 0,
                Some(_) => 1,
                None => 7,
            };
            let _ = writeln!(y, "- target: {name}");
            let _ = writeln!(y, "  type: spatial");
            let _ = writeln!(y, "  factors: {}", factors(&lm.spatial));
            let _ = writeln!(
                y,
                "  permutation: {}",
                order.iter().map(|d| d.letter()).collect::<String>()
            );
            let _ = writeln!(y, "  split: {split}");
        }
        let keeps = arch.levels[i].keeps;
        let keep: Vec<&str> = Tensor::ALL
            .iter()
            .filter(|t| keeps.contains(**t))
            .map(|t| tensor_name(*t))
            .collect();
        let bypass: Vec<&str> = Tensor::ALL
            .iter()
            .filter(|t| !keeps.contains(**t))
            .map(|t| tensor_name(*t))
            .collect();
        let _ = writeln!(y, "- target: {name}");
        let _ = writeln!(y, "  type: dataspace");
        let _ = writeln!(y, "  keep: [{}]", keep.join(", "));
        let _ = writeln!(y, "  bypass: [{}]", bypass.join(", "));
    }
    y
}

/// Which Timeloop input format to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Format {
    /// v0.3, the default: the only format the Timeloop fork that produced the reference data
    /// (`shared/timeloop/bin/timeloop-model`) reads, so the only one we can check against it.
    #[default]
    V03,
    /// v0.4, for current Timeloop and timeloopfe, which no longer read v0.3.
    V04,
}

/// Words a level moves per access in Timeloop, matching [`crate::model::exact::EvalOptions::timeloop`]:
/// DRAM in blocks of 64 words, a single-instance SRAM (Gemmini's scratchpad) in rows of the
/// PE array's width, replicated buffers word by word.
fn block_words(level: &Level, pe: u64) -> u64 {
    if level.is_backing {
        64
    } else if level.instances == Instances::Single {
        pe
    } else {
        1
    }
}

/// Whether the fork's built-in formula already gives dosa's energy per access at this level; if
/// not, the arch must set `vector-access-energy`, since the fork ignores an ERT's buffer entries.
fn builtin_energy(level: &Level) -> bool {
    use crate::ir::AccessEnergy;
    let builtin = if level.is_backing {
        AccessEnergy::timeloop_dram(level.word_bits)
    } else {
        AccessEnergy::timeloop_sram(level.word_bits)
    };
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0);
    match (level.energy, builtin) {
        (AccessEnergy::Const(a), AccessEnergy::Const(b)) => close(a, b),
        (
            AccessEnergy::Linear { base, per_kib },
            AccessEnergy::Linear {
                base: b0,
                per_kib: k0,
            },
        ) => close(base, b0) && close(per_kib, k0),
        _ => false,
    }
}

/// One v0.3 subtree: the levels (indices, outermost first) sharing an instance count.
struct Group {
    name: String,
    count: u64,
    levels: Vec<usize>,
}

/// The v0.3 nesting: the backing level in `System`, then one subtree per change in instance
/// count going inward (`Chip`, `PECols[..]`, `PERows[..]`), and the MACs in the innermost
/// subtree, or in one of their own if the innermost buffers are not per PE.
fn groups(arch: &Arch, pe: u64) -> Vec<Group> {
    let mut out: Vec<Group> = Vec::new();
    let sub_name = |parent: u64, count: u64| -> String {
        if count == 1 {
            "Chip".to_string()
        } else if count == pe && parent == 1 {
            format!("PECols[0..{}]", pe - 1)
        } else if count == pe * pe && parent == pe {
            format!("PERows[0..{}]", pe - 1)
        } else {
            format!("PEs[0..{}]", count / parent.max(1) - 1)
        }
    };
    for i in (0..arch.levels.len()).rev() {
        let level = &arch.levels[i];
        let count = instances(level, pe);
        match out.last_mut() {
            Some(g) if g.count == count && (g.name != "System" || level.is_backing) => {
                g.levels.push(i)
            }
            last => {
                let name = if last.is_none() {
                    "System".to_string()
                } else {
                    sub_name(out.last().map_or(1, |g| g.count), count)
                };
                out.push(Group {
                    name,
                    count,
                    levels: vec![i],
                });
            }
        }
    }
    let inner = out.last().map_or(1, |g| g.count);
    if inner < pe * pe || out.len() == 1 {
        out.push(Group {
            name: if inner < pe * pe {
                sub_name(inner, pe * pe)
            } else {
                "Chip".to_string()
            },
            count: pe * pe,
            levels: Vec::new(),
        });
    }
    out
}

/// The architecture in Timeloop v0.3 form, with the attributes the reference data was generated
/// with (`shared/timeloop/tl_eval.py`): sizes as depth x width rows of the level's block.
pub fn arch_yaml_v03(arch: &Arch, hw: &TimeloopHw, title: &str) -> String {
    let pe = hw.pe_dim;
    let mut y = String::new();
    let _ = writeln!(
        y,
        "# Generated by dosa: architecture `{}` for {}.",
        comment(&arch.name),
        comment(title)
    );
    let _ = writeln!(
        y,
        "# Timeloop v0.3 (run: timeloop-model arch.yaml problem.yaml mapping.yaml ert.yaml)."
    );
    let _ = writeln!(
        y,
        "# Buffer sizes are what one tile may use: Gemmini's C library double-buffers,"
    );
    let _ = writeln!(
        y,
        "# so a double-buffered buffer is physically twice as large (see each buffer's comment)."
    );
    let _ = writeln!(y, "# PE array: {pe} x {pe}.");
    let _ = writeln!(y, "architecture:");
    let _ = writeln!(y, "  version: 0.3");
    let gs = groups(arch, pe);
    for (depth, g) in gs.iter().enumerate() {
        // Each group is the only subtree of the previous one.
        let ind = " ".repeat(2 * depth);
        let _ = writeln!(y, "{ind}  subtree:");
        let _ = writeln!(y, "{ind}  - name: {}", g.name);
        if depth == 1 {
            let _ = writeln!(y, "{ind}    attributes:");
            let _ = writeln!(y, "{ind}      technology: 40nm");
        }
        let _ = writeln!(y, "{ind}    local:");
        for &i in &g.levels {
            level_v03(&mut y, &ind, arch, hw, i);
        }
        if depth + 1 == gs.len() {
            let _ = writeln!(y, "{ind}    - name: MACC");
            let _ = writeln!(
                y,
                "{ind}      # dosa's energy: {} pJ per MAC (set in ert.yaml)",
                num(arch.mac_energy_pj)
            );
            let _ = writeln!(y, "{ind}      class: intmac");
            let _ = writeln!(y, "{ind}      attributes:");
            let _ = writeln!(y, "{ind}        datawidth: 8");
            let _ = writeln!(y, "{ind}        word-bits: 8");
        }
    }
    y
}

fn level_v03(y: &mut String, ind: &str, arch: &Arch, hw: &TimeloopHw, i: usize) {
    let level = &arch.levels[i];
    let pe = hw.pe_dim;
    let name = yaml_name(&level.name);
    let bits = level.word_bits;
    let block = block_words(level, pe);
    let count = instances(level, pe);
    let a = format!("{ind}        ");
    let _ = writeln!(y, "{ind}    - name: {name}");
    if level.is_backing {
        let _ = writeln!(y, "{ind}      class: DRAM");
    } else {
        let usable = hw.usable_bytes[i].unwrap_or(0);
        let note = if hw.derived[i] {
            "derived from the mapping (the architecture leaves it free)".to_string()
        } else if level.double_buffered {
            format!("physical {} B, double-buffered", usable * 2)
        } else {
            format!("physical {usable} B")
        };
        let _ = writeln!(
            y,
            "{ind}      # {usable} B per instance x {count} instance(s), {note}; dosa's energy: {:.5} pJ per access",
            crate::util::finite_or(level.energy.at(usable as f64 / 1024.0), 0.0)
        );
        let _ = writeln!(y, "{ind}      class: SRAM");
    }
    let _ = writeln!(y, "{ind}      attributes:");
    let _ = writeln!(y, "{a}instances: {count}");
    if level.is_backing {
        let _ = writeln!(y, "{a}block_size: {block}");
    } else {
        let usable = hw.usable_bytes[i].unwrap_or(0);
        let depth = usable.div_ceil(block * word_bytes(level)).max(1);
        let _ = writeln!(y, "{a}entries: {}", depth * block);
        let _ = writeln!(y, "{a}depth: {depth}");
        let _ = writeln!(y, "{a}width: {}", block * u64::from(bits));
        if count == 1 {
            let _ = writeln!(y, "{a}meshX: 1");
        }
    }
    let _ = writeln!(y, "{a}word-bits: {bits}");
    if let Some(b) = bandwidth(level, pe) {
        let _ = writeln!(y, "{a}shared_bandwidth: {}", num(b));
    }
    if !builtin_energy(level) {
        let _ = writeln!(
            y,
            "{a}vector-access-energy: {}",
            num(access_energy(level, hw, i) * block as f64)
        );
    }
}

/// dosa's energy per word access of level `i` at the size given to Timeloop.
fn access_energy(level: &Level, hw: &TimeloopHw, i: usize) -> f64 {
    let kib = hw.usable_bytes[i].unwrap_or(0) as f64 / 1024.0;
    crate::util::finite_or(level.energy.at(kib), 0.0)
}

/// The energy reference table: the MAC's energy (the fork's default is 0.25 pJ, dosa's is the
/// architecture's `mac_energy`) and every buffer's per-access energy. The fork takes only the MAC
/// from it (buffers use its built-in formulas or `vector-access-energy`); other v0.3 Timeloops
/// take all of it.
pub fn ert_yaml_v03(arch: &Arch, hw: &TimeloopHw, title: &str) -> String {
    let pe = hw.pe_dim;
    let mut y = String::new();
    let _ = writeln!(
        y,
        "# Generated by dosa: energy per action for {}.",
        comment(title)
    );
    let _ = writeln!(y, "ERT:");
    let _ = writeln!(y, "  version: 0.3");
    let _ = writeln!(y, "  tables:");
    let mut path = String::new();
    let gs = groups(arch, pe);
    for (k, g) in gs.iter().enumerate() {
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(&g.name);
        let mut table = |name: &str, actions: &[&str], e: f64| {
            let _ = writeln!(y, "  - name: {path}.{name}");
            let _ = writeln!(y, "    actions:");
            for act in actions {
                let _ = writeln!(y, "    - name: {act}");
                let _ = writeln!(y, "      arguments: null");
                let _ = writeln!(y, "      energy: {}", num(e));
            }
            let _ = writeln!(y, "    - name: idle");
            let _ = writeln!(y, "      arguments: null");
            let _ = writeln!(y, "      energy: 0");
        };
        for &i in &g.levels {
            let level = &arch.levels[i];
            let e = access_energy(level, hw, i) * block_words(level, pe) as f64;
            table(&yaml_name(&level.name), &["read", "write", "update"], e);
        }
        if k + 1 == gs.len() {
            table(
                "MACC",
                &["mac_random", "mac_reused", "mac_gated"],
                crate::util::finite_or(arch.mac_energy_pj, 0.0),
            );
        }
    }
    y
}

/// The layer as a Timeloop v0.3 convolution problem (dims R S P Q C K N).
pub fn problem_yaml_v03(layer: &Layer, title: &str) -> String {
    let mut y = String::new();
    let _ = writeln!(y, "# Generated by dosa: {}.", comment(title));
    let _ = writeln!(y, "problem:");
    let _ = writeln!(y, "  shape:");
    let _ = writeln!(y, "    name: CNN-Layer");
    let _ = writeln!(y, "    dimensions: [ R, S, P, Q, C, K, N ]");
    let _ = writeln!(y, "    coefficients:");
    for c in ["Wstride", "Hstride", "Wdilation", "Hdilation"] {
        let _ = writeln!(y, "    - name: {c}");
        let _ = writeln!(y, "      default: 1");
    }
    let _ = writeln!(y, "    data-spaces:");
    let _ = writeln!(y, "    - name: Weights");
    let _ = writeln!(y, "      projection: [ [[C]], [[K]], [[R]], [[S]] ]");
    let _ = writeln!(y, "    - name: Inputs");
    let _ = writeln!(y, "      projection:");
    let _ = writeln!(y, "      - [ [N] ]");
    let _ = writeln!(y, "      - [ [C] ]");
    let _ = writeln!(y, "      - [ [R, Wdilation], [P, Wstride] ]");
    let _ = writeln!(y, "      - [ [S, Hdilation], [Q, Hstride] ]");
    let _ = writeln!(y, "    - name: Outputs");
    let _ = writeln!(y, "      projection: [ [[N]], [[K]], [[Q]], [[P]] ]");
    let _ = writeln!(y, "      read-write: True");
    let _ = writeln!(y, "  instance:");
    for d in Dim::ALL {
        let _ = writeln!(y, "    {d}: {}", layer.dim(d));
    }
    let _ = writeln!(y, "    Wstride: {}", layer.wstride);
    let _ = writeln!(y, "    Hstride: {}", layer.hstride);
    let _ = writeln!(y, "    Wdilation: {}", layer.wdilation);
    let _ = writeln!(y, "    Hdilation: {}", layer.hdilation);
    y
}

/// The mapping in Timeloop v0.3 form: per level (outermost first) what it keeps, its temporal
/// loops (permutation innermost first) and, where instances fan out below it, its spatial
/// factors, all along meshX (`split` past the last dim), as the reference data was generated.
/// `Err` if a spatial factor sits at a level with no fan-out below it.
pub fn mapping_yaml_v03(
    arch: &Arch,
    hw: &TimeloopHw,
    mapping: &Mapping,
    title: &str,
) -> Result<String, String> {
    let pe = hw.pe_dim;
    let mut y = String::new();
    let _ = writeln!(y, "# Generated by dosa: {}.", comment(title));
    let _ = writeln!(y, "# Compact form: {}", comment(&mapping.to_string()));
    let _ = writeln!(
        y,
        "# Permutations list loops innermost first, as Timeloop reads them."
    );
    let _ = writeln!(y, "mapping:");
    for i in (0..mapping.levels.len().min(arch.levels.len())).rev() {
        let lm = &mapping.levels[i];
        let level = &arch.levels[i];
        let name = yaml_name(&level.name);
        let list = |keep: bool| -> String {
            Tensor::ALL
                .iter()
                .filter(|t| level.keeps.contains(**t) == keep)
                .map(|t| tensor_name(*t))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(y, "- target: {name}");
        let _ = writeln!(y, "  type: bypass");
        let _ = writeln!(y, "  keep: [{}]", list(true));
        let _ = writeln!(y, "  bypass: [{}]", list(false));
        let perm: String = lm.order.iter().rev().map(|d| d.letter()).collect();
        let _ = writeln!(y, "- target: {name}");
        let _ = writeln!(y, "  type: temporal");
        let _ = writeln!(y, "  factors: {}", factors(&lm.temporal));
        let _ = writeln!(y, "  permutation: {perm}");
        let below = if i == 0 {
            pe * pe
        } else {
            instances(&arch.levels[i - 1], pe)
        };
        if below > instances(level, pe) {
            let mut order: Vec<Dim> = Dim::ALL
                .iter()
                .copied()
                .filter(|d| lm.spatial[d.index()] > 1)
                .collect();
            order.extend(
                Dim::ALL
                    .iter()
                    .copied()
                    .filter(|d| lm.spatial[d.index()] <= 1),
            );
            let _ = writeln!(y, "- target: {name}");
            let _ = writeln!(y, "  type: spatial");
            let _ = writeln!(y, "  factors: {}", factors(&lm.spatial));
            let _ = writeln!(
                y,
                "  permutation: {}",
                order.iter().map(|d| d.letter()).collect::<String>()
            );
            let _ = writeln!(y, "  split: {}", Dim::ALL.len());
        } else if lm.spatial.iter().any(|&s| s > 1) {
            return Err(format!(
                "level `{}` has a spatial factor but no fan-out below it",
                level.name
            ));
        }
    }
    Ok(y)
}

fn folder_name(i: usize, label: &str) -> String {
    let safe: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{i:02}_{safe}")
}

/// v0.4 files for every mapped layer, or the problems found (no files then). Kept for existing
/// callers; [`emit_as`] chooses the format.
pub fn emit(program: &Program) -> Result<Vec<EmittedFile>, Vec<String>> {
    emit_as(program, Format::V04)
}

/// Files for every mapped layer in `format`, or the problems found (no files then).
pub fn emit_as(program: &Program, format: Format) -> Result<Vec<EmittedFile>, Vec<String>> {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for m in super::mapped_layers(program)? {
        let m = match m {
            Ok(m) => m,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let (i, label, layer, mapping) = (m.index, m.label, m.layer, m.mapping);
        // Timeloop has no partial tiles: a mapping with some (`K64+`, or `auto` tiles that do
        // not divide) is written on the problem padded to whole tiles, whose cost bounds the
        // partial mapping's from above.
        let padded = crate::model::pieces::is_partial(layer, mapping)
            .then(|| crate::model::pieces::covering_layer(layer, mapping));
        let layer = padded.as_ref().unwrap_or(layer);
        let mut mapping = mapping.clone();
        mapping.partial = [false; 7];
        let mapping = &mapping;
        let hw = hardware(&program.arch, layer, mapping);
        if let Err(e) = crate::passes::legal::check(&program.arch, layer, mapping, hw.pe_dim) {
            errors.push(format!(
                "layer `{label}` (mapping {i}): the mapping is not legal for the layer: {e}"
            ));
            continue;
        }
        let dir = folder_name(i, &label);
        let title = match &padded {
            Some(p) => format!(
                "layer {label}, padded to whole tiles ({}): an upper bound of its partial-tile cost",
                crate::ir::Dim::ALL
                    .iter()
                    .filter(|d| p.dim(**d) != m.layer.dim(**d))
                    .map(|d| format!("{d} {} -> {}", m.layer.dim(*d), p.dim(*d)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => format!("layer {label}"),
        };
        let arch = &program.arch;
        let mut add = |name: &str, contents: String| {
            files.push(EmittedFile {
                path: format!("{dir}/{name}"),
                contents,
            })
        };
        match format {
            Format::V04 => {
                add("arch.yaml", arch_yaml(arch, &hw, &title));
                add("problem.yaml", problem_yaml(layer, &title));
                add("mapping.yaml", mapping_yaml(arch, &hw, mapping, &title));
            }
            Format::V03 => match mapping_yaml_v03(arch, &hw, mapping, &title) {
                Ok(map) => {
                    add("arch.yaml", arch_yaml_v03(arch, &hw, &title));
                    add("problem.yaml", problem_yaml_v03(layer, &title));
                    add("mapping.yaml", map);
                    add("ert.yaml", ert_yaml_v03(arch, &hw, &title));
                }
                Err(e) => errors.push(format!("layer `{label}` (mapping {i}): {e}")),
            },
        }
    }
    if errors.is_empty() {
        Ok(files)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{gemmini_arch, parse_compact, Bound};

    #[test]
    fn gemmini_fans_out_columns_then_rows() {
        let a = gemmini_arch();
        let f = fanouts(&a, 16);
        // Registers <- Accumulator: rows (Y); Accumulator <- Scratchpad: columns (X).
        assert_eq!(f, vec![None, Some((1, 16)), Some((16, 1)), None]);
    }

    #[test]
    fn sizes_are_usable_halves_or_derived() {
        let l = Layer::conv("c", [3, 3, 8, 8, 16, 32, 1], 1, 1);
        let m =
            parse_compact("L3[WIO] K2 - L2[WI] K16X - L1[O] S3 R3 Q8 P8 C16X - L0[W] N1").unwrap();
        let hw = hardware(&gemmini_arch(), &l, &m);
        assert_eq!(hw.pe_dim, 16);
        assert_eq!(
            hw.usable_bytes,
            vec![Some(1), Some(2048), Some(128 * 1024), None]
        );
        let mut free = gemmini_arch();
        free.levels[2].capacity = Bound::Free;
        free.levels[1].capacity = Bound::Free;
        let hw = hardware(&free, &l, &m);
        // Scratchpad: W 3*3*16*16 + I 16*10*10; accumulator per column: 8*8 outputs of 4 B.
        assert_eq!(hw.usable_bytes[2], Some(2304 + 1600));
        assert_eq!(hw.usable_bytes[1], Some(256));
        assert!(hw.derived[1] && hw.derived[2]);
    }
}
