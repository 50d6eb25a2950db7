//! The cost rules, written once over an [`Algebra`]: tiles, fills, access counts, hardware
//! requirements (MODEL.md sections 4-5) and the smooth latency/energy head (sections 6-7).
//!
//! What Timeloop does, and so what these rules do (each checked against the reference data):
//! - A tile held at level `l` is re-filled along the trace of the temporal loops above it, which
//!   Timeloop extrapolates from each loop's iterations #0 and #1 (the latter weighted `n - 1`). Over
//!   that trace the fills are
//!   `full + sum_j (n_j - 1) * (prod_{k>j} n_k) * c_j` where `c_j` is 0 (the tile stays), the
//!   non-overlapping part of a sliding window, or the full tile; see [`super::nest::Structure`].
//!   This is what makes the sliding-window input traffic exact when a filter dim is split between
//!   DRAM and an inner level.
//! - The innermost keeper of a tensor serves every MAC, divided by the spatial fan-out of dims that
//!   do not index the tensor (multicast of inputs, spatial reduction of outputs).
//! - Read-write tensors (outputs): a level's updates are what its child sends, its reads are those
//!   minus the tensor size (the first write of each output needs no read), its fills are its own
//!   tile deltas; the parent's reads likewise exclude the first fetch of each output.

use super::algebra::Algebra;
use super::nest::{tensor_ranks, Nest, Rank, Structure, RANKS};
use crate::ir::{Arch, Bandwidth, Dim, Layer, Tensor};

/// Factor of every (level, dim), temporal and spatial; 1 where the loop is absent.
#[derive(Clone, Debug)]
pub struct Factors<S> {
    pub temporal: Vec<[S; 7]>,
    pub spatial: Vec<[S; 7]>,
}

impl<S: Copy> Factors<S> {
    /// The factor of one nest loop.
    pub fn of(&self, lp: super::nest::LoopRef) -> S {
        if lp.spatial {
            self.spatial[lp.level][lp.dim.index()]
        } else {
            self.temporal[lp.level][lp.dim.index()]
        }
    }
}

/// Reads, fills and updates of one tensor at one level, summed over the level's instances.
#[derive(Clone, Copy, Debug, Default)]
pub struct Traffic<S> {
    pub reads: Option<S>,
    pub fills: Option<S>,
    pub updates: Option<S>,
}

/// Everything the heads need: per-level traffic per tensor, compute cycles, requirements.
#[derive(Clone, Debug)]
pub struct Costs<S> {
    /// Multiply-accumulates of one instance of the layer.
    pub macs: f64,
    /// Cycles if only the PE array limited the layer: MACs over the spatial fan-out.
    pub compute_cycles: S,
    /// Per level, per tensor (W, I, O).
    pub traffic: Vec<[Traffic<S>; 3]>,
    /// Utilized instances per level: the spatial fan-out above it (`None` = 1).
    pub instances: Vec<Option<S>>,
    /// Product of the spatial factors of each dim over all levels (`None` = 1).
    pub spatial_total: [Option<S>; 7],
    /// Smallest PE array side that runs the mapping.
    pub req_pe: S,
    /// Bytes of one instance of each non-backing level that the tiles need (`None` for the backing
    /// level and for levels that keep nothing).
    pub req_inst_bytes: Vec<Option<S>>,
}

fn add_opt<A: Algebra>(alg: &A, acc: &mut Option<A::S>, v: A::S) {
    *acc = Some(match *acc {
        Some(a) => alg.add(a, v),
        None => v,
    });
}

/// Extent of dim `d` in the tile of `level`: the product of the factors of `d` at levels up to it.
fn extent<A: Algebra>(
    alg: &A,
    nest: &Nest,
    f: &Factors<A::S>,
    level: usize,
    d: Dim,
) -> Option<A::S> {
    alg.prod_opt(
        nest.loops
            .iter()
            .filter(|lp| lp.level <= level && lp.dim == d)
            .map(|&lp| f.of(lp)),
    )
}

