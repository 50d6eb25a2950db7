//! The one-loop search (MODEL.md section 8): gradient descent on relaxed tile factors of every
//! layer together, hardware derived from the mappings, periodic rounding to legal mappings with
//! a DRAM loop-order choice, best rounded design kept. Several starts run in parallel.
//!
//! The passes, in order, for every start:
//! 1. [`init`]: a legal starting mapping per layer from the cheap random mapper;
//! 2. `relax`: the log of every free factor becomes a continuous variable ([`relax`]);
//! 3. `optimise`: Adam on the differentiable network cost ([`Relaxation`]);
//! 4. `round`: every `round_every` steps and at the end, nearest legal divisors
//!    ([`crate::passes::round`]), repaired to the hardware bounds;
//! 5. `order`: per layer, the cheapest DRAM-level loop order among the candidates ([`choose_orders`]);
//! 6. `derive`: the hardware the rounded mappings need, scored exactly ([`super::design::score`]);
//!    then descent continues from the rounded point.
//!
//! After all starts: [`combine`] (per layer, the best pooled mapping on the best design's
//! hardware), [`polish`] (discrete local moves of single prime factors on that hardware, which
//! the relaxation cannot see because it moves continuous factors) and [`shrink_buffers`] (smaller
//! buffers cost less per access: try each a quarter smaller, adapting the layers that overflow).

use super::baseline::random_hardware;
use super::design::{need, need_at_bound, runs_on, score, within_bounds, Exact, Scored, Tracker};
use crate::ir::{Arch, Dim, Hardware, HwBounds, Layer, Mapping, Objective, SearchSpec};
use crate::model::pieces::awkward;
use crate::passes::legal::free_slots;
use crate::passes::random::{random_mapping, shrink_until};
use crate::passes::round::{round_with, Relaxed, Rounding};
use crate::util::Rng;
use rayon::prelude::*;

/// A differentiable network cost for fixed loop orders; `x` holds every layer's log factors at
/// [`free_slots`], layer after layer.
pub trait DiffCost {
    /// Objective (with penalties) and its gradient.
    fn value_grad(&mut self, x: &[f64], grad: &mut [f64]) -> f64;
}

/// Builds a [`DiffCost`] for the loop orders of the given mappings.
pub trait Relaxation: Sync {
    /// Build the cost whose loop orders are those of `mappings` (one per layer).
    fn build(&self, mappings: &[Mapping]) -> Box<dyn DiffCost + '_>;
}

/// Candidate DRAM-level orders, outermost first: weight-, input- and output-stationary, plus
/// the order a mapping already has.
pub fn order_candidates() -> Vec<Vec<Dim>> {
    use Dim::*;
    vec![
        // Weight-stationary: weights' dims outside, P Q N innermost (weights stay).
        vec![K, C, R, S, N, P, Q],
        // Output-stationary: the reduction innermost (outputs stay).
        vec![N, K, P, Q, C, R, S],
        // Input-stationary: K innermost (inputs stay).
        vec![N, C, P, Q, R, S, K],
    ]
}

/// Index of the backing level.
pub(crate) fn backing(arch: &Arch) -> usize {
    arch.levels
        .iter()
        .rposition(|l| l.is_backing)
        .unwrap_or(arch.levels.len() - 1)
}

/// The variables of one mapping: log factors at the free slots.
pub fn relax(arch: &Arch, m: &Mapping) -> Vec<f64> {
    free_slots(arch)
        .into_iter()
        .map(|(li, d, spatial)| {
            let lm = &m.levels[li];
            let f = if spatial {
                lm.spatial[d.index()]
            } else {
                lm.temporal[d.index()]
            };
            (f as f64).ln()
        })
        .collect()
}

/// The continuous factors a variable vector stands for.
pub fn unrelax(arch: &Arch, x: &[f64]) -> Relaxed {
    let n = arch.levels.len();
    let mut r = Relaxed {
        temporal: vec![[1.0; 7]; n],
        spatial: vec![[1.0; 7]; n],
    };
    for ((li, d, spatial), v) in free_slots(arch).into_iter().zip(x) {
        let f = if v.is_finite() { v.exp() } else { 1.0 };
        if spatial {
            r.spatial[li][d.index()] = f;
        } else {
            r.temporal[li][d.index()] = f;
        }
    }
    r
}

