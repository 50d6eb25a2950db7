//! A strict lower bound on what any design can reach under this cost model: the EDP floor that
//! `dosa search --compare` prints beside the methods, so a reader sees how much room is left.
//!
//! The argument, per layer, for any legal mapping on any hardware whose PE side is at most
//! `pe_max` (every term is something the exact evaluator of [`crate::model::rules`] counts):
//!
//! - **Compute.** Latency is at least MACs over the spatial fan-out. Each level's spatial factors
//!   multiply to at most the PE side (that is how the array side is derived), and a dim cannot be
//!   spread over more than its size, so the fan-out is at most, per level allowing spatial dims,
//!   `min(pe_max, product of those dims' sizes and caps)`.
//! - **Every tensor crosses every level that keeps it once.** Each word of a tensor the layer
//!   touches must be filled into each keeper below the backing store and read from its parent at
//!   least once; a read-write tensor (outputs) is updated in the parent at least once per word and
//!   read back `updates - size` times. So a keeper's accesses are at least the touched words
//!   (fills) plus the touched words (parent side). Inputs count only the coordinates the windows
//!   touch: with a stride larger than the kernel, rows between windows are never read.
//! - **Every MAC reads its innermost keepers.** The innermost keeper of a tensor serves every MAC,
//!   divided by the spatial fan-out of dims that do not index it (multicast, spatial reduction);
//!   that fan-out is bounded as above. For outputs it is `2 x updates - size` accesses.
//! - **Bandwidth.** A level with a bandwidth limit needs at least its minimum accesses over its
//!   largest possible bandwidth (`pe_max` or the spatial cap in place of the array terms).
//! - **Energy.** The MACs at `mac_energy`, plus each level's minimum accesses at its cheapest
//!   energy per access: SRAM energy grows with size, so the formula at 0 KiB (a level whose
//!   energy could fall with size, or go negative, contributes nothing).
//!
//! Network latency and energy are count-weighted sums over layers, each at least its floor, so
//! the network EDP is at least the product of the summed floors, whatever hardware they share.

use crate::ir::{AccessEnergy, Arch, Bandwidth, Dim, Layer, Tensor};
use crate::model::nest::tensor_ranks;
use crate::model::rules::keepers;

/// Lower bounds on latency (cycles) and energy (uJ); for a network, count-weighted sums.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Floor {
    pub latency: f64,
    pub energy: f64,
}

impl Floor {
    /// The EDP bound (cycles x uJ).
    pub fn edp(&self) -> f64 {
        self.latency * self.energy
    }
}

/// Distinct coordinates of one rank (`sum coef * i_d`, `i_d < size_d`): counted exactly on a
/// bitmap when small enough, else the largest single term (still a lower bound).
fn rank_extent(layer: &Layer, terms: &[(Dim, f64)]) -> f64 {
    let sizes: Vec<(u64, u64)> = terms
        .iter()
        .map(|&(d, c)| (layer.dim(d).max(1), c.max(1.0) as u64))
        .collect();
    if let [(n, _)] = sizes[..] {
        return n as f64;
    }
    let largest = sizes.iter().map(|&(n, _)| n).max().unwrap_or(1) as f64;
    let span: u64 = sizes
        .iter()
        .map(|&(n, c)| (n - 1).saturating_mul(c))
        .fold(0u64, |a, b| a.saturating_add(b))
        .saturating_add(1);
    let work: u64 = sizes
        .iter()
        .map(|&(n, _)| n)
        .fold(1u64, |a, b| a.saturating_mul(b));
    if span > 50_000_000 || work > 50_000_000 {
        return largest;
    }
    let mut hit = vec![false; span as usize];
    hit[0] = true;
    let mut reach = 0usize;
    for &(n, c) in &sizes {
        let mut next = vec![false; span as usize];
        for (x, _) in hit.iter().enumerate().take(reach + 1).filter(|(_, h)| **h) {
            for i in 0..n {
                next[x + (i * c) as usize] = true;
            }
        }
        reach += ((n - 1) * c) as usize;
        hit = next;
    }
    hit.iter().filter(|h| **h).count() as f64
}

/// Words of `t` the layer actually touches: per rank of the tensor as the model defines it
/// ([`tensor_ranks`]), the distinct coordinates. That is the tensor size, except that an input's
/// sliding windows (`stride * P + dilation * R` per axis) skip the rows and columns between them
/// when the stride exceeds the kernel's reach.
pub fn touched_words(layer: &Layer, t: Tensor) -> f64 {
    tensor_ranks(t, layer)
        .iter()
        .map(|r| rank_extent(layer, r.terms()))
        .product()
}

/// The most a level's spatial loops can fan out for this layer: `min(pe_max, product over the
/// dims `pick` accepts of min(size, cap))`, 1 if it allows no such dim.
fn level_fanout(
    arch: &Arch,
    layer: &Layer,
    l: usize,
    pe_max: f64,
    pick: impl Fn(Dim) -> bool,
) -> f64 {
    let dims: Vec<f64> = arch.levels[l]
        .spatial
        .iter()
        .filter(|s| pick(s.dim))
        .map(|s| {
            let n = layer.dim(s.dim) as f64;
            s.max.map_or(n, |m| n.min(m as f64))
        })
        .collect();
    if dims.is_empty() {
        1.0
    } else {
        dims.iter().product::<f64>().min(pe_max)
    }
}

