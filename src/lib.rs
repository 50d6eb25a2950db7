//! `dosa`: mapping-first design of DNN accelerators.
//!
//! The crate is laid out as a compiler pipeline, one module per stage:
//! - [`syntax`]: the `.dosa` language (logos lexer, lalrpop parser, codespan diagnostics, formatter);
//! - [`ir`]: typed architecture, network, mapping and search structs every later stage consumes;
//! - [`model`]: the differentiable analytical cost model (latency, energy, EDP, minimum hardware);
//! - [`passes`]: the pass pipeline of the one-loop search (relax, optimise, round, order, derive);
//! - [`search`]: the drivers (`search`, baselines) built on the passes;
//! - [`learn`]: the learned RTL-latency predictor;
//! - [`gemmini`]: Gemmini itself: the built-in machine, its tilers, its rules, its C emitter;
//! - [`emit`]: Timeloop YAML, reports and plots (and the shared file writer);
//! - [`cli`]: the `dosa` command line.

pub mod cli;
pub mod emit;
pub mod gemmini;
pub mod ir;
pub mod learn;
pub mod model;
pub mod passes;
pub mod search;
pub mod syntax;
pub mod util;
