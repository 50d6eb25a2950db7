//! Stage `model`: the analytical cost model of a mapping on an accelerator (MODEL.md sections 4-7).
//!
//! - [`rules`]: the cost rules, written once over an [`algebra::Algebra`] (tiles, Timeloop-exact
//!   fills, access counts, hardware requirements, latency roofline, energy);
//! - [`exact`]: the exact evaluator of one integer mapping (`f64`), optionally with Timeloop's
//!   integer rounding;
//! - [`stats`]: error statistics (MAPE, percentiles, Spearman) shared with the learned predictor;
//! - [`timeloop`]: the reference data's CSV rows as IR values, for `dosa validate`.

pub mod algebra;
pub mod exact;
pub mod nest;
pub mod rules;
pub mod stats;
pub mod timeloop;

pub use exact::{
    evaluate_layer, min_hardware, network_hardware, EvalOptions, LayerEval, MinHardware, ModelError,
};
