//! The exact evaluator: one integer mapping of one layer on given hardware.
//!
//! It runs the generic rules of [`super::rules`] in `f64`, with the loop structure read off the
//! integer factors. With [`EvalOptions::timeloop`] it also reproduces Timeloop's integer effects
//! (per-level cycles rounded up with Timeloop's own floating-point steps, accesses rounded up to
//! whole blocks per instance), which only matter on tiny layers; [`EvalOptions::analytical`] leaves
//! them out and then agrees exactly with the relaxed model at integer points.

use super::algebra::F64;
use super::nest::{Nest, Structure};
use super::rules::{self, Costs, Factors, HwIn};
use crate::ir::{Arch, Dim, Hardware, Layer, Mapping, Tensor};
use serde::{Deserialize, Serialize};

/// Why a mapping cannot be evaluated on an architecture.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ModelError {
    #[error("the architecture `{arch}` is not usable: {why}")]
    Arch { arch: String, why: String },
    #[error("the mapping has {got} levels but the architecture has {want}")]
    LevelCount { got: usize, want: usize },
    #[error("dim {dim}: the factors multiply to {got} but the layer has {want} (a partial last tile is written on the outermost factor, like `{dim}4+`)")]
    Factorisation { dim: Dim, got: u128, want: u64 },
    #[error("dim {dim}: the partial factor at L{level} must be temporal (the lanes of a spatial one run together)")]
    PartialSpatial { dim: Dim, level: usize },
    #[error("dim {dim}: tiles of {inner} cover {size} in ceil({size}/{inner}) = {want}, but the partial factor at L{level} is {got}")]
    PartialCount {
        dim: Dim,
        level: usize,
        got: u64,
        size: u64,
        inner: u128,
        want: u128,
    },
    #[error(
        "layer `{layer}`: its partial tiles make {count} pieces, more than the model evaluates"
    )]
    TooManyPieces { layer: String, count: usize },
    #[error("level L{level} ({name}) may not have a temporal factor of {dim} (found {factor})")]
    ForbiddenTemporal {
        level: usize,
        name: String,
        dim: Dim,
        factor: u64,
    },
    #[error("level L{level} ({name}) may not have a spatial factor of {dim} (found {factor}X)")]
    ForbiddenSpatial {
        level: usize,
        name: String,
        dim: Dim,
        factor: u64,
    },
    #[error(
        "level L{level} ({name}) keeps [{got}] in the mapping but [{want}] in the architecture"
    )]
    Keeps {
        level: usize,
        name: String,
        got: String,
        want: String,
    },
    #[error("the hardware describes {got} levels but the architecture has {want}")]
    HardwareLevels { got: usize, want: usize },
    #[error("the hardware's pe_dim must be positive and finite (got {0})")]
    PeDim(f64),
}

/// Words per block of a level: Timeloop counts an access stream per instance in whole blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlockWords {
    /// Word-addressed (registers, accumulator rows of one word).
    One,
    /// A fixed block (Timeloop's DRAM in the reference: 64 words).
    Words(u64),
    /// One row of `pe_dim` words (Gemmini's scratchpad row).
    PeDim,
}

/// How exactly to follow Timeloop's integer arithmetic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalOptions {
    /// Round each level's cycles up and each access stream up to whole blocks, as Timeloop does.
    pub timeloop_rounding: bool,
    /// Block size per level (used only with `timeloop_rounding`).
    pub blocks: Vec<BlockWords>,
}

impl EvalOptions {
    /// The analytical model (no integer rounding): what the search optimises.
    pub fn analytical(arch: &Arch) -> EvalOptions {
        EvalOptions {
            timeloop_rounding: false,
            blocks: vec![BlockWords::One; arch.levels.len()],
        }
    }

    /// Timeloop as used for the reference data: DRAM blocks of 64 words, single-instance SRAMs
    /// (the scratchpad) in rows of `pe_dim` words, replicated buffers word by word.
    pub fn timeloop(arch: &Arch) -> EvalOptions {
        let blocks = arch
            .levels
            .iter()
            .map(|l| {
                if l.is_backing {
                    BlockWords::Words(64)
                } else if l.instances == crate::ir::Instances::Single {
                    BlockWords::PeDim
                } else {
                    BlockWords::One
                }
            })
            .collect();
        EvalOptions {
            timeloop_rounding: true,
            blocks,
        }
    }
}