/// `m` with level `li`'s loops in `order` (outermost first), in the form the architecture runs
/// ([`crate::gemmini::rules::fix_order`]): how every order pass builds its candidates.
pub(crate) fn reordered(arch: &Arch, m: &Mapping, li: usize, order: Vec<Dim>) -> Mapping {
    let mut m2 = m.clone();
    m2.levels[li].order = order;
    m2.levels[li].normalize_order();
    crate::gemmini::rules::fix_order(arch, &mut m2);
    m2
}

/// Pick, per layer and level (the backing level first, then the inner ones), the cheapest loop
/// order among the candidates for the network objective, the others fixed.
pub fn choose_orders(
    model: &dyn Exact,
    layers: &[Layer],
    mappings: &mut [Mapping],
    objective: Objective,
) -> u64 {
    let arch = model.arch();
    let back = backing(arch);
    let mut evals = 0;
    let base = score(model, layers, mappings.to_vec());
    let hw = base.hardware.clone();
    let mut tracker = Tracker::new(&base, objective);
    // Levels whose order can matter: the backing level first, then inner ones with a choice.
    let mut levels = vec![back];
    levels.extend(
        (0..back)
            .rev()
            .filter(|&l| arch.levels[l].temporal.as_ref().is_none_or(|t| t.len() > 1)),
    );
    for (li, layer) in layers.iter().enumerate() {
        let (mut c0, mut e0) = base.costs[li];
        let w = layer.count as f64;
        for &lv in &levels {
            let mut best = (f64::INFINITY, None);
            let mut cands = order_candidates();
            cands.push(mappings[li].levels[lv].order.clone());
            for order in cands {
                let m = reordered(arch, &mappings[li], lv, order);
                let (c, e) = model.cost(layer, &m, &hw);
                evals += 1;
                let v = tracker.with_layer(li, w, (c0, e0), (c, e));
                if v < best.0 {
                    best = (v, Some((m, c, e)));
                }
            }
            if let (_, Some((m, c, e))) = best {
                tracker.apply(li, w, (c0, e0), (c, e));
                (c0, e0) = (c, e);
                mappings[li] = m;
            }
        }
    }
    evals
}

/// Make a mapping respect the bounds by moving factors to the backing level.
fn repair(model: &dyn Exact, layer: &Layer, m: &mut Mapping, bounds: &HwBounds, rng: &mut Rng) {
    let arch = model.arch();
    shrink_until(arch, layer, m, rng, |m| {
        within_bounds(arch, &need_at_bound(model, layer, m, bounds), bounds)
    });
}

/// Legal starting mappings: random ones that fit a random hardware configuration within bounds.
pub fn init(model: &dyn Exact, layers: &[Layer], bounds: &HwBounds, rng: &mut Rng) -> Vec<Mapping> {
    let arch = model.arch();
    let hw = model
        .fixed()
        .cloned()
        .unwrap_or_else(|| random_hardware(arch, bounds, rng));
    layers
        .iter()
        .map(|l| {
            let mut m = random_mapping(arch, l, hw.pe_dim as u64, rng);
            shrink_until(arch, l, &mut m, rng, |m| runs_on(model, l, m, &hw));
            repair(model, l, &mut m, bounds, rng);
            m
        })
        .collect()
}

/// Start from Gemmini's own tiler (on the architecture's configuration): each layer's default tile,
/// snapped down to divisors of the layer, then repaired to the bounds; for a layer with an
/// awkward dim, Gemmini's tiles as they are (partial last tiles) if they cost less. `None` when the
/// architecture is not Gemmini-shaped.
pub fn init_gemmini(
    model: &dyn Exact,
    layers: &[Layer],
    bounds: &HwBounds,
    pe_cap: u64,
    objective: Objective,
) -> Option<Vec<Mapping>> {
    use crate::gemmini::tiler::{auto_tile, gemmini_params, tiles_to_mapping};
    let arch = model.arch();
    let params = gemmini_params(arch);
    layers
        .iter()
        .map(|l| {
            let tiles = auto_tile(l, &params);
            let padded = tiles_to_mapping(l, &tiles, arch).ok()?;
            let r = Relaxed::from_mapping(&padded);
            let orders: Vec<Vec<Dim>> = padded.levels.iter().map(|lm| lm.order.clone()).collect();
            let mut m = round_with(arch, l, &r, &orders, pe_cap, Rounding::Down);
            repair_greedy(model, l, &mut m, bounds);
            if !Dim::ALL.iter().any(|&d| awkward(l.dim(d))) {
                return Some(m);
            }
            // Awkward sizes: Gemmini's tiles as they are, the last tile of a dim partial.
            let mut exact = padded;
            crate::model::pieces::normalize_cover(l, &mut exact);
            crate::gemmini::rules::fix_order(arch, &mut exact);
            repair_greedy(model, l, &mut exact, bounds);
            Some(
                if own_cost(model, l, &exact, objective) < own_cost(model, l, &m, objective) {
                    exact
                } else {
                    m
                },
            )
        })
        .collect()
}

