//! Stage `search`: the drivers (the one-loop search and the baselines) built on [`crate::passes`],
//! all scored by the same exact evaluator ([`design::score`]).

pub mod baseline;
pub mod bo;
pub mod design;
pub mod dosa;
pub mod floor;
pub mod learned;
pub mod output;
pub mod report;

use crate::ir::{Arch, Layer, SearchSpec};
pub use crate::model::search_adapter::{AnalyticalModel, RelaxedModel};
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
    /// On a Gemmini target both map onto [`crate::gemmini::rules::tile_arch`], so every mapping
    /// the search considers has Gemmini's single tile level.
    pub fn new(arch: &Arch, layers: &[Layer], spec: &SearchSpec) -> Result<Engine, String> {
        let arch = &crate::gemmini::rules::tile_arch(arch);
        // Unbounded searches explore the same PE range as the random baseline.
        let mut bounds = spec.bounds;
        bounds.pe_max = Some(bounds.pe_max.unwrap_or(baseline::PE_RANGE.1 as u64));
        let relax =
            RelaxedModel::new(arch, layers, spec.objective, &bounds).map_err(|e| e.to_string())?;
        match spec.predictor {
            crate::ir::Predictor::Analytical => Ok(Engine {
                exact: Box::new(AnalyticalModel::new(arch)),
                relax: Box::new(relax),
            }),
            crate::ir::Predictor::Both => {
                let model = std::sync::Arc::new(learned::load_model(spec.model.as_deref())?);
                model.get(crate::ir::Predictor::Both).ok_or_else(|| {
                    "the latency model has no `both` predictor; fit it with `dosa fit --predictor both`"
                        .to_string()
                })?;
                Ok(Engine {
                    exact: Box::new(learned::CorrectedExact {
                        inner: AnalyticalModel::new(arch),
                        model: model.clone(),
                        roof: crate::learn::analytical::ModelRoofline::gemmini(),
                    }),
                    relax: Box::new(learned::CorrectedRelaxation {
                        inner: relax,
                        model,
                        arch: arch.clone(),
                        layers: layers.to_vec(),
                    }),
                })
            }
            crate::ir::Predictor::Dnn => Err(
                "the search optimises `analytical` or `both` latency; `dnn` is for `dosa predict`"
                    .to_string(),
            ),
        }
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
