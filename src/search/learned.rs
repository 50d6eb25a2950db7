//! The learned RTL-latency correction inside the search (`--predictor both`): the analytical
//! latency of every layer is multiplied by `exp(correction)`, where the correction is the
//! learned MLP's output at the layer's relaxed log tile factors.
//!
//! Speed: the MLP is evaluated only on rounded designs. At every rounding each layer's
//! correction and its gradient are computed once at the rounded mapping; between roundings the
//! search uses that first-order expansion (`c0 + g0 . (x - x0)`, a dot product per layer and
//! step) instead of running the network at every relaxed point. Rounded designs are scored with
//! the network's value only (no gradient). The roofline-term inputs of the correction are those
//! of the rounded mapping, so the gradient flows through the tile-factor features only;
//! documented approximation: the analytical part of the latency still carries its exact
//! gradient.

use super::dosa::{DiffCost, Relaxation};
use crate::ir::{Arch, Layer, Mapping};
use crate::learn::analytical::{log_terms, Roofline};
use crate::learn::features::{log_factors, var_index, N_FACTOR_VARS, N_VARS};
use crate::learn::predictor::{LatencyModel, LearnInput};
use crate::model::relaxed::LatencyCorrection;
use crate::model::search_adapter::RelaxedModel;
use crate::passes::legal::free_slots;
use std::sync::Arc;

/// The correction may lower the analytical latency by at most ~18% (`exp(-0.2)`): the roofline
/// is a physical lower bound, and without this floor the search exploits the MLP where it
/// extrapolates (designs predicted faster than their compute bound).
pub const MIN_LOG_CORRECTION: f64 = -0.2;

/// A [`Relaxation`] whose costs carry the learned correction for the current mappings.
pub struct CorrectedRelaxation {
    pub inner: RelaxedModel,
    pub model: Arc<LatencyModel>,
    pub arch: Arch,
    pub layers: Vec<Layer>,
}

/// Largest log correction the search applies (a factor of about 150).
pub const MAX_LOG_CORRECTION: f64 = 5.0;

/// The correction of one layer, linearised at its rounded mapping.
struct Linear {
    /// Log factors of the rounded mapping, in the learner's layout.
    x0: [f64; N_FACTOR_VARS],
    /// Correction there and its gradient with respect to the log factors.
    c0: f64,
    g0: [f64; N_FACTOR_VARS],
}

/// The correction for one set of rounded mappings: per layer a first-order expansion (`None`:
/// the network could not score the layer, so it is left uncorrected).
struct Correction {
    lin: Vec<Option<Linear>>,
    /// Our variable `i` is the learner's factor `slot_map[i]` (None: the learner has no such slot).
    slot_map: Vec<Option<usize>>,
}

impl LatencyCorrection for Correction {
    fn apply(
        &self,
        layer: usize,
        x_layer: &[f64],
        analytical: f64,
        grad_x: &mut [f64],
    ) -> (f64, f64) {
        let Some(Some(lin)) = self.lin.get(layer) else {
            return (analytical, 1.0);
        };
        let mut c = lin.c0;
        for (i, s) in self.slot_map.iter().enumerate() {
            if let (Some(j), Some(&v)) = (s, x_layer.get(i)) {
                c += lin.g0[*j] * (v - lin.x0[*j]);
            }
        }
        if !c.is_finite() {
            return (analytical, 1.0);
        }
        // Outside the clamp the correction is flat: no gradient.
        let inside = (MIN_LOG_CORRECTION..=MAX_LOG_CORRECTION).contains(&c);
        let c = c.clamp(MIN_LOG_CORRECTION, MAX_LOG_CORRECTION);
        let k = c.exp();
        let corrected = analytical * k;
        for (i, s) in self.slot_map.iter().enumerate() {
            if let (Some(j), Some(gx)) = (s, grad_x.get_mut(i)) {
                *gx = if inside { corrected * lin.g0[*j] } else { 0.0 };
            }
        }
        (corrected, k)
    }
}

impl Relaxation for CorrectedRelaxation {
    fn build(&self, mappings: &[Mapping]) -> Box<dyn DiffCost + '_> {
        let roof = crate::learn::analytical::ModelRoofline::gemmini();
        let lin = self
            .layers
            .iter()
            .zip(mappings)
            .map(|(l, m)| {
                let x0 = log_factors(m);
                let inp = LearnInput {
                    layer: l,
                    mapping: m,
                    log_factors: &x0,
                    log_terms: Some(log_terms(&roof.terms(l, m).ok()?)),
                };
                let mut g = [0.0; N_VARS];
                let c0 = self.model.correction_and_grad(&inp, &mut g).ok()?;
                let mut g0 = [0.0; N_FACTOR_VARS];
                g0.copy_from_slice(&g[..N_FACTOR_VARS]);
                c0.is_finite().then_some(Linear { x0, c0, g0 })
            })
            .collect();
        let slot_map = free_slots(&self.arch)
            .into_iter()
            .map(|(li, d, spatial)| (li < 3).then(|| var_index(li, d, spatial)))
            .collect();
        let corr = Correction { lin, slot_map };
        let mut nc = self.inner.network_cost(mappings);
        nc.set_correction(Some(Arc::new(corr)));
        Box::new(nc)
    }
}