/// One start's result: the best rounded design and its curve (evaluations counted from 0).
pub struct StartResult {
    pub best: Scored,
    pub evaluations: u64,
    pub curve: Vec<(u64, f64)>,
    /// Every distinct rounded mapping seen, per layer (the pool the final combine pass draws on).
    pub pool: Vec<Vec<Mapping>>,
}

/// Deterministic repair: while the mapping breaks a bound, take the single move (one prime factor
/// of one inner factor to the backing level) that reduces the violation most.
pub fn repair_greedy(model: &dyn Exact, layer: &Layer, m: &mut Mapping, bounds: &HwBounds) {
    let arch = model.arch();
    let back = backing(arch);
    let need = |m: &Mapping| {
        super::design::violation(arch, &need_at_bound(model, layer, m, bounds), bounds)
    };
    let mut v = need(m);
    while v > 0.0 {
        let mut best: Option<(f64, Mapping)> = None;
        for li in 0..back {
            for d in 0..7 {
                for spatial in [false, true] {
                    let f = if spatial {
                        m.levels[li].spatial[d]
                    } else {
                        m.levels[li].temporal[d]
                    };
                    if f <= 1 {
                        continue;
                    }
                    let p = crate::passes::round::divisors(f)[1];
                    let mut m2 = m.clone();
                    if spatial {
                        m2.levels[li].spatial[d] /= p;
                    } else {
                        m2.levels[li].temporal[d] /= p;
                    }
                    m2.levels[back].temporal[d] *= p;
                    m2.levels[back].normalize_order();
                    if m.has_partial() {
                        crate::model::pieces::normalize_cover(layer, &mut m2);
                    }
                    let v2 = need(&m2);
                    if best.as_ref().is_none_or(|b| v2 < b.0) {
                        best = Some((v2, m2));
                    }
                }
            }
        }
        match best {
            Some((v2, m2)) => {
                *m = m2;
                v = v2;
            }
            None => return,
        }
    }
}

/// A layer's own objective on the smallest hardware it needs: how rounding candidates compare.
fn own_cost(model: &dyn Exact, layer: &Layer, m: &Mapping, objective: Objective) -> f64 {
    let hw = super::design::round_hardware(model.arch(), &need(model, layer, m));
    let (c, e) = model.cost(layer, m, &hw);
    objective.of(c, e)
}

/// Round every layer of `x`, keeping the loop orders of `prev`: the nearest and the round-down
/// candidates (and, for layers with an awkward dim, the ceil one), each repaired to the bounds,
/// the cheapest kept. Returns the mappings and the
/// number of exact evaluations spent.
fn round_all(
    model: &dyn Exact,
    layers: &[Layer],
    x: &[f64],
    nv: usize,
    prev: &[Mapping],
    spec: &SearchSpec,
    pe_cap: u64,
) -> (Vec<Mapping>, u64) {
    let arch = model.arch();
    let mut evals = 0;
    let ms = layers
        .iter()
        .enumerate()
        .map(|(li, l)| {
            let r = unrelax(arch, &x[li * nv..(li + 1) * nv]);
            let orders: Vec<Vec<Dim>> = prev[li].levels.iter().map(|lm| lm.order.clone()).collect();
            let mut best: Option<(f64, Mapping)> = None;
            let mut modes = vec![Rounding::Nearest, Rounding::Down];
            if Dim::ALL.iter().any(|&d| awkward(l.dim(d))) {
                modes.push(Rounding::Ceil);
            }
            for mode in modes {
                let mut m = round_with(arch, l, &r, &orders, pe_cap, mode);
                repair_greedy(model, l, &mut m, &spec.bounds);
                let v = own_cost(model, l, &m, spec.objective);
                evals += 1;
                if best.as_ref().is_none_or(|b| v < b.0) {
                    best = Some((v, m));
                }
            }
            best.expect("at least two candidates").1
        })
        .collect();
    (ms, evals)
}

