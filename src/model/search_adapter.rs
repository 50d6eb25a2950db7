//! The model behind the search's traits: [`AnalyticalModel`] implements
//! [`crate::search::design::Exact`] with the exact evaluator, [`RelaxedModel`] implements
//! [`crate::search::dosa::Relaxation`] with compiled layers (cached per layer and loop orders) and
//! [`NetworkCost`] implements [`crate::search::dosa::DiffCost`].

use super::exact::{evaluate_layer, min_hardware, EvalOptions, ModelError};
use super::expr::Simplify;
use super::relaxed::{
    compile_layer, default_simplify, Bounds, CompiledLayer, CostOptions, LatencyCorrection,
    NetworkCost,
};
use crate::ir::{Arch, Dim, Hardware, HwBounds, Layer, Mapping, Objective, SuiteObjective};
use crate::search::design::Exact;
use crate::search::dosa::{DiffCost, Relaxation};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A finite stand-in for "does not run" so that no infinity reaches a report.
const HUGE: f64 = 1e300;

/// The exact evaluator as the search's integer-mapping model.
#[derive(Clone, Debug)]
pub struct AnalyticalModel {
    pub arch: Arch,
    pub options: EvalOptions,
    /// Mapping-only search: the hardware every design runs on.
    pub fixed: Option<Hardware>,
    /// Suite search: how the networks' totals combine.
    pub suite: Option<Arc<SuiteObjective>>,
}

impl AnalyticalModel {
    /// The analytical model (no Timeloop rounding) on `arch`.
    pub fn new(arch: &Arch) -> AnalyticalModel {
        AnalyticalModel {
            arch: arch.clone(),
            options: EvalOptions::analytical(arch),
            fixed: None,
            suite: None,
        }
    }

    /// The same model scoring a suite's networks by `suite`.
    pub fn with_suite(mut self, suite: Option<Arc<SuiteObjective>>) -> AnalyticalModel {
        self.suite = suite;
        self
    }

    /// The same model for a mapping-only search on `hw`.
    pub fn with_fixed(mut self, hw: Option<Hardware>) -> AnalyticalModel {
        self.fixed = hw;
        self
    }
}

impl Exact for AnalyticalModel {
    fn arch(&self) -> &Arch {
        &self.arch
    }

    /// The layer's own minimum hardware: its PE side, and per level the per-instance requirement
    /// times the instance count at that side. An illegal mapping gets a huge, finite hardware.
    fn min_hardware(&self, layer: &Layer, m: &Mapping) -> Hardware {
        match min_hardware(&self.arch, layer, m) {
            Ok(mh) => {
                let pe = mh.pe_dim as f64;
                Hardware {
                    pe_dim: pe,
                    usable_bytes: mh
                        .inst_bytes
                        .iter()
                        .zip(&self.arch.levels)
                        .map(|(b, l)| b.unwrap_or(0.0) * l.instance_count(pe))
                        .collect(),
                }
            }
            Err(_) => Hardware {
                pe_dim: HUGE,
                usable_bytes: vec![HUGE; self.arch.levels.len()],
            },
        }
    }

    fn cost(&self, layer: &Layer, m: &Mapping, hw: &Hardware) -> (f64, f64) {
        match evaluate_layer(&self.arch, layer, m, hw, &self.options) {
            Ok(e) => (e.cycles, e.energy_uj),
            Err(_) => (HUGE, HUGE),
        }
    }

    fn fixed(&self) -> Option<&Hardware> {
        self.fixed.as_ref()
    }

    fn suite(&self) -> Option<&Arc<SuiteObjective>> {
        self.suite.as_ref()
    }
}

/// A layer index and its loop orders.
type CacheKey = (usize, Vec<Vec<Dim>>);

/// Builds network costs for the search, compiling each (layer, loop orders) once.
pub struct RelaxedModel {
    arch: Arch,
    layers: Vec<Layer>,
    options: CostOptions,
    simplify: Simplify,
    correction: Option<Arc<dyn LatencyCorrection>>,
    cache: Mutex<HashMap<CacheKey, Arc<CompiledLayer>>>,
}

impl RelaxedModel {
    /// A relaxation of `layers` (network order, with their counts) for `objective` within `bounds`.
    pub fn new(
        arch: &Arch,
        layers: &[Layer],
        objective: Objective,
        bounds: &HwBounds,
    ) -> Result<RelaxedModel, ModelError> {
        super::exact::check_arch(arch)?;
        let mut options = CostOptions::new(objective);
        options.bounds = Bounds::from_hw_bounds(arch, bounds);
        Ok(RelaxedModel {
            arch: arch.clone(),
            layers: layers.to_vec(),
            options,
            simplify: default_simplify(),
            correction: None,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Price every cost on fixed hardware (a mapping-only search), or not.
    pub fn with_fixed(mut self, hw: Option<Hardware>) -> RelaxedModel {
        self.options.fixed = hw;
        self
    }

    /// The same relaxation minimising a suite's objective over its networks.
    pub fn with_suite(mut self, suite: Option<Arc<SuiteObjective>>) -> RelaxedModel {
        self.options.suite = suite;
        self
    }

    /// Change the cost options (smooth-max exponent, penalties, ...).
    pub fn with_options(mut self, options: CostOptions) -> RelaxedModel {
        self.options = options;
        self
    }

    /// Compile without egg (for comparisons) or with other egg limits.
    pub fn with_simplify(mut self, s: Simplify) -> RelaxedModel {
        self.simplify = s;
        self
    }

    /// Apply a learned latency correction in every cost this model builds.
    pub fn with_correction(mut self, c: Arc<dyn LatencyCorrection>) -> RelaxedModel {
        self.correction = Some(c);
        self
    }

    /// The compiled cost of layer `i` with `orders` (cached).
    pub fn compiled(&self, i: usize, orders: &[Vec<Dim>]) -> Arc<CompiledLayer> {
        let key = (i, orders.to_vec());
        if let Some(c) = self.cache.lock().expect("cache lock").get(&key) {
            return c.clone();
        }
        let c = Arc::new(
            compile_layer(&self.arch, &self.layers[i], orders, self.simplify)
                .expect("the architecture was checked in RelaxedModel::new"),
        );
        self.cache
            .lock()
            .expect("cache lock")
            .insert(key, c.clone());
        c
    }

    /// A network cost whose loop orders are those of `mappings` (one per layer, network order).
    pub fn network_cost(&self, mappings: &[Mapping]) -> NetworkCost {
        let layers = mappings
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let orders: Vec<Vec<Dim>> = m.levels.iter().map(|l| l.order.clone()).collect();
                (self.compiled(i, &orders), self.layers[i].count)
            })
            .collect();
        let mut nc = NetworkCost::new(&self.arch, layers, self.options.clone());
        nc.set_correction(self.correction.clone());
        nc
    }
}

impl DiffCost for NetworkCost {
    fn value_grad(&mut self, x: &[f64], grad: &mut [f64]) -> f64 {
        NetworkCost::value_grad(self, x, grad)
    }
}

impl Relaxation for RelaxedModel {
    fn build(&self, mappings: &[Mapping]) -> Box<dyn DiffCost + '_> {
        Box::new(self.network_cost(mappings))
    }
}
