//! The mapping-only search's own pass: on a chip that exists the hardware cannot move, so what
//! is left to find is each layer's tiling, and the tiles that fit fixed buffers are few enough
//! (hundreds to tens of thousands per layer) to enumerate. Gradient descent plus single-factor
//! polish can stop in a local optimum that needs several factors to move at once (a K factor
//! from the accumulator to DRAM while a Q factor moves in); enumerating the tiles cannot.
//!
//! Per layer, in parallel:
//! 1. every tile (per dim, the product of its factors below the backing level) that fits, found
//!    by a depth-first walk over the dims' divisors that stops a dim's walk at its first
//!    overflowing divisor (needs only grow with a tile);
//! 2. each tile as a canonical mapping (spatial slots first, as much as the array allows; the
//!    rest at the innermost, or the outermost, temporal slot) under the candidate DRAM orders;
//! 3. the best [`KEEP`] tiles improved by steepest descent over prime-factor moves, tile moves
//!    and loop orders (every order at the backing level, rotations inside);
//! 4. the best result replaces the layer's mapping where it lowers the network objective.

use super::design::{runs_on, score, Exact, Scored, Tracker};
use super::dosa::{
    backing, order_candidates, permutations, prime_moves, reordered, tile_moves, MAX_PERMUTED,
};
use crate::ir::{Arch, Dim, Hardware, Layer, LevelMapping, Mapping, Objective};
use crate::passes::legal::{free_slots, spatial_cap};
use crate::passes::round::divisors;
use rayon::prelude::*;

/// Tiles per layer kept for the descent of step 3.
pub const KEEP: usize = 12;
/// Most fit checks of the tile walk per layer; beyond it the walk stops (deterministically) with
/// the tiles found so far: a bound on the walk's time for very large layers.
pub const MAX_VISITS: usize = 200_000;
/// Most descent steps per kept tile.
const MAX_STEPS: usize = 64;

/// One layer's problem: what every step needs.
struct Ctx<'a> {
    model: &'a dyn Exact,
    arch: &'a Arch,
    layer: &'a Layer,
    hw: &'a Hardware,
    back: usize,
    pe: u64,
    /// The layer's index and network weight, its current cost, and the design's objective as
    /// it changes (`None`: the layer's own EDP).
    li: usize,
    w: f64,
    current: (f64, f64),
    tracker: Option<&'a Tracker>,
}

impl<'a> Ctx<'a> {
    fn new(
        model: &'a dyn Exact,
        layer: &'a Layer,
        hw: &'a Hardware,
        li: usize,
        current: (f64, f64),
        tracker: Option<&'a Tracker>,
    ) -> Ctx<'a> {
        let arch = model.arch();
        Ctx {
            model,
            arch,
            layer,
            hw,
            back: backing(arch),
            pe: hw.pe_dim.max(1.0) as u64,
            li,
            w: layer.count as f64,
            current,
            tracker,
        }
    }

    /// The network objective with this layer at cost `c`.
    fn value(&self, c: (f64, f64)) -> f64 {
        match self.tracker {
            Some(t) => t.with_layer(self.li, self.w, self.current, c),
            None => Objective::Edp.of(c.0, c.1),
        }
    }

    /// Cost when `m` runs on the hardware.
    fn eval(&self, m: &Mapping, evals: &mut u64) -> Option<(f64, (f64, f64))> {
        if !runs_on(self.model, self.layer, m, self.hw) {
            return None;
        }
        *evals += 1;
        let c = self.model.cost(self.layer, m, self.hw);
        let v = self.value(c);
        v.is_finite().then_some((v, c))
    }

    /// The canonical mapping of a tile: per dim, its spatial slots take the largest divisor of
    /// what is left that the array allows, then one temporal slot (the innermost with `inner`,
    /// else the outermost below the backing level) the rest; the backing level takes the layer
    /// over the tile, in `order`. `None` when a tile needs a temporal slot its dim lacks.
    fn canonical(&self, tile: &[u64; 7], inner: bool, order: &[Dim]) -> Option<Mapping> {
        let mut levels: Vec<LevelMapping> = self
            .arch
            .levels
            .iter()
            .map(|l| LevelMapping::unit(l.keeps))
            .collect();
        let slots = free_slots(self.arch);
        for d in Dim::ALL {
            let i = d.index();
            let mut rest = tile[i];
            for &(li, _, _) in slots.iter().filter(|s| s.1 == d && s.2) {
                let cap = spatial_cap(self.arch, li, d, self.pe);
                let f = divisors(rest)
                    .into_iter()
                    .filter(|&f| f <= cap)
                    .max()
                    .unwrap_or(1);
                levels[li].spatial[i] = f;
                rest /= f;
            }
            let temporal: Vec<usize> = slots
                .iter()
                .filter(|s| s.1 == d && !s.2)
                .map(|s| s.0)
                .collect();
            let slot = if inner {
                temporal.iter().min()
            } else {
                temporal.iter().max()
            };
            match slot {
                Some(&li) => levels[li].temporal[i] = rest,
                None if rest > 1 => return None,
                None => {}
            }
            levels[self.back].temporal[i] = self.layer.dim(d) / tile[i];
        }
        levels[self.back].order = order.to_vec();
        for l in &mut levels {
            l.normalize_order();
        }
        let mut m = Mapping::new(levels);
        crate::gemmini::rules::fix_order(self.arch, &mut m);
        Some(m)
    }

    /// Whether `d` has a slot below the backing level (else its tile is 1).
    fn tileable(&self, d: Dim) -> bool {
        free_slots(self.arch).iter().any(|s| s.1 == d)
    }
}

