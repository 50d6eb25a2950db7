//! The baselines every search result is compared with, scored by the same evaluator.

use super::design::{named_levels, runs_on, score, score_on, Exact, Scored};
use crate::gemmini::tiler::{auto_mapping, auto_tile, gemmini_params};
use crate::ir::{Arch, Hardware, HwBounds, Layer, Mapping, Objective};
use crate::passes::random::{random_mapping_with, shrink_until};
use crate::util::Rng;
use rayon::prelude::*;

/// Default hardware search ranges when no bound is given (usable sizes); the one-loop search
/// uses the same PE limit so that both explore one space.
pub const PE_RANGE: (f64, f64) = (4.0, 128.0);
const SP_KIB_RANGE: (f64, f64) = (16.0, 2048.0);
const ACC_KIB_RANGE: (f64, f64) = (4.0, 512.0);

/// The log-space box hardware is drawn from, `(lo, hi)` per coordinate: PE side, usable
/// scratchpad KiB, usable accumulator KiB. The random baseline samples it and Bayesian
/// optimisation searches it, so both explore one space.
pub fn hardware_box(arch: &Arch, bounds: &HwBounds) -> [(f64, f64); 3] {
    let (sp, acc) = named_levels(arch);
    let half = |i: Option<usize>| {
        if i.is_some_and(|i| arch.levels[i].double_buffered) {
            0.5
        } else {
            1.0
        }
    };
    let pe_hi = bounds.pe_max.map_or(PE_RANGE.1, |m| m as f64);
    let sp_hi = bounds.sp_max_kib.map_or(SP_KIB_RANGE.1, |m| m * half(sp));
    let acc_hi = bounds
        .acc_max_kib
        .map_or(ACC_KIB_RANGE.1, |m| m * half(acc));
    let range = |lo: f64, hi: f64| {
        let lo = lo.min(hi);
        (lo, hi.max(lo))
    };
    [
        range(PE_RANGE.0, pe_hi),
        range(SP_KIB_RANGE.0, sp_hi),
        range(ACC_KIB_RANGE.0, acc_hi),
    ]
}

/// Log-interpolate `u` in [0, 1] between `lo` and `hi`.
fn log_lerp((lo, hi): (f64, f64), u: f64) -> f64 {
    (lo.ln() + u * (hi.ln() - lo.ln())).exp()
}

/// The hardware at point `u` of the unit cube (see [`hardware_box`]), rounded as it is built:
/// integer PE side (at least the arch's minimum), whole KiB of usable buffer.
pub fn hardware_at(arch: &Arch, bounds: &HwBounds, u: [f64; 3]) -> Hardware {
    let (sp, acc) = named_levels(arch);
    let b = hardware_box(arch, bounds);
    let pe = log_lerp(b[0], u[0]).round().max(arch.pe_min as f64);
    let sp_kib = log_lerp(b[1], u[1]).floor().max(1.0);
    let acc_kib = log_lerp(b[2], u[2]).floor().max(1.0);
    let usable_bytes = arch
        .levels
        .iter()
        .enumerate()
        .map(|(i, l)| {
            if Some(i) == sp {
                sp_kib * 1024.0
            } else if Some(i) == acc {
                acc_kib * 1024.0
            } else if l.is_backing {
                f64::INFINITY
            } else {
                // Other levels (registers): whatever one word per instance needs.
                l.instance_count(pe) * l.word_bits as f64 / 8.0
            }
        })
        .collect();
    Hardware {
        pe_dim: pe,
        usable_bytes,
    }
}

/// Where `hw` sits in the unit cube of [`hardware_box`] (the inverse of [`hardware_at`] up to its
/// rounding, clamped to the cube): what the Gaussian process of `bo` is fitted on.
pub fn unit_of(arch: &Arch, bounds: &HwBounds, hw: &Hardware) -> [f64; 3] {
    let (sp, acc) = named_levels(arch);
    let b = hardware_box(arch, bounds);
    let kib = |i: Option<usize>| i.map_or(1.0, |i| hw.usable_bytes[i] / 1024.0);
    let at = |(lo, hi): (f64, f64), v: f64| {
        let span = hi.ln() - lo.ln();
        if span > 1e-12 && v > 0.0 {
            ((v.ln() - lo.ln()) / span).clamp(0.0, 1.0)
        } else {
            0.0
        }
    };
    [at(b[0], hw.pe_dim), at(b[1], kib(sp)), at(b[2], kib(acc))]
}

