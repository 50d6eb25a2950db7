//! The baselines every search result is compared with, scored by the same evaluator.

use super::design::{named_levels, score, score_on, Exact, Scored};
use crate::emit::gemmini_tiler::{auto_tile, gemmini_params, hardware_pieces};
use crate::ir::{Arch, Hardware, HwBounds, Layer, Mapping, Objective};
use crate::passes::random::{random_mapping, shrink_until};
use crate::util::Rng;
use rayon::prelude::*;

/// Default hardware search ranges when no bound is given (usable sizes); the one-loop search
/// uses the same PE limit so that both explore one space.
pub const PE_RANGE: (f64, f64) = (4.0, 128.0);
const SP_KIB_RANGE: (f64, f64) = (16.0, 2048.0);
const ACC_KIB_RANGE: (f64, f64) = (4.0, 512.0);

fn log_uniform(rng: &mut Rng, lo: f64, hi: f64) -> f64 {
    let hi = hi.max(lo);
    (lo.ln() + rng.next_f64() * (hi.ln() - lo.ln())).exp()
}

/// A random hardware configuration within the bounds (usable bytes per level).
pub fn random_hardware(arch: &Arch, bounds: &HwBounds, rng: &mut Rng) -> Hardware {
    let (sp, acc) = named_levels(arch);
    let pe_hi = bounds.pe_max.map_or(PE_RANGE.1, |m| m as f64);
    let pe = log_uniform(rng, PE_RANGE.0.min(pe_hi), pe_hi)
        .round()
        .max(arch.pe_min as f64);
    let half = |i: Option<usize>| {
        if i.is_some_and(|i| arch.levels[i].double_buffered) {
            0.5
        } else {
            1.0
        }
    };
    let sp_hi = bounds.sp_max_kib.map_or(SP_KIB_RANGE.1, |m| m * half(sp));
    let acc_hi = bounds
        .acc_max_kib
        .map_or(ACC_KIB_RANGE.1, |m| m * half(acc));
    let sp_kib = log_uniform(rng, SP_KIB_RANGE.0.min(sp_hi), sp_hi)
        .floor()
        .max(1.0);
    let acc_kib = log_uniform(rng, ACC_KIB_RANGE.0.min(acc_hi), acc_hi)
        .floor()
        .max(1.0);
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

/// Whether `need` fits in `have`: the PE array, and every non-backing level per instance (a
/// layer that needs a small array still needs its per-column buffer on the larger one).
pub fn fits(arch: &Arch, need: &Hardware, have: &Hardware) -> bool {
    need.pe_dim <= have.pe_dim + 1e-9
        && (0..arch.levels.len()).all(|i| {
            let (n, h) = (need.instance_bytes(arch, i), have.instance_bytes(arch, i));
            arch.levels[i].is_backing || n <= h * (1.0 + 1e-12) + 1e-9
        })
}

/// A layer's best sample on one hardware: (its objective, the mapping, `(cycles, uJ)`).
type Best = (f64, Mapping, (f64, f64));

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
) -> (Scored, u64, Vec<(u64, f64)>) {
    let arch = model.arch();
    // One hardware sample per task, each with its own seeded stream: the result does not
    // depend on the thread count.
    let per_hw: Vec<(Scored, Vec<f64>)> = (0..hw_samples.max(1))
        .into_par_iter()
        .map(|h| {
            let mut rng = Rng::new(seed).fork(h as u64);
            let hw = random_hardware(arch, bounds, &mut rng);
            let pe_max = hw.pe_dim as u64;
            let mut per_layer: Vec<Option<Best>> = vec![None; layers.len()];
            let mut values = Vec::with_capacity(map_samples as usize);
            for _ in 0..map_samples.max(1) {
                for (li, layer) in layers.iter().enumerate() {
                    let mut m = random_mapping(arch, layer, pe_max, &mut rng);
                    shrink_until(arch, &mut m, &mut rng, |m| {
                        fits(arch, &model.min_hardware(layer, m), &hw)
                    });
                    let c = model.cost(layer, &m, &hw);
                    let v = objective.of(c.0, c.1);
                    if per_layer[li].as_ref().is_none_or(|b| v < b.0) {
                        per_layer[li] = Some((v, m, c));
                    }
                }
                // Network value on this hardware with the best mappings so far.
                let (mut lat, mut en) = (0.0, 0.0);
                for (l, b) in layers.iter().zip(&per_layer) {
                    if let Some(b) = b {
                        lat += l.count as f64 * b.2 .0;
                        en += l.count as f64 * b.2 .1;
                    }
                }
                values.push(objective.of(lat, en));
            }
            let mappings: Vec<Mapping> = per_layer
                .into_iter()
                .map(|b| b.expect("at least one sample").1)
                .collect();
            (score(model, layers, mappings), values)
        })
        .collect();
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
    let best = best.expect("hw_samples >= 1");
    let evals = curve.len() as u64;
    // The final point is the best design as scored on its own derived hardware.
    let v = best.objective(objective);
    if let Some(last) = curve.last_mut() {
        last.1 = last.1.min(v);
    }
    (best, evals, curve)
}

/// Gemmini's shipped hardware and its own auto-tiler with its fixed loop order.
///
/// Tiles that do not divide a layer are evaluated as the hardware runs them: the layer is split
/// into full-tile and partial-tile pieces ([`hardware_pieces`]) whose costs add up. The mapping
/// reported per layer is the one of the first (full-tile) piece.
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
        let pieces =
            hardware_pieces(layer, &tiles, arch).map_err(|e| format!("{}: {e}", layer.name))?;
        let mut c = (0.0, 0.0);
        for p in &pieces {
            let pc = model.cost(&p.layer, &p.mapping, &hw);
            c.0 += pc.0;
            c.1 += pc.1;
        }
        mappings.push(pieces[0].mapping.clone());
        costs.push(c);
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
    Ok(s)
}
