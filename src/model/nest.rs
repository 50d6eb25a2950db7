//! The loop nest of one layer on one architecture, and its trace structure.
//!
//! A mapping is flattened into one list of loops, innermost first: for each storage level (innermost
//! level first) its spatial loops (they fan the level's tile out to its children, so they sit below
//! its temporal loops, as in Timeloop), then its temporal loops from the innermost to the outermost.
//!
//! Which loops are in the list (present) is decided by the caller: the exact evaluator keeps the loops
//! whose factor is greater than 1 (as Timeloop does); the relaxed model keeps every loop whose factor is
//! a variable, so that the structure does not change while the factors move.

use crate::ir::{Dim, Layer, Tensor};

/// One loop of the flattened nest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LoopRef {
    pub level: usize,
    pub dim: Dim,
    pub spatial: bool,
}

/// The present loops of one layer's mapping, innermost first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nest {
    pub levels: usize,
    pub loops: Vec<LoopRef>,
}

impl Nest {
    /// Flatten per-level loop orders (outermost first, as in [`crate::ir::LevelMapping::order`]) into
    /// the innermost-first loop list, keeping the loops `present` accepts.
    pub fn build(
        levels: usize,
        orders: &[Vec<Dim>],
        mut present: impl FnMut(LoopRef) -> bool,
    ) -> Nest {
        let mut loops = Vec::new();
        for level in 0..levels {
            for dim in Dim::ALL {
                let lp = LoopRef {
                    level,
                    dim,
                    spatial: true,
                };
                if present(lp) {
                    loops.push(lp);
                }
            }
            let order: Vec<Dim> = match orders.get(level) {
                Some(o) => complete_order(o),
                None => Dim::ALL.to_vec(),
            };
            for &dim in order.iter().rev() {
                let lp = LoopRef {
                    level,
                    dim,
                    spatial: false,
                };
                if present(lp) {
                    loops.push(lp);
                }
            }
        }
        Nest { levels, loops }
    }

    /// Nest indices of the temporal loops above the tile of `level`, innermost first: the loops whose
    /// iterations re-fill that tile.
    pub fn trace(&self, level: usize) -> Vec<usize> {
        (0..self.loops.len())
            .filter(|&i| self.loops[i].level > level && !self.loops[i].spatial)
            .collect()
    }
}

/// An order that names every dim once: the given dims first, then the missing ones in canonical
/// order (so a partial order from a user is still a total order).
pub fn complete_order(order: &[Dim]) -> Vec<Dim> {
    let mut out: Vec<Dim> = Vec::with_capacity(7);
    for &d in order {
        if !out.contains(&d) {
            out.push(d);
        }
    }
    for d in Dim::ALL {
        if !out.contains(&d) {
            out.push(d);
        }
    }
    out
}

/// One coordinate axis (rank) of a tensor: a sum of `coef * dim` terms. Inputs' width and height are
/// the sliding windows `Wstride*P + Wdilation*R` and `Hstride*Q + Hdilation*S`. At most two terms,
/// held inline: the exact evaluator builds ranks on every call and must not allocate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rank {
    terms: [(Dim, f64); 2],
    len: usize,
}

impl Rank {
    fn single(d: Dim) -> Rank {
        Rank {
            terms: [(d, 1.0), (d, 0.0)],
            len: 1,
        }
    }
    fn window(outer: Dim, stride: u64, filter: Dim, dilation: u64) -> Rank {
        Rank {
            terms: [
                (outer, stride.max(1) as f64),
                (filter, dilation.max(1) as f64),
            ],
            len: 2,
        }
    }
    /// The `(dim, coefficient)` terms.
    pub fn terms(&self) -> &[(Dim, f64)] {
        &self.terms[..self.len]
    }
    /// The coefficient of `d` in this rank, if `d` moves it.
    pub fn coef(&self, d: Dim) -> Option<f64> {
        self.terms().iter().find(|(t, _)| *t == d).map(|(_, c)| *c)
    }
}

/// Every tensor has four ranks.
pub const RANKS: usize = 4;

/// The ranks of tensor `t` of `layer`.
pub fn tensor_ranks(t: Tensor, layer: &Layer) -> [Rank; RANKS] {
    use Dim::*;
    match t {
        Tensor::W => [
            Rank::single(R),
            Rank::single(S),
            Rank::single(C),
            Rank::single(K),
        ],
        Tensor::O => [
            Rank::single(P),
            Rank::single(Q),
            Rank::single(K),
            Rank::single(N),
        ],
        Tensor::I => [
            Rank::single(N),
            Rank::single(C),
            Rank::window(Q, layer.hstride, S, layer.hdilation),
            Rank::window(P, layer.wstride, R, layer.wdilation),
        ],
    }
}

