//! Stage `learn`: the learned RTL-latency predictor (MODEL.md section 9).
//!
//! Three latency predictors:
//! - `analytical`: the cost model's roofline (MODEL.md section 6), through [`Roofline`]
//!   ([`analytical::ModelRoofline`]: `crate::model`'s exact evaluator on the mapping's minimum
//!   hardware);
//! - `dnn`: an MLP ensemble from layer, mapping and derived-hardware features; it predicts the
//!   log residual over a mapping-only roofline proxy;
//! - `both`: the analytical latency times `exp(correction)`, the correction an MLP ensemble that
//!   also sees the four log roofline terms.
//!
//! Both are trained on random mappings (`gemmini_rtl_train.csv`) and, with
//! [`fit_searched`], on searched mappings (weighted), and scored where the search uses them:
//! on searched mappings of layers they never trained on, and on Gemmini's own tiles.
//!
//! Training ([`fit`]) is plain Rust on ndarray with hand-written backpropagation, deterministic
//! for a seed and independent of the thread count. Accuracy figures use `crate::model::stats`;
//! plots use `crate::emit::plot`.
//!
//! For the search: [`LatencyModel::correction_and_grad`] (the `both` correction) or
//! [`predictor::Learned::log_cycles_and_grad`] (`dnn`) take a [`LearnInput`] (layer, current
//! rounded mapping, relaxed log tile factors of L0..L2 laid out by [`var_index`], and the log
//! roofline terms) and return the value with its exact gradient: [`N_FACTOR_VARS`] entries for the
//! log factors, then [`N_TERMS`] for the log roofline terms (to chain through the cost model).

pub mod analytical;
pub mod data;
pub mod features;
pub mod mlp;
pub mod predictor;
pub mod train;

pub use analytical::Roofline;
pub use data::{load_csv, Sample};
pub use features::{log_factors, var_index, N_FACTOR_VARS, N_TERMS, N_VARS};
pub use predictor::{LatencyModel, LearnInput};
pub use train::{fit, fit_searched, FitOptions, Split};