/// Width of one rank of the tile of `level`.
fn rank_width<A: Algebra>(alg: &A, nest: &Nest, f: &Factors<A::S>, level: usize, r: &Rank) -> A::S {
    if let &[(d, c)] = r.terms() {
        if c == 1.0 {
            return extent(alg, nest, f, level, d).unwrap_or_else(|| alg.lit(1.0));
        }
    }
    // 1 + sum coef * (extent - 1)
    let mut acc = alg.lit(1.0);
    for &(d, c) in r.terms() {
        if let Some(e) = extent(alg, nest, f, level, d) {
            let m = alg.sub(e, alg.lit(1.0));
            let t = if c == 1.0 { m } else { alg.mul(alg.lit(c), m) };
            acc = alg.add(acc, t);
        }
    }
    acc
}

/// Words of tensor `t` in one instance of the tile of `level`.
pub fn tile_words<A: Algebra>(
    alg: &A,
    layer: &Layer,
    nest: &Nest,
    f: &Factors<A::S>,
    level: usize,
    t: Tensor,
) -> A::S {
    let ranks = tensor_ranks(t, layer);
    alg.prod(ranks.iter().map(|r| rank_width(alg, nest, f, level, r)))
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Zero,
    Partial,
    Full,
}

/// Fills of one instance of the tile of `t` at `level` over the whole layer (module doc).
pub fn fills_per_instance<A: Algebra>(
    alg: &A,
    layer: &Layer,
    nest: &Nest,
    st: &Structure,
    f: &Factors<A::S>,
    level: usize,
    t: Tensor,
) -> A::S {
    let ranks = tensor_ranks(t, layer);
    let widths: [A::S; RANKS] = ranks.map(|r| rank_width(alg, nest, f, level, &r));
    let full = alg.prod(widths.iter().copied());
    let trace = nest.trace(level);
    if trace.is_empty() {
        return full;
    }
    // The part of the tile a step of the innermost trace loop brings in.
    let first = nest.loops[trace[0]];
    let partial = if first.dim.indexes(t) {
        let (ri, coef) = ranks
            .iter()
            .enumerate()
            .find_map(|(i, r)| r.coef(first.dim).map(|c| (i, c)))
            .expect("a dim that indexes a tensor moves one of its ranks");
        let scale = alg.prod(
            nest.loops[..trace[0]]
                .iter()
                .filter(|lp| lp.dim == first.dim)
                .map(|&lp| f.of(lp)),
        );
        let step = if coef == 1.0 {
            scale
        } else {
            alg.mul(alg.lit(coef), scale)
        };
        let others = alg.prod(
            widths
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != ri)
                .map(|(_, w)| *w),
        );
        Some(alg.mul(others, alg.min(step, widths[ri])))
    } else {
        None
    };
    let same = &st.same[level][t.index()];
    let kinds: Vec<Kind> = (0..trace.len())
        .map(|j| {
            if j == 0 || same[j] {
                if partial.is_some() {
                    Kind::Partial
                } else {
                    Kind::Zero
                }
            } else {
                Kind::Full
            }
        })
        .collect();
    // suffix[j] = prod_{k>=j} n_k, suffix[m] = 1 (None).
    let m = trace.len();
    let mut suffix: Vec<Option<A::S>> = vec![None; m + 1];
    for j in (0..m).rev() {
        let n = f.of(nest.loops[trace[j]]);
        suffix[j] = Some(match suffix[j + 1] {
            Some(s) => alg.mul(n, s),
            None => n,
        });
    }
    // Telescoped sums over runs of equal kind: sum_{j=a..=b} (n_j - 1) suffix[j+1] = suffix[a] - suffix[b+1].
    let mut full_coef: Option<A::S> = None;
    let mut full_absorbs_one = false;
    let mut part_coef: Option<A::S> = None;
    let mut a = 0;
    while a < m {
        let k = kinds[a];
        let mut b = a;
        while b + 1 < m && kinds[b + 1] == k {
            b += 1;
        }
        if k != Kind::Zero {
            let top = suffix[a].expect("suffix of a non-empty run");
            let term = match suffix[b + 1] {
                Some(s) => alg.sub(top, s),
                None if k == Kind::Full => {
                    full_absorbs_one = true;
                    top
                }
                None => alg.sub(top, alg.lit(1.0)),
            };
            if k == Kind::Full {
                add_opt(alg, &mut full_coef, term);
            } else {
                add_opt(alg, &mut part_coef, term);
            }
        }
        a = b + 1;
    }
    let full_mult = match (full_coef, full_absorbs_one) {
        (Some(c), true) => c,
        (Some(c), false) => alg.add(alg.lit(1.0), c),
        (None, _) => alg.lit(1.0),
    };
    let mut fills = if full_absorbs_one || full_coef.is_some() {
        alg.mul(full, full_mult)
    } else {
        full
    };
    if let (Some(p), Some(c)) = (partial, part_coef) {
        fills = alg.add(fills, alg.mul(p, c));
    }
    fills
}