/// Traffic and cost of one storage level.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LevelEval {
    pub name: String,
    /// Per tensor (W, I, O), summed over instances.
    pub reads: [f64; 3],
    pub fills: [f64; 3],
    pub updates: [f64; 3],
    /// All accesses of the level.
    pub total: f64,
    /// Cycles this level alone would need (`None` when its bandwidth is unlimited).
    pub cycles: Option<f64>,
    /// Energy of the level's accesses (uJ).
    pub energy_uj: f64,
    /// Energy per word access used (pJ).
    pub pj_per_access: f64,
}

/// The smallest hardware one mapping runs on (MODEL.md section 4).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MinHardware {
    pub pe_dim: u64,
    /// Usable bytes one instance of each level needs (`None`: the backing level, or keeps nothing).
    pub inst_bytes: Vec<Option<f64>>,
}

/// Everything the exact evaluator says about one layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerEval {
    pub macs: f64,
    pub compute_cycles: f64,
    /// Latency in cycles: the slowest of the compute array and every level.
    pub cycles: f64,
    pub energy_uj: f64,
    /// cycles x uJ.
    pub edp: f64,
    pub levels: Vec<LevelEval>,
    pub min_hw: MinHardware,
}

/// Check that `arch` is a shape the model handles: a last, backing level keeping every tensor.
pub fn check_arch(arch: &Arch) -> Result<(), ModelError> {
    let bad = |why: &str| {
        Err(ModelError::Arch {
            arch: arch.name.clone(),
            why: why.to_string(),
        })
    };
    let Some(last) = arch.levels.last() else {
        return bad("it has no storage level");
    };
    if !last.is_backing {
        return bad("its last level must be the backing store");
    }
    if arch.levels[..arch.levels.len() - 1]
        .iter()
        .any(|l| l.is_backing)
    {
        return bad("only the last level may be the backing store");
    }
    if Tensor::ALL.iter().any(|&t| !last.keeps.contains(t)) {
        return bad("the backing store must keep W, I and O");
    }
    Ok(())
}

/// Check a mapping against a layer and an architecture (the errors a user can make).
pub fn check_mapping(arch: &Arch, layer: &Layer, mapping: &Mapping) -> Result<(), ModelError> {
    check_arch(arch)?;
    if mapping.levels.len() != arch.levels.len() {
        return Err(ModelError::LevelCount {
            got: mapping.levels.len(),
            want: arch.levels.len(),
        });
    }
    for (l, (lm, lv)) in mapping.levels.iter().zip(&arch.levels).enumerate() {
        if lm.keeps != lv.keeps {
            return Err(ModelError::Keeps {
                level: l,
                name: lv.name.clone(),
                got: lm.keeps.letters(),
                want: lv.keeps.letters(),
            });
        }
        for d in Dim::ALL {
            let t = lm.temporal[d.index()];
            if t > 1 && !lv.allows_temporal(d) {
                return Err(ModelError::ForbiddenTemporal {
                    level: l,
                    name: lv.name.clone(),
                    dim: d,
                    factor: t,
                });
            }
            let s = lm.spatial[d.index()];
            let max_ok = lv
                .spatial
                .iter()
                .find(|sd| sd.dim == d)
                .map(|sd| sd.max.is_none_or(|m| s <= m));
            if s > 1 && max_ok != Some(true) {
                return Err(ModelError::ForbiddenSpatial {
                    level: l,
                    name: lv.name.clone(),
                    dim: d,
                    factor: s,
                });
            }
        }
    }
    super::pieces::check_cover(layer, mapping)
}

/// The loop nest (factors > 1), structure and factor table of an integer mapping.
pub fn integer_nest(
    arch: &Arch,
    layer: &Layer,
    mapping: &Mapping,
) -> (Nest, Structure, Factors<f64>) {
    let orders: Vec<Vec<Dim>> = mapping.levels.iter().map(|l| l.order.clone()).collect();
    let factor = |lp: super::nest::LoopRef| {
        let lm = &mapping.levels[lp.level];
        if lp.spatial {
            lm.spatial[lp.dim.index()]
        } else {
            lm.temporal[lp.dim.index()]
        }
    };
    let nest = Nest::build(arch.levels.len(), &orders, |lp| factor(lp) > 1);
    let st = Structure::exact(&nest, layer, |i| factor(nest.loops[i]));
    let f = Factors {
        temporal: mapping
            .levels
            .iter()
            .map(|l| l.temporal.map(|v| v as f64))
            .collect(),
        spatial: mapping
            .levels
            .iter()
            .map(|l| l.spatial.map(|v| v as f64))
            .collect(),
    };
    (nest, st, f)
}