/// Run one start.
pub fn run_start(
    model: &dyn Exact,
    relax_model: &dyn Relaxation,
    layers: &[Layer],
    spec: &SearchSpec,
    start: u32,
) -> StartResult {
    let arch = model.arch();
    let mut rng = Rng::new(spec.seed).fork(start as u64);
    let nv = free_slots(arch).len();
    let pe_cap = spec
        .bounds
        .pe_max
        .unwrap_or(super::baseline::PE_RANGE.1 as u64);
    // Start 0 begins from Gemmini's own tiles where that applies; the others from random ones.
    let gemmini = (start == 0)
        .then(|| init_gemmini(model, layers, &spec.bounds, pe_cap, spec.objective))
        .flatten();
    let mut mappings = match gemmini {
        Some(m) => m,
        None => init(model, layers, &spec.bounds, &mut rng),
    };
    let mut evals = choose_orders(model, layers, &mut mappings, spec.objective);
    let first = score(model, layers, mappings.clone());
    evals += 1;
    let mut curve = vec![(evals, first.objective(spec.objective))];
    let mut pool: Vec<Vec<Mapping>> = mappings.iter().map(|m| vec![m.clone()]).collect();
    let mut best = first;
    let mut x: Vec<f64> = mappings.iter().flat_map(|m| relax(arch, m)).collect();
    let mut cost = relax_model.build(&mappings);
    let mut g = vec![0.0; x.len()];
    let (mut m1, mut m2) = (vec![0.0; x.len()], vec![0.0; x.len()]);
    let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-8);
    let mut t = 0i32;
    let round_every = spec.round_every.max(1);
    for step in 1..=spec.steps {
        let _ = cost.value_grad(&x, &mut g);
        evals += 1;
        t += 1;
        let (c1, c2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
        for i in 0..x.len() {
            let gi = if g[i].is_finite() { g[i] } else { 0.0 };
            m1[i] = b1 * m1[i] + (1.0 - b1) * gi;
            m2[i] = b2 * m2[i] + (1.0 - b2) * gi * gi;
            x[i] -= spec.lr * (m1[i] / c1) / ((m2[i] / c2).sqrt() + eps);
        }
        if step % round_every == 0 || step == spec.steps {
            let (rounded, n) = round_all(model, layers, &x, nv, &mappings, spec, pe_cap);
            mappings = rounded;
            evals += n;
            evals += choose_orders(model, layers, &mut mappings, spec.objective);
            let s = score(model, layers, mappings.clone());
            evals += 1;
            if std::env::var_os("DOSA_TRACE").is_some() {
                eprintln!(
                    "start {start} step {step}: relaxed {:.4e} rounded {:.4e} pe {} hw {:?}",
                    cost.value_grad(&x, &mut g).exp(),
                    s.objective(spec.objective),
                    s.hardware.pe_dim,
                    s.hardware.usable_bytes
                );
            }
            for (p, m) in pool.iter_mut().zip(&mappings) {
                if !p.contains(m) {
                    p.push(m.clone());
                }
            }
            if s.objective(spec.objective) < best.objective(spec.objective) {
                best = s;
            }
            curve.push((evals, best.objective(spec.objective)));
            x = mappings.iter().flat_map(|m| relax(arch, m)).collect();
            cost = relax_model.build(&mappings);
            m1.iter_mut().chain(m2.iter_mut()).for_each(|v| *v = 0.0);
            t = 0;
        }
    }
    StartResult {
        best,
        evaluations: evals,
        curve,
        pool,
    }
}

