//! Stage `search`: the drivers (the one-loop search and the baselines) built on [`crate::passes`],
//! all scored by the same exact evaluator ([`design::score`]).

pub mod baseline;
pub mod design;
pub mod dosa;
pub mod output;
pub mod report;
