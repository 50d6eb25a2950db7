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

use super::baseline::random_hardware;
use super::design::{score, within_bounds, Exact, Scored};
use crate::ir::{Arch, Dim, HwBounds, Layer, Mapping, Objective, SearchSpec};
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
fn backing(arch: &Arch) -> usize {
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
    let (mut lat, mut en) = (base.latency, base.energy);
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
                let mut m = mappings[li].clone();
                m.levels[lv].order = order;
                m.levels[lv].normalize_order();
                let (c, e) = model.cost(layer, &m, &hw);
                evals += 1;
                let (l2, e2) = (lat - w * c0 + w * c, en - w * e0 + w * e);
                let v = objective.of(l2, e2);
                if v < best.0 {
                    best = (v, Some((m, c, e)));
                }
            }
            if let (_, Some((m, c, e))) = best {
                lat += w * (c - c0);
                en += w * (e - e0);
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
    shrink_until(arch, m, rng, |m| {
        let own = super::design::at_bound_pe(arch, &model.min_hardware(layer, m), bounds);
        within_bounds(arch, &super::design::round_hardware(arch, &own), bounds)
    });
}

/// Legal starting mappings: random ones that fit a random hardware configuration within bounds.
pub fn init(model: &dyn Exact, layers: &[Layer], bounds: &HwBounds, rng: &mut Rng) -> Vec<Mapping> {
    let arch = model.arch();
    let hw = random_hardware(arch, bounds, rng);
    layers
        .iter()
        .map(|l| {
            let mut m = random_mapping(arch, l, hw.pe_dim as u64, rng);
            shrink_until(arch, &mut m, rng, |m| {
                super::baseline::fits(arch, &model.min_hardware(l, m), &hw)
            });
            repair(model, l, &mut m, bounds, rng);
            m
        })
        .collect()
}

/// Start from Gemmini's own tiler (on the architecture's configuration): each layer's default tile,
/// snapped down to divisors of the layer, then repaired to the bounds. `None` when the
/// architecture is not Gemmini-shaped.
pub fn init_gemmini(
    model: &dyn Exact,
    layers: &[Layer],
    bounds: &HwBounds,
    pe_cap: u64,
) -> Option<Vec<Mapping>> {
    use crate::emit::gemmini_tiler::{auto_tile, gemmini_params, tiles_to_mapping};
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
            Some(m)
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
        let own = super::design::at_bound_pe(arch, &model.min_hardware(layer, m), bounds);
        let hw = super::design::round_hardware(arch, &own);
        super::design::violation(arch, &hw, bounds)
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
    let hw = super::design::round_hardware(model.arch(), &model.min_hardware(layer, m));
    let (c, e) = model.cost(layer, m, &hw);
    objective.of(c, e)
}

/// Round every layer of `x`, keeping the loop orders of `prev`: the nearest and the round-down
/// candidates, each repaired to the bounds, the cheaper kept. Returns the mappings and the
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
            for mode in [Rounding::Nearest, Rounding::Down] {
                let mut m = round_with(arch, l, &r, &orders, pe_cap, mode);
                repair_greedy(model, l, &mut m, &spec.bounds);
                let v = own_cost(model, l, &m, spec.objective);
                evals += 1;
                if best.as_ref().is_none_or(|b| v < b.0) {
                    best = Some((v, m));
                }
            }
            best.expect("two candidates").1
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
        .then(|| init_gemmini(model, layers, &spec.bounds, pe_cap))
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
    let best = best.expect("at least one start");
    // The combine pass: per layer, the best mapping any start found for the best design's hardware.
    let (combined, n) = combine(model, layers, &best, &pool, spec.objective);
    offset += n;
    let best = if combined.objective(spec.objective) < best.objective(spec.objective) {
        let v = combined.objective(spec.objective);
        let prev = curve.last().map_or(f64::INFINITY, |c: &(u64, f64)| c.1);
        curve.push((offset, prev.min(v)));
        combined
    } else {
        best
    };
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
    let arch = model.arch();
    let hw = &best.hardware;
    let mut evals = 0;
    let mut chosen = best.mappings.clone();
    let mut costs = best.costs.clone();
    let (mut lat, mut en) = (best.latency, best.energy);
    let cands: Vec<Vec<(Mapping, (f64, f64))>> = layers
        .iter()
        .zip(pool)
        .map(|(l, p)| {
            p.iter()
                .filter(|m| super::baseline::fits(arch, &model.min_hardware(l, m), hw))
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
            let (c0, e0) = costs[li];
            let value = |c: f64, e: f64| {
                let (l2, e2) = (lat - w * c0 + w * c, en - w * e0 + w * e);
                objective.of(l2, e2)
            };
            let mut best_v = value(c0, e0);
            for (m, (c, e)) in &cands[li] {
                let v = value(*c, *e);
                if v < best_v {
                    best_v = v;
                    chosen[li] = m.clone();
                    costs[li] = (*c, *e);
                }
            }
            lat += w * (costs[li].0 - c0);
            en += w * (costs[li].1 - e0);
        }
    }
    evals += 1;
    (score(model, layers, chosen), evals)
}