/// All starts in parallel; the result does not depend on the thread count (each start has its
/// own seeded stream, and the curve lists the starts one after another in start order).
pub fn search(
    model: &dyn Exact,
    relax_model: &dyn Relaxation,
    layers: &[Layer],
    spec: &SearchSpec,
) -> StartResult {
    let results: Vec<StartResult> = (0..spec.starts.max(1))
        .into_par_iter()
        .map(|s| run_start(model, relax_model, layers, spec, s))
        .collect();
    let mut offset = 0;
    let mut curve = Vec::new();
    let mut best: Option<Scored> = None;
    let mut pool: Vec<Vec<Mapping>> = vec![Vec::new(); layers.len()];
    for r in results {
        for (p, rp) in pool.iter_mut().zip(r.pool) {
            for m in rp {
                if !p.contains(&m) {
                    p.push(m);
                }
            }
        }
        for (e, v) in r.curve {
            let prev = curve.last().map_or(f64::INFINITY, |c: &(u64, f64)| c.1);
            curve.push((offset + e, prev.min(v)));
        }
        offset += r.evaluations;
        if best
            .as_ref()
            .is_none_or(|b| r.best.objective(spec.objective) < b.objective(spec.objective))
        {
            best = Some(r.best);
        }
    }
    let mut best = best.expect("at least one start");
    // The passes after the starts, each kept only where it lowers the objective: combine (per
    // layer, the best mapping any start found for the best design's hardware), polish (repeated
    // while the re-derived hardware keeps improving the design) and shrink buffers.
    let o = spec.objective;
    let mut keep = |cand: Scored, n: u64, best: &mut Scored| {
        offset += n;
        let better = cand.objective(o) < best.objective(o);
        if better {
            let prev = curve.last().map_or(f64::INFINITY, |c: &(u64, f64)| c.1);
            curve.push((offset, prev.min(cand.objective(o))));
            *best = cand;
        }
        better
    };
    let (combined, n) = combine(model, layers, &best, &pool, o);
    keep(combined, n, &mut best);
    for _ in 0..POLISH_ROUNDS {
        let (polished, n) = polish(model, layers, &best, o);
        if !keep(polished, n, &mut best) {
            break;
        }
    }
    let (ordered, n) = all_dram_orders(model, layers, &best, o);
    keep(ordered, n, &mut best);
    // On a chip that exists the hardware cannot move, so what is left to find is in the
    // mappings: every tile that fits is enumerated (see `super::fixed`), then pairs of prime
    // moves escape single-move optima.
    if model.fixed().is_some() {
        let (enumerated, n) = super::fixed::enumerate_tiles(model, layers, &best, o);
        keep(enumerated, n, &mut best);
        for _ in 0..PAIR_ROUNDS {
            let (paired, n) = polish_pairs(model, layers, &best, o);
            if !keep(paired, n, &mut best) {
                break;
            }
            let (polished, n) = polish(model, layers, &best, o);
            keep(polished, n, &mut best);
        }
    }
    // Buffers of a chip that exists cannot shrink.
    if model.fixed().is_none() {
        let (shrunk, n) = shrink_buffers(model, layers, &best, o);
        keep(shrunk, n, &mut best);
    }
    StartResult {
        best,
        evaluations: offset,
        curve,
        pool,
    }
}

/// Coordinate descent over the pool: on the hardware of `best`, give each layer (twice over) the
/// pooled mapping that fits it and lowers the network objective most; then derive the hardware
/// of the result anew (never larger). Returns the design and the evaluations spent.
pub fn combine(
    model: &dyn Exact,
    layers: &[Layer],
    best: &Scored,
    pool: &[Vec<Mapping>],
    objective: Objective,
) -> (Scored, u64) {
    let hw = &best.hardware;
    let mut evals = 0;
    let mut chosen = best.mappings.clone();
    let mut costs = best.costs.clone();
    let mut tracker = Tracker::new(best, objective);
    let cands: Vec<Vec<(Mapping, (f64, f64))>> = layers
        .iter()
        .zip(pool)
        .map(|(l, p)| {
            p.iter()
                .filter(|m| runs_on(model, l, m, hw))
                .map(|m| {
                    evals += 1;
                    (m.clone(), model.cost(l, m, hw))
                })
                .collect()
        })
        .collect();
    for _ in 0..2 {
        for (li, layer) in layers.iter().enumerate() {
            let w = layer.count as f64;
            let old = costs[li];
            let mut best_v = tracker.value();
            for (m, c) in &cands[li] {
                let v = tracker.with_layer(li, w, old, *c);
                if v < best_v {
                    best_v = v;
                    chosen[li] = m.clone();
                    costs[li] = *c;
                }
            }
            tracker.apply(li, w, old, costs[li]);
        }
    }
    evals += 1;
    (score(model, layers, chosen), evals)
}

/// Most loops iterating at the backing level for which [`all_dram_orders`] tries every order.
pub(crate) const MAX_PERMUTED: usize = 5;