/// Energy per word access (pJ) of every level on `hw`: each SRAM at the usable size of one instance.
pub fn energies_pj(arch: &Arch, hw: &Hardware) -> Vec<f64> {
    arch.levels
        .iter()
        .enumerate()
        .map(|(l, lv)| {
            let inst = lv.instance_count(hw.pe_dim).max(1.0);
            let kib = hw.usable_bytes.get(l).copied().unwrap_or(0.0) / inst / 1024.0;
            lv.energy.at(kib)
        })
        .collect()
}

/// Minimum hardware of a checked mapping.
pub fn min_hardware(
    arch: &Arch,
    layer: &Layer,
    mapping: &Mapping,
) -> Result<MinHardware, ModelError> {
    check_mapping(arch, layer, mapping)?;
    Ok(covering_min_hw(arch, layer, mapping))
}

/// [`min_hardware`] of a checked mapping: a partial mapping's tiles are those of the problem it
/// covers.
fn covering_min_hw(arch: &Arch, layer: &Layer, mapping: &Mapping) -> MinHardware {
    let covering = super::pieces::covering_layer(layer, mapping);
    let (nest, st, f) = integer_nest(arch, &covering, mapping);
    let costs = rules::layer_costs(&F64, arch, &covering, &nest, &st, &f);
    min_hw_of(&costs)
}

fn min_hw_of(costs: &Costs<f64>) -> MinHardware {
    MinHardware {
        pe_dim: costs.req_pe.round() as u64,
        inst_bytes: costs.req_inst_bytes.clone(),
    }
}

/// The hardware a set of mappings needs together: the largest PE array, and for each level the
/// largest per-instance requirement times the instance count of that array (so every layer fits).
pub fn network_hardware(arch: &Arch, per_layer: &[MinHardware]) -> Hardware {
    let pe = per_layer
        .iter()
        .map(|m| m.pe_dim)
        .max()
        .unwrap_or(arch.pe_min)
        .max(arch.pe_min) as f64;
    let usable_bytes = (0..arch.levels.len())
        .map(|l| {
            let inst = per_layer
                .iter()
                .filter_map(|m| m.inst_bytes.get(l).copied().flatten())
                .fold(0.0, f64::max);
            inst * arch.levels[l].instance_count(pe)
        })
        .collect();
    Hardware {
        pe_dim: pe,
        usable_bytes,
    }
}

/// Evaluate one mapping of one layer on `hw`; a mapping with partial tiles is the sum of its
/// pieces ([`super::pieces`]).
pub fn evaluate_layer(
    arch: &Arch,
    layer: &Layer,
    mapping: &Mapping,
    hw: &Hardware,
    opts: &EvalOptions,
) -> Result<LayerEval, ModelError> {
    check_mapping(arch, layer, mapping)?;
    if !super::pieces::is_partial(layer, mapping) {
        return evaluate_exact(arch, layer, mapping, hw, opts);
    }
    let pieces = super::pieces::pieces(layer, mapping)?;
    let mut evals = Vec::with_capacity(pieces.len());
    for p in &pieces {
        evals.push(evaluate_exact(arch, &p.layer, &p.mapping, hw, opts)?);
    }
    let mut total = sum_evals(evals).ok_or_else(|| ModelError::TooManyPieces {
        layer: layer.name.clone(),
        count: 0,
    })?;
    total.min_hw = covering_min_hw(arch, layer, mapping);
    Ok(total)
}

/// Pieces that run one after another: cycles, energy and accesses add (`None` when empty).
pub fn sum_evals(evals: impl IntoIterator<Item = LayerEval>) -> Option<LayerEval> {
    let mut total: Option<LayerEval> = None;
    for ev in evals {
        total = Some(match total {
            None => ev,
            Some(mut t) => {
                t.macs += ev.macs;
                t.compute_cycles += ev.compute_cycles;
                t.cycles += ev.cycles;
                t.energy_uj += ev.energy_uj;
                for (a, b) in t.levels.iter_mut().zip(&ev.levels) {
                    for k in 0..3 {
                        a.reads[k] += b.reads[k];
                        a.fills[k] += b.fills[k];
                        a.updates[k] += b.updates[k];
                    }
                    a.total += b.total;
                    a.energy_uj += b.energy_uj;
                    a.cycles = match (a.cycles, b.cycles) {
                        (Some(x), Some(y)) => Some(x + y),
                        (x, y) => x.or(y),
                    };
                }
                t
            }
        });
    }
    total.map(|mut t| {
        t.edp = t.cycles * t.energy_uj;
        t
    })
}

