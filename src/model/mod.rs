//! Stage `model`: the analytical cost model of a mapping on an accelerator (MODEL.md sections 4-7),
//! exact and differentiable.
//!
//! - [`rules`]: the cost rules, written once over an [`algebra::Algebra`]: tiles, Timeloop-exact
//!   fills (its extrapolated trace and stride-change resets, see [`nest::Structure`]), access
//!   counts, minimum hardware, latency roofline, energy;
//! - [`exact`]: the exact evaluator of one integer mapping (`f64`), optionally with Timeloop's
//!   integer rounding ([`exact::EvalOptions::timeloop`]); minimum and network hardware;
//! - [`relaxed`]: the same rules traced ([`expr`]), simplified with egg, compiled to a [`tape`]
//!   per layer and loop order; the network cost with smooth-max hardware, penalties and a latency
//!   correction hook that the search descends;
//! - [`search_adapter`]: the search's `Exact`, `Relaxation` and `DiffCost` traits on this model;
//! - [`report`]: `evaluate_program` behind `dosa eval`;
//! - [`stats`]: error statistics (MAPE, percentiles, Spearman) shared with the learned predictor;
//! - [`timeloop`]: the reference data's CSV rows as IR values, for `dosa validate`.

pub mod algebra;
pub mod exact;
pub mod expr;
pub mod nest;
pub mod pieces;
pub mod relaxed;
pub mod report;
pub mod rules;
pub mod search_adapter;
pub mod stats;
pub mod tape;
pub mod timeloop;

pub use exact::{
    evaluate_layer, min_hardware, network_hardware, EvalOptions, LayerEval, MinHardware, ModelError,
};
pub use relaxed::{compile_layer, CompiledLayer, CostOptions, LatencyCorrection, NetworkCost};
pub use report::{evaluate_program, EvalReport};