/// Every order of `dims` (Heap's algorithm), the input order first.
pub(crate) fn permutations(dims: &[Dim]) -> Vec<Vec<Dim>> {
    fn go(k: usize, a: &mut Vec<Dim>, out: &mut Vec<Vec<Dim>>) {
        if k <= 1 {
            out.push(a.clone());
            return;
        }
        for i in 0..k {
            go(k - 1, a, out);
            let j = if k % 2 == 0 { i } else { 0 };
            a.swap(j, k - 1);
        }
    }
    let mut out = Vec::new();
    go(dims.len(), &mut dims.to_vec(), &mut out);
    out
}

/// The order pass made exhaustive once, on the final design: per layer every order of the loops
/// that iterate at the backing level (when at most [`MAX_PERMUTED`] do), in the form the
/// architecture runs ([`crate::gemmini::rules::fix_order`]), the best for the network objective
/// kept. A few thousand exact evaluations; the per-rounding pass only tries four orders.
pub fn all_dram_orders(
    model: &dyn Exact,
    layers: &[Layer],
    best: &Scored,
    objective: Objective,
) -> (Scored, u64) {
    let arch = model.arch();
    let back = backing(arch);
    descend(model, layers, best, objective, 1, |_, m| {
        let top = &m.levels[back];
        let active: Vec<Dim> = top.active_loops();
        if active.len() < 2 || active.len() > MAX_PERMUTED {
            return Vec::new();
        }
        permutations(&active)
            .into_iter()
            .map(|order| reordered(arch, m, back, order))
            .collect()
    })
}

/// Most polish rounds (each: sweeps to a local optimum, then the hardware derived anew).
const POLISH_ROUNDS: usize = 3;
/// Most sweeps over the layers in one polish round.
const POLISH_SWEEPS: usize = 8;

/// The single-prime-factor moves of one mapping: for every dim, a smallest prime of the factor in
/// one slot (a free inner slot or the backing level) moved to another slot of the same dim,
/// spatial slots capped by the PE side. Every result multiplies to the layer, or covers it with
/// a partial last tile where `m` did.
pub fn prime_moves(arch: &Arch, layer: &Layer, m: &Mapping, pe_cap: u64) -> Vec<Mapping> {
    let back = backing(arch);
    let mut slots = free_slots(arch);
    slots.extend(Dim::ALL.map(|d| (back, d, false)));
    let get = |m: &Mapping, (li, d, sp): (usize, Dim, bool)| {
        if sp {
            m.levels[li].spatial[d.index()]
        } else {
            m.levels[li].temporal[d.index()]
        }
    };
    let mut out = Vec::new();
    for &a in &slots {
        let fa = get(m, a);
        if fa <= 1 {
            continue;
        }
        let p = crate::passes::random::smallest_prime(fa);
        for &b in slots.iter().filter(|b| b.1 == a.1 && **b != a) {
            if b.2 && get(m, b) * p > crate::passes::legal::spatial_cap(arch, b.0, b.1, pe_cap) {
                continue;
            }
            let mut m2 = m.clone();
            for (slot, mul) in [(a, false), (b, true)] {
                let lm = &mut m2.levels[slot.0];
                let f = if slot.2 {
                    &mut lm.spatial[slot.1.index()]
                } else {
                    &mut lm.temporal[slot.1.index()]
                };
                *f = if mul { *f * p } else { *f / p };
                lm.normalize_order();
            }
            if m.has_partial() {
                crate::model::pieces::normalize_cover(layer, &mut m2);
            }
            crate::gemmini::rules::fix_order(arch, &mut m2);
            out.push(m2);
        }
    }
    out
}

