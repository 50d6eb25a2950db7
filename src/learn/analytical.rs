//! The analytical latency (MODEL.md section 6) as the learned predictor sees it: four roofline
//! terms per mapping. A trait keeps the learner independent of how the cost model computes them.

use crate::ir::{gemmini_arch, Arch, Layer, Mapping};
use crate::model::{evaluate_layer, min_hardware, network_hardware, EvalOptions};

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

/// The cost model's exact analytical evaluator (`crate::model`) on the built-in Gemmini
/// template, each mapping on its own minimum hardware (MODEL.md section 4), without Timeloop's
/// integer rounding.
pub struct ModelRoofline {
    arch: Arch,
    opts: EvalOptions,
}

impl ModelRoofline {
    /// The Gemmini template of MODEL.md section 2.
    pub fn gemmini() -> ModelRoofline {
        let arch = gemmini_arch();
        let opts = EvalOptions::analytical(&arch);
        ModelRoofline { arch, opts }
    }
}

impl Roofline for ModelRoofline {
    fn terms(&self, layer: &Layer, mapping: &Mapping) -> Result<[f64; 4], String> {
        let mh = min_hardware(&self.arch, layer, mapping).map_err(|e| e.to_string())?;
        let hw = network_hardware(&self.arch, &[mh]);
        let ev = evaluate_layer(&self.arch, layer, mapping, &hw, &self.opts)
            .map_err(|e| e.to_string())?;
        let level = |l: usize| ev.levels.get(l).and_then(|x| x.cycles).unwrap_or(0.0);
        let t = [ev.compute_cycles, level(1), level(2), level(3)];
        if t.iter().any(|x| !x.is_finite() || *x < 0.0) || ev.levels.len() != 4 {
            return Err(format!("the analytical model gave unusable cycles {t:?}"));
        }
        Ok(t)
    }
}

/// The analytical model this build provides: the cost model on the Gemmini template.
pub fn default_roofline() -> Option<Box<dyn Roofline>> {
    Some(Box::new(ModelRoofline::gemmini()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::parse_compact;

    #[test]
    fn terms_max_is_the_models_latency() {
        let arch = gemmini_arch();
        let l = Layer::conv("c1", [7, 7, 112, 112, 3, 64, 1], 2, 2);
        let m =
            parse_compact("L3[WIO] K8 Q28 - L2[WI] N1 K4X - L1[O] K2 S7 R7 Q4 P7 C3X - L0[W] P16")
                .unwrap();
        let r = ModelRoofline::gemmini();
        let t = r.terms(&l, &m).unwrap();
        let hw = network_hardware(&arch, &[min_hardware(&arch, &l, &m).unwrap()]);
        let ev = evaluate_layer(&arch, &l, &m, &hw, &EvalOptions::analytical(&arch)).unwrap();
        assert_eq!(r.cycles(&l, &m).unwrap(), ev.cycles);
        // Compute: MACs / (3 * 4) on the 4x4 minimum array.
        assert!((t[0] - l.macs() / 12.0).abs() < 1e-6);
        let bad = parse_compact("L3[WIO] K8 - L2[WI] N1 K4X - L1[O] C3X - L0[W] P1").unwrap();
        assert!(r.terms(&l, &bad).is_err());
    }
}