/// [`evaluate_layer`] of a checked mapping whose factors divide the layer.
fn evaluate_exact(
    arch: &Arch,
    layer: &Layer,
    mapping: &Mapping,
    hw: &Hardware,
    opts: &EvalOptions,
) -> Result<LayerEval, ModelError> {
    if hw.usable_bytes.len() != arch.levels.len() {
        return Err(ModelError::HardwareLevels {
            got: hw.usable_bytes.len(),
            want: arch.levels.len(),
        });
    }
    if !(hw.pe_dim.is_finite() && hw.pe_dim > 0.0) {
        return Err(ModelError::PeDim(hw.pe_dim));
    }
    let (nest, st, f) = integer_nest(arch, layer, mapping);
    let costs = rules::layer_costs(&F64, arch, layer, &nest, &st, &f);
    let e = energies_pj(arch, hw);
    Ok(if opts.timeloop_rounding {
        timeloop_head(arch, &costs, hw, &e, opts)
    } else {
        analytical_head(arch, &costs, hw, &e)
    })
}

fn triples(tr: &[rules::Traffic<f64>; 3]) -> ([f64; 3], [f64; 3], [f64; 3]) {
    let g = |o: Option<f64>| o.unwrap_or(0.0);
    (
        tr.map(|x| g(x.reads)),
        tr.map(|x| g(x.fills)),
        tr.map(|x| g(x.updates)),
    )
}

fn analytical_head(arch: &Arch, costs: &Costs<f64>, hw: &Hardware, e: &[f64]) -> LayerEval {
    let hwin = HwIn {
        pe_dim: hw.pe_dim,
        energy_pj: e.to_vec(),
    };
    let (cycles, energy_uj) = rules::smooth_head(&F64, arch, costs, &hwin);
    let levels = (0..arch.levels.len())
        .map(|l| {
            let (reads, fills, updates) = triples(&costs.traffic[l]);
            let total = rules::level_total(&F64, &costs.traffic[l]).unwrap_or(0.0);
            let cycles = rules::bandwidth(&F64, arch, costs, hw.pe_dim, l).map(|bw| total / bw);
            LevelEval {
                name: arch.levels[l].name.clone(),
                reads,
                fills,
                updates,
                total,
                cycles,
                energy_uj: total * e[l] * 1e-6,
                pj_per_access: e[l],
            }
        })
        .collect();
    LayerEval {
        macs: costs.macs,
        compute_cycles: costs.compute_cycles,
        cycles,
        energy_uj,
        edp: cycles * energy_uj,
        levels,
        min_hw: min_hw_of(costs),
    }
}

/// Timeloop's `ceil(compute_cycles / slowdown)` with its exact sequence of float operations: per
/// tensor per-instance reads and writes each divided by the compute cycles, then summed.
fn timeloop_level_cycles(cc: f64, reads: &[f64; 3], writes: &[f64; 3], bw: f64) -> f64 {
    let r = reads.iter().fold(0.0, |acc, x| acc + x / cc);
    let w = writes.iter().fold(0.0, |acc, x| acc + x / cc);
    let demand = r + w;
    if bw < demand {
        (cc / (bw / demand)).ceil()
    } else {
        cc
    }
}

