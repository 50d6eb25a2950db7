//! Stage `learn`: the learned RTL-latency predictor (MODEL.md section 9).
//!
//! Three latency predictors:
//! - `analytical`: the cost model's roofline (MODEL.md section 6), through [`Roofline`];
//! - `dnn`: an MLP ensemble from layer, mapping and derived-hardware features, predicting log
//!   cycles;
//! - `both`: the analytical latency times `exp(correction)`, the correction an MLP ensemble
//!   that also sees the roofline terms.
//!
//! Training ([`fit`]) is plain Rust on ndarray, deterministic for a seed. A search calls
//! [`LatencyModel::correction_and_grad`] (or [`predictor::Learned::log_cycles_and_grad`] for `dnn`) with a
//! [`LearnInput`] holding the relaxed log tile factors, and gets the gradient with respect to
//! them, exact through the features.

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
pub use train::{fit, FitOptions, Split};