/// A random hardware configuration within the bounds (usable bytes per level): log-uniform in
/// each coordinate of [`hardware_box`].
pub fn random_hardware(arch: &Arch, bounds: &HwBounds, rng: &mut Rng) -> Hardware {
    let u = [rng.next_f64(), rng.next_f64(), rng.next_f64()];
    hardware_at(arch, bounds, u)
}

/// Whether `need` fits in `have`: the PE array, and every non-backing level per instance (a
/// layer that needs a small array still needs its per-column buffer on the larger one).
pub fn fits(arch: &Arch, need: &Hardware, have: &Hardware) -> bool {
    need.pe_dim <= have.pe_dim + 1e-9
        && (0..arch.levels.len()).all(|i| {
            let (n, h) = (need.instance_bytes(arch, i), have.instance_bytes(arch, i));
            arch.levels[i].is_backing || n <= h * (1.0 + 1e-12) + 1e-9
        })
}

/// What a sampling method returns: the best design, its evaluation count and the curve of the
/// best objective so far against evaluations (what reports and `curve.png` show).
pub type Sampled = (Scored, u64, Vec<(u64, f64)>);

/// One hardware point scored by the random mapper: `map_samples` random legal mappings per
/// layer shrunk until they fit `hw`, the best per layer by its own objective. Returns the design
/// (scored on the smallest buildable hardware its mappings need) and, per sample round, the
/// network objective on `hw` with the best mappings so far (the curve's points).
///
/// The layers are sampled in parallel, each from its own stream forked from `rng` in layer
/// order, and combined in layer order: the result does not depend on the thread count. Shared by
/// the random baseline and Bayesian optimisation, so both score hardware the same way.
pub fn sample_on_hardware(
    model: &dyn Exact,
    layers: &[Layer],
    hw: &Hardware,
    objective: Objective,
    map_samples: u32,
    rng: &mut Rng,
) -> (Scored, Vec<f64>) {
    let arch = model.arch();
    let pe_max = hw.pe_dim as u64;
    let rounds = map_samples.max(1) as usize;
    let streams: Vec<Rng> = (0..layers.len()).map(|li| rng.fork(li as u64)).collect();
    // Per layer: the best mapping and, per round, the `(cycles, uJ)` of the best so far.
    let per_layer: Vec<(Mapping, Vec<(f64, f64)>)> = layers
        .par_iter()
        .zip(streams)
        .map(|(layer, mut rng)| {
            let mut best: Option<(f64, Mapping, (f64, f64))> = None;
            let mut so_far = Vec::with_capacity(rounds);
            for _ in 0..rounds {
                let mut m = random_mapping_with(arch, layer, pe_max, &mut rng, true);
                shrink_until(arch, layer, &mut m, &mut rng, |m| {
                    runs_on(model, layer, m, hw)
                });
                let c = model.cost(layer, &m, hw);
                let v = objective.of(c.0, c.1);
                if best.as_ref().is_none_or(|b| v < b.0) {
                    best = Some((v, m, c));
                }
                so_far.push(best.as_ref().map_or(c, |b| b.2));
            }
            let (_, m, _) = best.expect("at least one round");
            (m, so_far)
        })
        .collect();
    let values = (0..rounds)
        .map(|r| {
            let (mut lat, mut en) = (0.0, 0.0);
            for (l, (_, so_far)) in layers.iter().zip(&per_layer) {
                lat += l.count as f64 * so_far[r].0;
                en += l.count as f64 * so_far[r].1;
            }
            objective.of(lat, en)
        })
        .collect();
    let mappings = per_layer.into_iter().map(|(m, _)| m).collect();
    (score(model, layers, mappings), values)
}