/// Step 1: every tile of `layer` (per dim, the product of its factors below the backing level)
/// whose canonical form (innermost or outermost placement) runs on `hw`, in walk order. Stops
/// after [`MAX_VISITS`] fit checks.
pub fn fitting_tiles(model: &dyn Exact, layer: &Layer, hw: &Hardware) -> Vec<[u64; 7]> {
    Ctx::new(model, layer, hw, 0, (0.0, 0.0), None).fitting_tiles()
}

/// Whether `tile` is one [`fitting_tiles`] walks to: some canonical form of it runs on `hw`.
pub fn tile_fits(model: &dyn Exact, layer: &Layer, hw: &Hardware, tile: &[u64; 7]) -> bool {
    Ctx::new(model, layer, hw, 0, (0.0, 0.0), None).fits(tile)
}

impl Ctx<'_> {
    /// Whether some canonical form of `tile` runs.
    fn fits(&self, tile: &[u64; 7]) -> bool {
        [true, false].iter().any(|&inner| {
            self.canonical(tile, inner, &order_candidates()[0])
                .is_some_and(|m| runs_on(self.model, self.layer, &m, self.hw))
        })
    }

    /// See [`fitting_tiles`]: a depth-first walk over the dims' divisors, ascending, where the
    /// first divisor of a dim that overflows (the later dims at 1) ends that dim's walk, since
    /// needs only grow with a tile.
    fn fitting_tiles(&self) -> Vec<[u64; 7]> {
        let dims: Vec<Dim> = Dim::ALL
            .into_iter()
            .filter(|&d| self.layer.dim(d) > 1 && self.tileable(d))
            .collect();
        let divs: Vec<Vec<u64>> = dims.iter().map(|&d| divisors(self.layer.dim(d))).collect();
        let mut out = Vec::new();
        let mut visits = 0usize;
        self.walk(0, &dims, &divs, &mut [1; 7], &mut visits, &mut out);
        out
    }

    /// The walk of [`Ctx::fitting_tiles`] from dim `k` on, the dims before it set in `tile`.
    fn walk(
        &self,
        k: usize,
        dims: &[Dim],
        divs: &[Vec<u64>],
        tile: &mut [u64; 7],
        visits: &mut usize,
        out: &mut Vec<[u64; 7]>,
    ) {
        let Some(d) = dims.get(k) else {
            out.push(*tile);
            return;
        };
        for &t in &divs[k] {
            tile[d.index()] = t;
            if t > 1 {
                *visits += 1;
                if *visits > MAX_VISITS || !self.fits(tile) {
                    break;
                }
            }
            self.walk(k + 1, dims, divs, tile, visits, out);
        }
        tile[d.index()] = 1;
    }

    /// Step 2: the best canonical form of `tile` under the candidate DRAM orders; the outermost
    /// placement only where the innermost does not run. Whether a mapping runs does not depend
    /// on its loop orders, so it is asked once per placement.
    fn best_form(&self, tile: &[u64; 7], evals: &mut u64) -> Option<(f64, Mapping)> {
        let orders = order_candidates();
        for inner in [true, false] {
            let runs = self
                .canonical(tile, inner, &orders[0])
                .is_some_and(|m| runs_on(self.model, self.layer, &m, self.hw));
            if !runs {
                continue;
            }
            let mut best: Option<(f64, Mapping)> = None;
            let mut seen: Vec<Mapping> = Vec::new();
            for order in &orders {
                let Some(m) = self.canonical(tile, inner, order) else {
                    continue;
                };
                if seen.contains(&m) {
                    continue;
                }
                *evals += 1;
                let v = self.value(self.model.cost(self.layer, &m, self.hw));
                if v.is_finite() && best.as_ref().is_none_or(|b| v < b.0) {
                    best = Some((v, m.clone()));
                }
                seen.push(m);
            }
            return best;
        }
        None
    }

    /// Steps 1 and 2: every fitting tile's best canonical form, best first, at most `keep`.
    fn best_tiles(&self, keep: usize, evals: &mut u64) -> Vec<(f64, Mapping)> {
        let mut found: Vec<(f64, Mapping)> = self
            .fitting_tiles()
            .iter()
            .filter_map(|t| self.best_form(t, evals))
            .collect();
        // Best first; ties keep the walk's order (a stable sort), so the result is deterministic.
        found.sort_by(|a, b| a.0.total_cmp(&b.0));
        found.truncate(keep);
        found
    }
}