/// The exact evaluator with the learned correction on latency: how `--predictor both` scores
/// rounded designs, so the search keeps the design that is best on predicted RTL cycles.
pub struct CorrectedExact {
    pub inner: crate::model::search_adapter::AnalyticalModel,
    pub model: Arc<LatencyModel>,
    /// The roofline terms the learned model reads, built once (not per evaluation).
    pub roof: crate::learn::analytical::ModelRoofline,
    /// Clamped log corrections already computed, by layer shape and mapping (`None`: the
    /// network could not score it). A pure function of its key, so results do not depend on
    /// which thread filled it.
    pub cache: std::sync::Mutex<std::collections::HashMap<String, Option<f64>>>,
}

/// Entries the correction cache holds before it starts over (bounds memory).
const CACHE_ENTRIES: usize = 1 << 18;

impl super::design::Exact for CorrectedExact {
    fn arch(&self) -> &Arch {
        &self.inner.arch
    }
    fn min_hardware(&self, layer: &Layer, m: &Mapping) -> crate::ir::Hardware {
        self.inner.min_hardware(layer, m)
    }
    fn fixed(&self) -> Option<&crate::ir::Hardware> {
        self.inner.fixed.as_ref()
    }
    fn suite(&self) -> Option<&std::sync::Arc<crate::ir::SuiteObjective>> {
        self.inner.suite.as_ref()
    }
    fn cost(&self, layer: &Layer, m: &Mapping, hw: &crate::ir::Hardware) -> (f64, f64) {
        let (c, e) = self.inner.cost(layer, m, hw);
        // The polish and buffer passes score the same (layer, mapping) many times: the
        // correction is looked up by a text key before the roofline and the network run.
        let key = format!(
            "{:?} {} {} {} {}|{m}",
            layer.dims, layer.wstride, layer.hstride, layer.wdilation, layer.hdilation
        );
        let cached = self.cache.lock().ok().and_then(|c| c.get(&key).copied());
        let k = match cached {
            Some(k) => k,
            None => {
                let k = self
                    .roof
                    .terms(layer, m)
                    .ok()
                    .and_then(|t| {
                        self.model
                            .correction_value(layer, m, Some(&log_terms(&t)))
                            .ok()
                    })
                    .filter(|k| k.is_finite())
                    .map(|k| k.clamp(MIN_LOG_CORRECTION, MAX_LOG_CORRECTION));
                if let Ok(mut c) = self.cache.lock() {
                    if c.len() >= CACHE_ENTRIES {
                        c.clear();
                    }
                    c.insert(key, k);
                }
                k
            }
        };
        match k {
            Some(k) => (c * k.exp(), e),
            None => (c, e),
        }
    }
}

/// Find a latency model: the given path, else the shipped `models/gemmini-rtl.json` (in the
/// current folder or beside the crate).
pub fn load_model(path: Option<&str>) -> Result<LatencyModel, String> {
    if let Some(p) = path {
        return LatencyModel::load(std::path::Path::new(p));
    }
    let here = std::path::Path::new("models/gemmini-rtl.json");
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/gemmini-rtl.json");
    let p = if here.exists() {
        here.to_path_buf()
    } else {
        shipped
    };
    LatencyModel::load(&p)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Between roundings the correction is its first-order expansion: exact at the rounded
    /// point, moving with the stored gradient, flat (no gradient) where it is clamped.
    #[test]
    fn linear_correction_expands_at_the_rounded_point() {
        let mut g0 = [0.0; N_FACTOR_VARS];
        g0[3] = 0.5;
        g0[7] = -0.25;
        let mut x0 = [0.0; N_FACTOR_VARS];
        x0[3] = 1.0;
        x0[7] = 2.0;
        let corr = Correction {
            lin: vec![Some(Linear { x0, c0: 0.3, g0 }), None],
            // Our variable 0 is the learner's slot 3, variable 1 is slot 7, variable 2 unknown.
            slot_map: vec![Some(3), Some(7), None],
        };
        let mut g = [9.0; 3];
        let (c, k) = corr.apply(0, &[1.0, 2.0, 5.0], 100.0, &mut g);
        assert!((k - 0.3f64.exp()).abs() < 1e-12 && (c - 100.0 * k).abs() < 1e-9);
        assert!((g[0] - c * 0.5).abs() < 1e-9 && (g[1] + c * 0.25).abs() < 1e-9);
        assert_eq!(
            g[2], 9.0,
            "a variable the learner has no slot for is left alone"
        );
        let (_, k) = corr.apply(0, &[1.2, 2.0, 5.0], 100.0, &mut g);
        assert!((k.ln() - 0.4).abs() < 1e-12);
        // Far below the floor: clamped, no gradient.
        let (_, k) = corr.apply(0, &[-10.0, 2.0, 0.0], 100.0, &mut g);
        assert!((k.ln() - MIN_LOG_CORRECTION).abs() < 1e-12);
        assert_eq!((g[0], g[1]), (0.0, 0.0));
        // A layer the network could not score is uncorrected.
        assert_eq!(corr.apply(1, &[0.0; 3], 7.0, &mut g), (7.0, 1.0));
    }
}