/// The best of several scored hardware points (the first on ties) and the curve of the best
/// objective so far over all their samples in order; the last point is lowered to the best
/// design's own score. Returns `(best, evaluations, curve)`, or `None` for no points.
pub fn best_and_curve(per_hw: Vec<(Scored, Vec<f64>)>, objective: Objective) -> Option<Sampled> {
    let mut best: Option<Scored> = None;
    let mut curve: Vec<(u64, f64)> = Vec::new();
    for (s, values) in per_hw {
        for v in values {
            let prev = curve.last().map_or(f64::INFINITY, |c| c.1);
            curve.push((curve.len() as u64 + 1, prev.min(v)));
        }
        if best
            .as_ref()
            .is_none_or(|b| s.objective(objective) < b.objective(objective))
        {
            best = Some(s);
        }
    }
    let best = best?;
    let evals = curve.len() as u64;
    // The final point is the best design as scored on its own derived hardware.
    let v = best.objective(objective);
    if let Some(last) = curve.last_mut() {
        last.1 = last.1.min(v);
    }
    Some((best, evals, curve))
}

/// Random search: `hw_samples` random hardware configurations, `map_samples` random legal mappings
/// per layer that fit each, the best per layer by its own objective, the best network overall.
/// Returns the best design, the evaluation count (`hw_samples * map_samples`) and the curve.
pub fn random_search(
    model: &dyn Exact,
    layers: &[Layer],
    bounds: &HwBounds,
    objective: Objective,
    hw_samples: u32,
    map_samples: u32,
    seed: u64,
) -> Sampled {
    let arch = model.arch();
    // One hardware sample per task, each with its own seeded stream: the result does not
    // depend on the thread count.
    let per_hw: Vec<(Scored, Vec<f64>)> = (0..hw_samples.max(1))
        .into_par_iter()
        .map(|h| {
            let mut rng = Rng::new(seed).fork(h as u64);
            // A mapping-only search samples mappings on its one chip.
            let hw = model
                .fixed()
                .cloned()
                .unwrap_or_else(|| random_hardware(arch, bounds, &mut rng));
            sample_on_hardware(model, layers, &hw, objective, map_samples, &mut rng)
        })
        .collect();
    best_and_curve(per_hw, objective).expect("hw_samples >= 1")
}

/// Gemmini's shipped hardware and its own auto-tiler with its fixed loop order.
///
/// Each layer's mapping is Gemmini's tile ([`auto_mapping`]): where it does not divide the layer
/// the last tile of the dim is partial, costed as the hardware runs it (the sum of its pieces,
/// [`crate::model::pieces`]), and the reported mapping says so (`K4+`).
pub fn gemmini_default(model: &dyn Exact, layers: &[Layer]) -> Result<Scored, String> {
    let arch = model.arch();
    let params = gemmini_params(arch);
    let (sp, acc) = named_levels(arch);
    let usable_bytes: Vec<f64> = arch
        .levels
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let phys = match l.capacity.max() {
                Some(b) => b as f64 * l.instance_count(params.dim as f64),
                None => f64::INFINITY,
            };
            if Some(i) == sp || Some(i) == acc {
                phys * if l.double_buffered { 0.5 } else { 1.0 }
            } else {
                phys
            }
        })
        .collect();
    let hw = Hardware {
        pe_dim: params.dim as f64,
        usable_bytes,
    };
    let mut mappings = Vec::new();
    let mut costs = Vec::new();
    for layer in layers {
        let tiles = auto_tile(layer, &params);
        let m = auto_mapping(layer, &tiles, arch).map_err(|e| format!("{}: {e}", layer.name))?;
        costs.push(model.cost(layer, &m, &hw));
        mappings.push(m);
    }
    let mut s = score_on(model, &[], vec![], hw);
    s.latency = layers
        .iter()
        .zip(&costs)
        .map(|(l, c)| l.count as f64 * c.0)
        .sum();
    s.energy = layers
        .iter()
        .zip(&costs)
        .map(|(l, c)| l.count as f64 * c.1)
        .sum();
    s.mappings = mappings;
    s.costs = costs;
    s.auto = true;
    Ok(s)
}