fn timeloop_head(
    arch: &Arch,
    costs: &Costs<f64>,
    hw: &Hardware,
    e: &[f64],
    opts: &EvalOptions,
) -> LayerEval {
    let cc = costs.compute_cycles;
    let mut cycles = cc;
    let mut energy_pj = costs.macs * arch.mac_energy_pj;
    let mut levels = Vec::with_capacity(arch.levels.len());
    for (l, &el) in e.iter().enumerate() {
        let (reads, fills, updates) = triples(&costs.traffic[l]);
        let inst = costs.instances[l].unwrap_or(1.0);
        let total = rules::level_total(&F64, &costs.traffic[l]).unwrap_or(0.0);
        let level_cycles = rules::bandwidth(&F64, arch, costs, hw.pe_dim, l).map(|bw| {
            let r = reads.map(|x| x / inst);
            let w = [0, 1, 2].map(|t| (fills[t] + updates[t]) / inst);
            timeloop_level_cycles(cc, &r, &w, bw / inst)
        });
        if let Some(c) = level_cycles {
            cycles = cycles.max(c);
        }
        let block = match opts.blocks.get(l).copied().unwrap_or(BlockWords::One) {
            BlockWords::One => 1.0,
            BlockWords::Words(w) => w.max(1) as f64,
            BlockWords::PeDim => hw.pe_dim.round().max(1.0),
        };
        let rounded: f64 = [reads, fills, updates]
            .iter()
            .flat_map(|a| a.iter())
            .map(|&x| {
                let per = x / inst;
                (per / block).ceil() * block * inst
            })
            .sum();
        let level_energy = rounded * el;
        energy_pj += level_energy;
        levels.push(LevelEval {
            name: arch.levels[l].name.clone(),
            reads,
            fills,
            updates,
            total,
            cycles: level_cycles,
            energy_uj: level_energy * 1e-6,
            pj_per_access: el,
        });
    }
    let energy_uj = energy_pj * 1e-6;
    LayerEval {
        macs: costs.macs,
        compute_cycles: cc,
        cycles,
        energy_uj,
        edp: cycles * energy_uj,
        levels,
        min_hw: min_hw_of(costs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{gemmini_arch, parse_compact};

    fn hw16() -> Hardware {
        // pe 16, 128 KiB scratchpad, 32 KiB accumulator (2 KiB per column), registers 1 byte each.
        Hardware {
            pe_dim: 16.0,
            usable_bytes: vec![256.0, 32.0 * 1024.0, 128.0 * 1024.0, 0.0],
        }
    }

    #[test]
    fn model_md_example_counts() {
        let arch = gemmini_arch();
        let layer = Layer::conv("conv1", [7, 7, 112, 112, 3, 64, 1], 2, 2);
        let m =
            parse_compact("L3[WIO] K8 Q28 - L2[WI] N1 K4X - L1[O] K2 S7 R7 Q4 P7 C3X - L0[W] P16")
                .unwrap();
        let ev =
            evaluate_layer(&arch, &layer, &m, &hw16(), &EvalOptions::analytical(&arch)).unwrap();
        let macs = 7.0 * 7.0 * 112.0 * 112.0 * 3.0 * 64.0;
        assert_eq!(ev.macs, macs);
        assert_eq!(ev.compute_cycles, macs / 12.0);
        // Registers: one read per MAC.
        assert_eq!(ev.levels[0].reads[Tensor::W.index()], macs);
        // Accumulator updates: one per MAC over the C spatial factor.
        assert_eq!(ev.levels[1].updates[Tensor::O.index()], macs / 3.0);
        // Scratchpad input reads: one per MAC over the K spatial factor.
        assert_eq!(ev.levels[2].reads[Tensor::I.index()], macs / 4.0);
        // Weights enter the scratchpad once per DRAM K x Q iteration... but Q does not index W and
        // sits inside K, so every weight is fetched once per K8 tile: the whole tensor once.
        assert_eq!(
            ev.levels[3].reads[Tensor::W.index()],
            7.0 * 7.0 * 3.0 * 64.0
        );
        assert_eq!(ev.min_hw.pe_dim, 4);
        // Accumulator tile per column: K2 x Q4 x P7 x P16 (L0 folded in) = 896 words of 4 bytes.
        assert_eq!(ev.min_hw.inst_bytes[1], Some(896.0 * 4.0));
    }

    #[test]
    fn rejects_bad_mappings() {
        let arch = gemmini_arch();
        let layer = Layer::matmul("mm", 32, 64, 16);
        let bad_product =
            parse_compact("L3[WIO] C4 - L2[WI] K16X - L1[O] P32 C8 - L0[W] N1").unwrap();
        assert!(matches!(
            check_mapping(&arch, &layer, &bad_product),
            Err(ModelError::Factorisation { dim: Dim::C, .. })
        ));
        let forbidden =
            parse_compact("L3[WIO] C4 - L2[WI] K16X - L1[O] P32 C16 - L0[W] K1 C1 P1 N1").unwrap();
        assert!(check_mapping(&arch, &layer, &forbidden).is_ok());
        let forbidden = parse_compact("L3[WIO] C4 - L2[WI] K16X - L1[O] P32 - L0[W] C16").unwrap();
        assert!(matches!(
            check_mapping(&arch, &layer, &forbidden),
            Err(ModelError::ForbiddenTemporal { level: 0, .. })
        ));
        let wrong_keeps =
            parse_compact("L3[WIO] C4 - L2[W] K16X - L1[O] P32 C16 - L0[W] N1").unwrap();
        assert!(matches!(
            check_mapping(&arch, &layer, &wrong_keeps),
            Err(ModelError::Keeps { level: 2, .. })
        ));
    }
}