/// Moves to tiles that need not divide the layer, for its awkward dims ([`awkward`]) and dims
/// already partial: one inner factor set to a near value (one more or less, the nearest powers
/// of two, the full spatial cap), the cover re-established
/// ([`crate::model::pieces::normalize_cover`]).
pub fn tile_moves(arch: &Arch, layer: &Layer, m: &Mapping, pe_cap: u64) -> Vec<Mapping> {
    let mut out = Vec::new();
    for (li, d, spatial) in free_slots(arch) {
        if !(awkward(layer.dim(d)) || m.partial[d.index()]) {
            continue;
        }
        let lm = &m.levels[li];
        let f = if spatial {
            lm.spatial[d.index()]
        } else {
            lm.temporal[d.index()]
        };
        let cap = if spatial {
            crate::passes::legal::spatial_cap(arch, li, d, pe_cap)
        } else {
            layer.dim(d)
        };
        let pow_down = 1u64 << (63 - f.max(1).leading_zeros());
        let mut cands = vec![f + 1, f.saturating_sub(1), pow_down, pow_down * 2];
        if spatial {
            cands.push(cap);
        }
        cands.sort_unstable();
        cands.dedup();
        for g in cands {
            if g == 0 || g == f || g > cap {
                continue;
            }
            let mut m2 = m.clone();
            let lm = &mut m2.levels[li];
            if spatial {
                lm.spatial[d.index()] = g;
            } else {
                lm.temporal[d.index()] = g;
                if !lm.order.contains(&d) {
                    lm.order.push(d);
                }
            }
            crate::model::pieces::normalize_cover(layer, &mut m2);
            crate::gemmini::rules::fix_order(arch, &mut m2);
            if m2 != *m {
                out.push(m2);
            }
        }
    }
    out
}

/// The polish pass: on the hardware of `best`, per layer, the best single-prime-factor move
/// ([`prime_moves`]) that still fits and lowers the network objective, sweeping the layers until
/// none improves; then the hardware is derived anew from the result (never larger, often
/// smaller, so energy per access can only drop). Returns the design and the evaluations spent.
pub fn polish(
    model: &dyn Exact,
    layers: &[Layer],
    best: &Scored,
    objective: Objective,
) -> (Scored, u64) {
    let arch = model.arch();
    let pe_cap = best.hardware.pe_dim.max(1.0) as u64;
    descend(model, layers, best, objective, POLISH_SWEEPS, |l, m| {
        let mut v = prime_moves(arch, l, m, pe_cap);
        v.extend(tile_moves(arch, l, m, pe_cap));
        v
    })
}

/// Coordinate descent over a neighbourhood: on the hardware of `best`, per layer, the
/// `neighbours` of its mapping that fit and lower the network objective most, sweeping the
/// layers up to `sweeps` times until none improves; then the hardware is derived anew. What
/// [`polish`], [`polish_pairs`] and [`all_dram_orders`] share.
fn descend(
    model: &dyn Exact,
    layers: &[Layer],
    best: &Scored,
    objective: Objective,
    sweeps: usize,
    neighbours: impl Fn(&Layer, &Mapping) -> Vec<Mapping>,
) -> (Scored, u64) {
    let hw = &best.hardware;
    let mut evals = 0;
    let mut chosen = best.mappings.clone();
    let mut costs = best.costs.clone();
    let mut tracker = Tracker::new(best, objective);
    for _ in 0..sweeps {
        let mut improved = false;
        for (li, layer) in layers.iter().enumerate() {
            let w = layer.count as f64;
            let old = costs[li];
            let mut best_move: Option<(f64, Mapping, (f64, f64))> = None;
            let current = tracker.value();
            for m2 in neighbours(layer, &chosen[li]) {
                if m2 == chosen[li] || !runs_on(model, layer, &m2, hw) {
                    continue;
                }
                let c = model.cost(layer, &m2, hw);
                evals += 1;
                let v = tracker.with_layer(li, w, old, c);
                if v < current * (1.0 - 1e-12) && best_move.as_ref().is_none_or(|b| v < b.0) {
                    best_move = Some((v, m2, c));
                }
            }
            if let Some((_, m2, c)) = best_move {
                chosen[li] = m2;
                costs[li] = c;
                tracker.apply(li, w, old, c);
                improved = true;
            }
        }
        if !improved {
            break;
        }
    }
    evals += 1;
    (score(model, layers, chosen), evals)
}

/// Most rounds of [`polish_pairs`] (each followed by [`polish`]).
const PAIR_ROUNDS: usize = 4;

/// The polish pass with two prime moves at once ([`prime_moves`] of every [`prime_moves`]
/// result), each layer once, the best that fits and lowers the network objective kept. Quadratic
/// in the moves (a few thousand exact evaluations per layer), so it runs once, for fixed
/// hardware only.
pub fn polish_pairs(
    model: &dyn Exact,
    layers: &[Layer],
    best: &Scored,
    objective: Objective,
) -> (Scored, u64) {
    let arch = model.arch();
    let pe_cap = best.hardware.pe_dim.max(1.0) as u64;
    descend(model, layers, best, objective, 1, |l, m| {
        let mut seen = std::collections::HashSet::new();
        prime_moves(arch, l, m, pe_cap)
            .iter()
            .flat_map(|m1| prime_moves(arch, l, m1, pe_cap))
            .filter(|m2| seen.insert(m2.to_string()))
            .collect()
    })
}