/// The cheapest energy per access a level can have (pJ), never negative.
fn cheapest_pj(e: AccessEnergy) -> f64 {
    match e {
        AccessEnergy::Const(c) => c.max(0.0),
        AccessEnergy::Linear { base, per_kib } if per_kib >= 0.0 => base.max(0.0),
        AccessEnergy::Linear { .. } => 0.0,
    }
}

/// The floor of one instance of `layer` on any hardware with a PE side of at most `pe_max`
/// (module doc).
pub fn layer_floor(arch: &Arch, layer: &Layer, pe_max: u64) -> Floor {
    let pe = pe_max.max(1) as f64;
    let macs = layer.macs();
    let nl = arch.levels.len();
    let mut accesses = vec![0.0; nl];
    for t in Tensor::ALL {
        let ks = keepers(arch, t);
        let Some(&k0) = ks.first() else { continue };
        let rw = t == Tensor::O;
        let size = layer.tensor_words(t);
        let touched = touched_words(layer, t);
        // From the PEs: every MAC, over the fan-out of dims that do not index `t` below k0.
        let fan: f64 = (0..=k0)
            .map(|l| level_fanout(arch, layer, l, pe, |d| !d.indexes(t)))
            .product();
        let from_pes = macs / fan;
        accesses[k0] += if rw {
            (2.0 * from_pes - size).max(from_pes)
        } else {
            from_pes
        };
        // Between keepers: the child fills every touched word, the parent serves it.
        for w in ks.windows(2) {
            accesses[w[0]] += touched;
            accesses[w[1]] += if rw {
                (2.0 * touched - size).max(0.0)
            } else {
                touched
            };
        }
    }
    let spatial: f64 = (0..nl)
        .map(|l| level_fanout(arch, layer, l, pe, |_| true))
        .product();
    let mut latency = macs / spatial;
    let mut energy_pj = macs * arch.mac_energy_pj.max(0.0);
    for (l, lv) in arch.levels.iter().enumerate() {
        energy_pj += accesses[l] * cheapest_pj(lv.energy);
        let bw = match lv.bandwidth {
            None => continue,
            Some(Bandwidth::Words(w)) => w,
            Some(Bandwidth::PerPeDim(c)) => c * pe,
            Some(Bandwidth::PerSpatial(c, d)) => {
                let total: f64 = (0..nl)
                    .map(|k| level_fanout(arch, layer, k, pe, |x| x == d))
                    .product();
                c * total.min(layer.dim(d) as f64)
            }
        };
        if bw > 0.0 {
            latency = latency.max(accesses[l] / bw);
        }
    }
    Floor {
        latency,
        energy: energy_pj * 1e-6,
    }
}

/// The network floor: count-weighted sums of the layer floors.
pub fn network_floor(arch: &Arch, layers: &[Layer], pe_max: u64) -> Floor {
    layers.iter().fold(
        Floor {
            latency: 0.0,
            energy: 0.0,
        },
        |acc, l| {
            let f = layer_floor(arch, l, pe_max);
            let n = l.count as f64;
            Floor {
                latency: acc.latency + n * f.latency,
                energy: acc.energy + n * f.energy,
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::gemmini_arch;

    #[test]
    fn touched_inputs_skip_the_gaps_between_windows() {
        // Stride 2, 1x1 kernel over 4 outputs: columns 0, 2, 4, 6 of 7.
        let l = Layer::conv("s2", [1, 1, 4, 1, 1, 1, 1], 2, 1);
        assert_eq!(l.tensor_words(Tensor::I), 7.0);
        assert_eq!(touched_words(&l, Tensor::I), 4.0);
        // Stride 1, 3-wide kernel: the whole halo.
        let l = Layer::conv("s1", [3, 3, 5, 5, 2, 4, 1], 1, 1);
        assert_eq!(touched_words(&l, Tensor::I), l.tensor_words(Tensor::I));
        assert_eq!(touched_words(&l, Tensor::W), 3.0 * 3.0 * 2.0 * 4.0);
    }

    #[test]
    fn gemmini_floor_is_the_documented_arithmetic() {
        // A matmul on 16x16 PEs: compute bound macs / 256, energy at least MAC + weight register.
        let arch = gemmini_arch();
        let l = Layer::matmul("mm", 64, 64, 64);
        let f = layer_floor(&arch, &l, 16);
        let macs = 64.0f64.powi(3);
        assert!(f.latency >= macs / 256.0);
        let reg = cheapest_pj(arch.levels[0].energy);
        assert!(f.energy * 1e6 >= macs * (arch.mac_energy_pj + reg) - 1e-6);
        // A larger array can only lower the bound.
        let g = layer_floor(&arch, &l, 128);
        assert!(g.latency <= f.latency && g.energy <= f.energy);
    }
}
