//! Stage `search`: the drivers (the one-loop search and the baselines) built on [`crate::passes`],
//! all scored by the same exact evaluator ([`design::score`]).

pub mod baseline;
pub mod bo;
pub mod design;
pub mod dosa;
pub mod fixed;
pub mod floor;
pub mod learned;
pub mod output;
pub mod report;
pub mod suite;

use crate::ir::{Arch, Layer, SearchSpec};
pub use crate::model::search_adapter::{AnalyticalModel, RelaxedModel};
use design::Exact;
use dosa::Relaxation;

/// The cost models one search run uses: the exact evaluator that scores designs and the
/// differentiable relaxation the optimiser descends.
pub struct Engine {
    exact: Box<dyn Exact>,
    relax: Box<dyn Relaxation>,
    spec: SearchSpec,
}

/// The search settings in force and, for a mapping-only search, the hardware it maps onto:
/// `hardware fixed` (or a program whose own `arch` fixes every size, see the language) takes the
/// architecture's array and buffers as the hardware and its physical sizes as the bounds.
pub fn mapping_target(
    arch: &Arch,
    spec: &SearchSpec,
) -> Result<(SearchSpec, Option<crate::ir::Hardware>), String> {
    if spec.hardware != Some(crate::ir::HardwareMode::Fixed) {
        return Ok((spec.clone(), None));
    }
    let hw = design::fixed_hardware(arch).ok_or_else(|| {
        format!(
            "`hardware fixed` needs an architecture that fixes the PE array and every buffer; \
             `{}` leaves some size to the search (use `hardware free` to design it)",
            arch.name
        )
    })?;
    // Bounds are for designing hardware; the fixed sizes replace them.
    let mut s = spec.clone();
    s.bounds = design::bounds_of(arch, &hw);
    Ok((s, Some(hw)))
}

/// The architecture a search maps onto: `arch` under the spec's mapspace, and on a Gemmini
/// target (Gemmini's mapspace) [`crate::gemmini::rules::tile_arch`], so that every mapping the
/// search considers has Gemmini's single tile level. Costs are those of `arch`.
pub fn search_arch(arch: &Arch, spec: &SearchSpec) -> Arch {
    let mut a = arch.clone();
    a.mapspace = spec.mapspace;
    crate::gemmini::rules::tile_arch(&a)
}

impl Engine {
    /// Build both models for `arch` and the spec's predictor.
    /// Both map onto [`search_arch`]; for a mapping-only search
    /// ([`mapping_target`]) both price every cost on the fixed hardware. Run the search with
    /// [`Engine::spec`], which holds the bounds of the fixed hardware.
    pub fn new(arch: &Arch, layers: &[Layer], spec: &SearchSpec) -> Result<Engine, String> {
        Engine::new_suite(arch, layers, spec, None)
    }

    /// [`Engine::new`] for a suite: `layers` is the union of the networks' layers and `suite`
    /// says how their totals combine (`None`: as one network).
    pub fn new_suite(
        arch: &Arch,
        layers: &[Layer],
        spec: &SearchSpec,
        suite: Option<std::sync::Arc<crate::ir::SuiteObjective>>,
    ) -> Result<Engine, String> {
        let (spec, fixed) = mapping_target(arch, spec)?;
        let arch = &search_arch(arch, &spec);
        // Unbounded searches explore the same PE range as the random baseline.
        let mut bounds = spec.bounds;
        bounds.pe_max = Some(bounds.pe_max.unwrap_or(baseline::PE_RANGE.1 as u64));
        let relax = RelaxedModel::new(arch, layers, spec.objective, &bounds)
            .map_err(|e| e.to_string())?
            .with_fixed(fixed.clone())
            .with_suite(suite.clone());
        let exact = AnalyticalModel::new(arch)
            .with_fixed(fixed)
            .with_suite(suite);
        match spec.predictor {
            crate::ir::Predictor::Analytical => Ok(Engine {
                exact: Box::new(exact),
                relax: Box::new(relax),
                spec,
            }),
            crate::ir::Predictor::Both => {
                let model = std::sync::Arc::new(learned::load_model(spec.model.as_deref())?);
                model.get(crate::ir::Predictor::Both).ok_or_else(|| {
                    "the latency model has no `both` predictor; fit it with `dosa fit --predictor both`"
                        .to_string()
                })?;
                Ok(Engine {
                    exact: Box::new(learned::CorrectedExact {
                        inner: exact,
                        model: model.clone(),
                        roof: crate::learn::analytical::ModelRoofline::gemmini(),
                        cache: Default::default(),
                    }),
                    relax: Box::new(learned::CorrectedRelaxation {
                        inner: relax,
                        model,
                        arch: arch.clone(),
                        layers: layers.to_vec(),
                    }),
                    spec,
                })
            }
            crate::ir::Predictor::Dnn => Err(
                "the search optimises `analytical` or `both` latency; `dnn` is for `dosa predict`"
                    .to_string(),
            ),
        }
    }
    /// The settings the search runs with (bounds of the fixed hardware in a mapping-only search).
    pub fn spec(&self) -> &SearchSpec {
        &self.spec
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
