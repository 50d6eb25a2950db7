//! The learned RTL-latency correction inside the search (`--predictor both`): the analytical
//! latency of every layer is multiplied by `exp(correction)`, where the correction is the
//! learned MLP's output at the layer's relaxed log tile factors.
//!
//! The MLP also reads the analytical roofline terms; inside one rounding interval those are held
//! at the values of the last rounded mapping (recomputed at every rounding), so the gradient
//! flows through the tile-factor features only. Documented approximation: the analytical part of
//! the latency still carries its exact gradient.

use super::dosa::{DiffCost, Relaxation};
use crate::ir::{Arch, Layer, Mapping};
use crate::learn::analytical::{log_terms, Roofline};
use crate::learn::features::{var_index, N_FACTOR_VARS, N_VARS};
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

/// The correction for one set of rounded mappings.
struct Correction {
    model: Arc<LatencyModel>,
    layers: Vec<Layer>,
    mappings: Vec<Mapping>,
    terms: Vec<Option<[f64; 4]>>,
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
        let mut lf = [0.0; N_FACTOR_VARS];
        for (i, s) in self.slot_map.iter().enumerate() {
            if let (Some(j), Some(&v)) = (s, x_layer.get(i)) {
                lf[*j] = v;
            }
        }
        let inp = LearnInput {
            layer: &self.layers[layer],
            mapping: &self.mappings[layer],
            log_factors: &lf,
            log_terms: self.terms[layer],
        };
        let mut g = [0.0; N_VARS];
        let c = match self.model.correction_and_grad(&inp, &mut g) {
            Ok(c) if c.is_finite() => c.clamp(MIN_LOG_CORRECTION, 5.0),
            _ => return (analytical, 1.0),
        };
        let k = c.exp();
        let corrected = analytical * k;
        for (i, s) in self.slot_map.iter().enumerate() {
            if let (Some(j), Some(gx)) = (s, grad_x.get_mut(i)) {
                *gx = corrected * g[*j];
            }
        }
        (corrected, k)
    }
}

impl Relaxation for CorrectedRelaxation {
    fn build(&self, mappings: &[Mapping]) -> Box<dyn DiffCost + '_> {
        let roof = crate::learn::analytical::ModelRoofline::gemmini();
        let terms = self
            .layers
            .iter()
            .zip(mappings)
            .map(|(l, m)| roof.terms(l, m).ok().map(|t| log_terms(&t)))
            .collect();
        let slot_map = free_slots(&self.arch)
            .into_iter()
            .map(|(li, d, spatial)| (li < 3).then(|| var_index(li, d, spatial)))
            .collect();
        let corr = Correction {
            model: self.model.clone(),
            layers: self.layers.clone(),
            mappings: mappings.to_vec(),
            terms,
            slot_map,
        };
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
}

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
    fn cost(&self, layer: &Layer, m: &Mapping, hw: &crate::ir::Hardware) -> (f64, f64) {
        let (c, e) = self.inner.cost(layer, m, hw);
        let roof = &self.roof;
        let lf = crate::learn::features::log_factors(m);
        let inp = LearnInput {
            layer,
            mapping: m,
            log_factors: &lf,
            log_terms: roof.terms(layer, m).ok().map(|t| log_terms(&t)),
        };
        let mut g = [0.0; N_VARS];
        match self.model.correction_and_grad(&inp, &mut g) {
            Ok(k) if k.is_finite() => (c * k.clamp(MIN_LOG_CORRECTION, 5.0).exp(), e),
            _ => (c, e),
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
