//! Stage `search`: the drivers (the one-loop search and the baselines) built on [`crate::passes`],
//! all scored by the same exact evaluator ([`design::score`]).

pub mod baseline;
pub mod design;
pub mod dosa;
pub mod output;
pub mod report;

use crate::ir::{Arch, Layer, SearchSpec};
use design::Exact;
use dosa::Relaxation;

/// The cost models one search run uses: the exact evaluator that scores designs and the
/// differentiable relaxation the optimiser descends.
pub struct Engine {
    exact: Box<dyn Exact>,
    relax: Box<dyn Relaxation>,
}

impl Engine {
    /// Build both models for `arch` and the spec's predictor.
    pub fn new(arch: &Arch, layers: &[Layer], spec: &SearchSpec) -> Result<Engine, String> {
        let _ = (layers, spec);
        crate::model::exact::check_arch(arch).map_err(|e| e.to_string())?;
        Err("the differentiable cost model is not available in this build".to_string())
    }
    /// The exact evaluator.
    pub fn exact(&self) -> &dyn Exact {
        self.exact.as_ref()
    }
    /// The differentiable relaxation.
    pub fn relaxation(&self) -> &dyn Relaxation {
        self.relax.as_ref()
    }
}

/// The analytical exact evaluator as the search's [`Exact`].
pub struct AnalyticalExact {
    arch: Arch,
    opts: crate::model::EvalOptions,
}

impl AnalyticalExact {
    /// The evaluator for `arch` (no Timeloop integer rounding: the model the search optimises).
    pub fn new(arch: &Arch) -> AnalyticalExact {
        AnalyticalExact {
            arch: arch.clone(),
            opts: crate::model::EvalOptions::analytical(arch),
        }
    }
}

impl Exact for AnalyticalExact {
    fn arch(&self) -> &Arch {
        &self.arch
    }
    fn min_hardware(&self, layer: &Layer, m: &crate::ir::Mapping) -> crate::ir::Hardware {
        match crate::model::min_hardware(&self.arch, layer, m) {
            Ok(mh) => crate::model::network_hardware(&self.arch, &[mh]),
            // Mappings reaching here are legal by construction; an illegal one needs "infinite" hardware.
            Err(_) => crate::ir::Hardware {
                pe_dim: f64::INFINITY,
                usable_bytes: vec![f64::INFINITY; self.arch.levels.len()],
            },
        }
    }
    fn cost(&self, layer: &Layer, m: &crate::ir::Mapping, hw: &crate::ir::Hardware) -> (f64, f64) {
        match crate::model::evaluate_layer(&self.arch, layer, m, hw, &self.opts) {
            Ok(e) => (e.cycles, e.energy_uj),
            Err(_) => (f64::INFINITY, f64::INFINITY),
        }
    }
}
