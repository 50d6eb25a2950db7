//! The analytical latency (MODEL.md section 6) as the learned predictor sees it: four roofline
//! terms per mapping. A trait keeps the learner independent of how the cost model computes them.

use crate::ir::{Layer, Mapping};

/// Names of the roofline terms, in the order [`Roofline::terms`] returns them.
pub const TERM_NAMES: [&str; 4] = ["compute", "accumulator", "scratchpad", "dram"];

/// Source of the analytical roofline of one mapping on its minimum hardware.
pub trait Roofline: Sync {
    /// Cycles of each resource, `[compute, accumulator, scratchpad, dram]`; the analytical latency
    /// is their maximum. Every term must be positive and finite.
    fn terms(&self, layer: &Layer, mapping: &Mapping) -> Result<[f64; 4], String>;

    /// The analytical latency: the slowest resource.
    fn cycles(&self, layer: &Layer, mapping: &Mapping) -> Result<f64, String> {
        Ok(self.terms(layer, mapping)?.into_iter().fold(0.0, f64::max))
    }
}

/// Natural logs of the terms, floored at one cycle so a zero term cannot give `-inf`.
pub fn log_terms(terms: &[f64; 4]) -> [f64; 4] {
    terms.map(|t| t.max(1.0).ln())
}

/// The analytical model this build provides, if any. `None` until the cost model lands; the
/// `analytical` and `both` predictors are then unavailable and say so.
pub fn default_roofline() -> Option<Box<dyn Roofline>> {
    None
}