/// Product of the factors of the spatial loops `pick` accepts.
fn spatial_prod<A: Algebra>(
    alg: &A,
    nest: &Nest,
    f: &Factors<A::S>,
    pick: impl Fn(super::nest::LoopRef) -> bool,
) -> Option<A::S> {
    alg.prod_opt(
        nest.loops
            .iter()
            .filter(|lp| lp.spatial && pick(**lp))
            .map(|&lp| f.of(lp)),
    )
}

fn div_opt<A: Algebra>(alg: &A, a: A::S, b: Option<A::S>) -> A::S {
    match b {
        Some(b) => alg.div(a, b),
        None => a,
    }
}

/// Levels keeping `t`, innermost first.
pub fn keepers(arch: &Arch, t: Tensor) -> Vec<usize> {
    (0..arch.levels.len())
        .filter(|&l| arch.levels[l].keeps.contains(t))
        .collect()
}

/// All costs of one layer (see the module doc). `arch` must keep every tensor at its backing level.
pub fn layer_costs<A: Algebra>(
    alg: &A,
    arch: &Arch,
    layer: &Layer,
    nest: &Nest,
    st: &Structure,
    f: &Factors<A::S>,
) -> Costs<A::S> {
    let nl = arch.levels.len();
    let macs = layer.macs();
    let mut traffic: Vec<[Traffic<A::S>; 3]> = vec![
        [Traffic {
            reads: None,
            fills: None,
            updates: None
        }; 3];
        nl
    ];
    for t in Tensor::ALL {
        let ks = keepers(arch, t);
        let Some(&k0) = ks.first() else { continue };
        let rw = t == Tensor::O;
        let size = layer.tensor_words(t);
        // Accesses from the PEs to the innermost keeper.
        let fan = spatial_prod(alg, nest, f, |lp| lp.level <= k0 && !lp.dim.indexes(t));
        let ca = div_opt(alg, alg.lit(macs), fan);
        let tr = &mut traffic[k0][t.index()];
        if rw {
            add_opt(alg, &mut tr.updates, ca);
            add_opt(alg, &mut tr.reads, alg.sub(ca, alg.lit(size)));
        } else {
            add_opt(alg, &mut tr.reads, ca);
        }
        for w in ks.windows(2) {
            let (c, p) = (w[0], w[1]);
            let per = fills_per_instance(alg, layer, nest, st, f, c, t);
            let inst = spatial_prod(alg, nest, f, |lp| lp.level > c);
            let fills = match inst {
                Some(i) => alg.mul(per, i),
                None => per,
            };
            add_opt(alg, &mut traffic[c][t.index()].fills, fills);
            let multicast = spatial_prod(alg, nest, f, |lp| {
                lp.level > c && lp.level <= p && !lp.dim.indexes(t)
            });
            let up = div_opt(alg, fills, multicast);
            let tp = &mut traffic[p][t.index()];
            if rw {
                add_opt(alg, &mut tp.updates, up);
                add_opt(alg, &mut tp.reads, alg.sub(up, alg.lit(size)));
            } else {
                add_opt(alg, &mut tp.reads, up);
            }
        }
    }
    let all_spatial = spatial_prod(alg, nest, f, |_| true);
    let compute_cycles = div_opt(alg, alg.lit(macs), all_spatial);
    let instances = (0..nl)
        .map(|l| spatial_prod(alg, nest, f, |lp| lp.level > l))
        .collect();
    let spatial_total = Dim::ALL.map(|d| spatial_prod(alg, nest, f, |lp| lp.dim == d));
    let per_level = (0..nl).filter_map(|l| spatial_prod(alg, nest, f, |lp| lp.level == l));
    let req_pe = match alg.max_opt(per_level) {
        Some(m) => alg.max(alg.lit(arch.pe_min as f64), m),
        None => alg.lit(arch.pe_min as f64),
    };
    let req_inst_bytes = (0..nl)
        .map(|l| {
            let lv = &arch.levels[l];
            if lv.is_backing || lv.keeps.is_empty() {
                return None;
            }
            let words = alg.sum(
                lv.keeps
                    .iter()
                    .map(|t| tile_words(alg, layer, nest, f, l, t)),
            );
            let bytes = lv.word_bits as f64 / 8.0;
            Some(if bytes == 1.0 {
                words
            } else {
                alg.mul(alg.lit(bytes), words)
            })
        })
        .collect();
    Costs {
        macs,
        compute_cycles,
        traffic,
        instances,
        spatial_total,
        req_pe,
        req_inst_bytes,
    }
}

