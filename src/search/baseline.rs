//! The baselines every search result is compared with, scored by the same evaluator.

use super::design::{named_levels, score, score_on, Exact, Scored};
use crate::emit::gemmini_tiler::{auto_tile, gemmini_params, hardware_pieces};
use crate::ir::{Arch, Hardware, HwBounds, Layer, Mapping, Objective};
use crate::passes::random::{random_mapping, shrink_until};
use crate::util::Rng;

/// Default hardware search ranges when no bound is given (usable sizes).
const PE_RANGE: (f64, f64) = (4.0, 64.0);
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

/// Whether `need` fits in `have` (every non-backing level and the PE array).
pub fn fits(arch: &Arch, need: &Hardware, have: &Hardware) -> bool {
    need.pe_dim <= have.pe_dim + 1e-9
        && need
            .usable_bytes
            .iter()
            .zip(&have.usable_bytes)
            .zip(&arch.levels)
            .all(|((n, h), l)| l.is_backing || *n <= *h + 1e-9)
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
    let mut rng = Rng::new(seed);
    let mut best: Option<Scored> = None;
    let mut curve = Vec::new();
    let mut evals = 0u64;
    for _ in 0..hw_samples {
        let hw = random_hardware(arch, bounds, &mut rng);
        let pe_max = hw.pe_dim as u64;
        let mut per_layer: Vec<Option<Best>> = vec![None; layers.len()];
        for _ in 0..map_samples {
            for (li, layer) in layers.iter().enumerate() {
                let mut m = random_mapping(arch, layer, pe_max, &mut rng);
                shrink_until(arch, &mut m, &mut rng, |m| {
                    fits(arch, &model.min_hardware(layer, m), &hw)
                });
                let c = model.cost(layer, &m, &hw);
                let v = match objective {
                    Objective::Edp => c.0 * c.1,
                    Objective::Energy => c.1,
                    Objective::Latency => c.0,
                };
                if per_layer[li].as_ref().is_none_or(|b| v < b.0) {
                    per_layer[li] = Some((v, m, c));
                }
            }
            evals += 1;
            // Network value on this hardware with the best mappings so far.
            let lat: f64 = layers
                .iter()
                .zip(&per_layer)
                .map(|(l, b)| l.count as f64 * b.as_ref().map_or(0.0, |b| b.2 .0))
                .sum();
            let en: f64 = layers
                .iter()
                .zip(&per_layer)
                .map(|(l, b)| l.count as f64 * b.as_ref().map_or(0.0, |b| b.2 .1))
                .sum();
            let v = match objective {
                Objective::Edp => lat * en,
                Objective::Energy => en,
                Objective::Latency => lat,
            };
            let prev = curve.last().map_or(f64::INFINITY, |c: &(u64, f64)| c.1);
            curve.push((evals, prev.min(v)));
        }
        let mappings: Vec<Mapping> = per_layer
            .into_iter()
            .map(|b| b.expect("map_samples >= 1").1)
            .collect();
        let s = score(model, layers, mappings);
        if best
            .as_ref()
            .is_none_or(|b| s.objective(objective) < b.objective(objective))
        {
            best = Some(s);
        }
    }
    let best = best.expect("hw_samples >= 1");
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