/// Most buffer-shrinking steps.
const SHRINK_STEPS: usize = 8;
/// The sizes tried for a buffer, as fractions of its current size.
const SHRINK_BY: [f64; 2] = [0.75, 0.9];

/// One layer's mapping made to fit `target` for [`shrink_buffers`]: while it does not, take the
/// [`prime_moves`] that lowers its need of level `lv` at the least cost of its own. `None` when
/// no move lowers that need. Each mapping's minimum hardware is computed once.
fn fit_buffer(
    model: &dyn Exact,
    layer: &Layer,
    m: &Mapping,
    target: &Hardware,
    lv: usize,
    objective: Objective,
    evals: &mut u64,
) -> Option<Mapping> {
    let arch = model.arch();
    let pe_cap = target.pe_dim.max(1.0) as u64;
    let mut m = m.clone();
    let mut need_now = need(model, layer, &m);
    while !runs_on(model, layer, &m, target) {
        let now = need_now.instance_bytes(arch, lv);
        let mut pick: Option<(f64, Mapping, Hardware)> = None;
        for m2 in prime_moves(arch, layer, &m, pe_cap) {
            let need2 = need(model, layer, &m2);
            if need2.instance_bytes(arch, lv) >= now {
                continue;
            }
            let (c, e) = model.cost(layer, &m2, target);
            *evals += 1;
            let v = objective.of(c, e);
            if pick.as_ref().is_none_or(|p| v < p.0) {
                pick = Some((v, m2, need2));
            }
        }
        let (_, m2, need2) = pick?;
        m = m2;
        need_now = need2;
    }
    Some(m)
}

/// The buffer pass: for each on-chip buffer level in turn, ask for a quarter less of it; every
/// layer that no longer fits takes, one at a time, the [`prime_moves`] that lowers its need of
/// that level at the least cost of its own, until it fits; the result is polished ([`polish`])
/// and kept if the network objective drops. Repeats while some level shrinks. The derived
/// hardware can only shrink, and smaller SRAMs cost less energy per access.
pub fn shrink_buffers(
    model: &dyn Exact,
    layers: &[Layer],
    best: &Scored,
    objective: Objective,
) -> (Scored, u64) {
    let arch = model.arch();
    let mut evals = 0;
    let mut best = best.clone();
    let levels: Vec<usize> = (0..arch.levels.len())
        .filter(|&i| {
            !arch.levels[i].is_backing && arch.levels[i].instances != crate::ir::Instances::PerPe
        })
        .collect();
    for _ in 0..SHRINK_STEPS {
        let mut improved = false;
        for (&lv, &keep) in levels
            .iter()
            .flat_map(|l| std::iter::repeat(l).zip(&SHRINK_BY))
        {
            let mut target = best.hardware.clone();
            target.usable_bytes[lv] *= keep;
            let fitted: Option<Vec<Mapping>> = layers
                .iter()
                .zip(&best.mappings)
                .map(|(layer, m)| fit_buffer(model, layer, m, &target, lv, objective, &mut evals))
                .collect();
            let Some(mappings) = fitted else {
                continue;
            };
            let cand = score(model, layers, mappings);
            evals += 1;
            let (cand, n) = polish(model, layers, &cand, objective);
            evals += n;
            if cand.objective(objective) < best.objective(objective) {
                best = cand;
                improved = true;
            }
        }
        if !improved {
            break;
        }
    }
    (best, evals)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutations_are_all_distinct_orders() {
        let p = permutations(&[Dim::K, Dim::P, Dim::C, Dim::Q]);
        assert_eq!(p.len(), 24);
        assert_eq!(p[0], vec![Dim::K, Dim::P, Dim::C, Dim::Q]);
        let mut s = p.clone();
        s.sort_by_key(|o| o.iter().map(|d| d.index()).collect::<Vec<_>>());
        s.dedup();
        assert_eq!(s.len(), 24);
    }
}