/// The loop orders worth trying from `m`: every order of the loops iterating at the backing
/// level (up to [`MAX_PERMUTED`] of them), and every rotation of each inner level's loops.
fn order_moves(ctx: &Ctx, m: &Mapping) -> Vec<Mapping> {
    let mut out = Vec::new();
    for (li, lm) in m.levels.iter().enumerate() {
        let active: Vec<Dim> = lm.active_loops();
        if active.len() < 2 {
            continue;
        }
        let orders = if li == ctx.back && active.len() <= MAX_PERMUTED {
            permutations(&active)
        } else {
            (1..active.len())
                .map(|r| {
                    let mut o = active.clone();
                    o.rotate_left(r);
                    o
                })
                .chain((0..active.len() - 1).map(|j| {
                    let mut o = active.clone();
                    o.swap(j, j + 1);
                    o
                }))
                .collect()
        };
        for order in orders {
            let m2 = reordered(ctx.arch, m, li, order);
            if m2 != *m {
                out.push(m2);
            }
        }
    }
    out
}

/// Step 3: steepest descent from `m` over factor and order moves.
fn descend_one(ctx: &Ctx, mut m: Mapping, mut v: f64, evals: &mut u64) -> (f64, Mapping) {
    for _ in 0..MAX_STEPS {
        let mut moves = prime_moves(ctx.arch, ctx.layer, &m, ctx.pe);
        moves.extend(tile_moves(ctx.arch, ctx.layer, &m, ctx.pe));
        moves.extend(order_moves(ctx, &m));
        let mut step: Option<(f64, Mapping)> = None;
        for m2 in moves {
            if let Some((v2, _)) = ctx.eval(&m2, evals) {
                if v2 < v * (1.0 - 1e-12) && step.as_ref().is_none_or(|s| v2 < s.0) {
                    step = Some((v2, m2));
                }
            }
        }
        match step {
            Some((v2, m2)) => (v, m) = (v2, m2),
            None => break,
        }
    }
    (v, m)
}

/// A layer's best mapping and its `(cycles, uJ)`.
type Found = (Mapping, (f64, f64));

/// The best mapping this pass finds for one layer, with its cost, if any tile fits.
fn best_for_layer(ctx: &Ctx, evals: &mut u64) -> Option<Found> {
    let mut best: Option<(f64, Mapping)> = None;
    let t0 = std::time::Instant::now();
    let found = ctx.best_tiles(KEEP, evals);
    let (t1, e1) = (t0.elapsed(), *evals);
    for (v, m) in found {
        let (v, m) = descend_one(ctx, m, v, evals);
        if best.as_ref().is_none_or(|b| v < b.0) {
            best = Some((v, m));
        }
    }
    if std::env::var_os("DOSA_TRACE").is_some() {
        eprintln!(
            "fixed {}: tiles {:?} {} evals, descent {:?} {} evals",
            ctx.layer.name,
            t1,
            e1,
            t0.elapsed() - t1,
            *evals - e1
        );
    }
    let (_, m) = best?;
    let c = ctx.model.cost(ctx.layer, &m, ctx.hw);
    Some((m, c))
}

/// The pass: every layer's tiles enumerated and the best descended on the hardware of `best`
/// (the fixed hardware), layers in parallel, each judged with the others as in `best`; then,
/// layer by layer, a result replaces the layer's mapping where it lowers the network objective.
/// Returns the design and the evaluations spent.
pub fn enumerate_tiles(
    model: &dyn Exact,
    layers: &[Layer],
    best: &Scored,
    objective: Objective,
) -> (Scored, u64) {
    let hw = &best.hardware;
    let mut tracker = Tracker::new(best, objective);
    let results: Vec<(Option<Found>, u64)> = layers
        .par_iter()
        .enumerate()
        .map(|(li, layer)| {
            let ctx = Ctx::new(model, layer, hw, li, best.costs[li], Some(&tracker));
            let mut evals = 0;
            let r = best_for_layer(&ctx, &mut evals);
            (r, evals)
        })
        .collect();
    let mut evals = 0;
    let mut chosen = best.mappings.clone();
    for (li, (r, n)) in results.into_iter().enumerate() {
        evals += n;
        let Some((m, c)) = r else { continue };
        let w = layers[li].count as f64;
        let old = best.costs[li];
        if tracker.with_layer(li, w, old, c) < tracker.value() {
            chosen[li] = m;
            tracker.apply(li, w, old, c);
        }
    }
    evals += 1;
    (score(model, layers, chosen), evals)
}