/// For every (level, tensor): which trace loops re-fill the tile by the same translation as the
/// innermost trace loop.
///
/// Timeloop extrapolates each loop from its iterations #0 and #1 and resets a tile's residual data
/// whenever the translation between successive tiles changes (its `SaveAndSubtractIfSameStride`).
/// Over the resulting trace, the iterations whose innermost advancing loop is `j` move the tile by
/// `T_j = step_j - sum_{k<j} step_k`; they fetch only the non-overlapping part when `T_j` equals `T_0`
/// (the translation the state remembers) and the whole tile otherwise. `same[level][tensor][j]`
/// records `T_j == T_0` (`j = 0` is always true).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Structure {
    pub same: Vec<[Vec<bool>; 3]>,
}

impl Structure {
    /// The flags for integer factors (`factor(i)` is the factor of nest loop `i`): exact equality of
    /// the translations, as Timeloop computes them.
    pub fn exact(nest: &Nest, layer: &Layer, factor: impl Fn(usize) -> u64) -> Structure {
        let mut same = Vec::with_capacity(nest.levels);
        for level in 0..nest.levels {
            let trace = nest.trace(level);
            let per_t = Tensor::ALL.map(|t| {
                let ranks = tensor_ranks(t, layer);
                let steps: Vec<[f64; RANKS]> = trace
                    .iter()
                    .map(|&i| {
                        let d = nest.loops[i].dim;
                        let scale: f64 = (0..i)
                            .filter(|&k| nest.loops[k].dim == d)
                            .map(|k| factor(k) as f64)
                            .product();
                        ranks.map(|r| r.coef(d).map_or(0.0, |c| c * scale))
                    })
                    .collect();
                let mut flags = Vec::with_capacity(trace.len());
                let mut acc = [0.0; RANKS];
                for (j, st) in steps.iter().enumerate() {
                    let tj: [f64; RANKS] = std::array::from_fn(|r| st[r] - acc[r]);
                    flags.push(j == 0 || tj == steps[0]);
                    for (a, s) in acc.iter_mut().zip(st) {
                        *a += s;
                    }
                }
                flags
            });
            same.push(per_t);
        }
        Structure { same }
    }

    /// The flags decided by structure alone: `T_j == T_0` only when no loop up to `j` moves the tensor
    /// (all translations are zero). Used by the relaxed model, whose factors are not integers.
    pub fn structural(nest: &Nest) -> Structure {
        let mut same = Vec::with_capacity(nest.levels);
        for level in 0..nest.levels {
            let trace = nest.trace(level);
            let per_t = Tensor::ALL.map(|t| {
                let mut all_still = true;
                trace
                    .iter()
                    .enumerate()
                    .map(|(j, &i)| {
                        all_still &= !nest.loops[i].dim.indexes(t);
                        j == 0 || all_still
                    })
                    .collect()
            });
            same.push(per_t);
        }
        Structure { same }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattening_puts_spatial_loops_below_temporal_ones() {
        let orders = vec![Dim::ALL.to_vec(), vec![Dim::K, Dim::C], Dim::ALL.to_vec()];
        let nest = Nest::build(3, &orders, |lp| {
            matches!(
                (lp.level, lp.dim, lp.spatial),
                (1, Dim::C, true) | (1, Dim::K, false) | (1, Dim::C, false) | (2, Dim::P, false)
            )
        });
        let got: Vec<_> = nest
            .loops
            .iter()
            .map(|l| (l.level, l.dim, l.spatial))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, Dim::C, true),
                (1, Dim::C, false),
                (1, Dim::K, false),
                (2, Dim::P, false)
            ]
        );
        assert_eq!(nest.trace(0), vec![1, 2, 3]);
        assert_eq!(nest.trace(1), vec![3]);
    }

    #[test]
    fn structural_flags_follow_stationarity() {
        // Trace above level 0, innermost first: P, Q (neither moves weights), then K.
        let orders = vec![vec![], vec![Dim::K, Dim::Q, Dim::P]];
        let nest = Nest::build(2, &orders, |lp| {
            lp.level == 1 && !lp.spatial && matches!(lp.dim, Dim::P | Dim::Q | Dim::K)
        });
        let s = Structure::structural(&nest);
        assert_eq!(s.same[0][Tensor::W.index()], vec![true, true, false]);
        assert_eq!(s.same[0][Tensor::I.index()], vec![true, false, false]);
    }
}