/// Hardware the cost heads read: the PE array side and each level's energy per word access (pJ).
#[derive(Clone, Debug)]
pub struct HwIn<S> {
    pub pe_dim: S,
    pub energy_pj: Vec<S>,
}

/// Total accesses (reads + fills + updates over all tensors) of one level.
pub fn level_total<A: Algebra>(alg: &A, tr: &[Traffic<A::S>; 3]) -> Option<A::S> {
    alg.sum_opt(
        tr.iter()
            .flat_map(|x| [x.reads, x.fills, x.updates])
            .flatten(),
    )
}

/// Words per cycle a level serves (all its utilized instances together), `None` if unlimited.
pub fn bandwidth<A: Algebra>(
    alg: &A,
    arch: &Arch,
    costs: &Costs<A::S>,
    pe_dim: A::S,
    l: usize,
) -> Option<A::S> {
    Some(match arch.levels[l].bandwidth? {
        Bandwidth::Words(w) => alg.lit(w),
        Bandwidth::PerPeDim(c) => alg.mul(alg.lit(c), pe_dim),
        Bandwidth::PerSpatial(c, d) => match costs.spatial_total[d.index()] {
            Some(s) => alg.mul(alg.lit(c), s),
            None => alg.lit(c),
        },
    })
}

/// Latency (cycles, the roofline of MODEL.md section 6) and energy (uJ, section 7), without
/// Timeloop's integer rounding: the form the relaxed model differentiates.
pub fn smooth_head<A: Algebra>(
    alg: &A,
    arch: &Arch,
    costs: &Costs<A::S>,
    hw: &HwIn<A::S>,
) -> (A::S, A::S) {
    let mut latency = costs.compute_cycles;
    let mut energy = alg.lit(costs.macs * arch.mac_energy_pj);
    for l in 0..arch.levels.len() {
        let Some(total) = level_total(alg, &costs.traffic[l]) else {
            continue;
        };
        if let Some(bw) = bandwidth(alg, arch, costs, hw.pe_dim, l) {
            latency = alg.max(latency, alg.div(total, bw));
        }
        energy = alg.add(energy, alg.mul(hw.energy_pj[l], total));
    }
    (latency, alg.mul(energy, alg.lit(1e-6)))
}
