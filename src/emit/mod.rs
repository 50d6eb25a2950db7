//! Stage `emit`: see the crate documentation for where it sits in the pipeline.
//!
//! - [`gemmini_tiler`]: Gemmini's own tilers (the `gemmini-default` baseline) and their mappings;
//! - [`gemmini_c`]: a C program for `gemmini-rocc-tests/bareMetalC` running the mapped layers;
//! - [`timeloop`]: Timeloop v0.4 YAML to cross-check any result.

pub mod gemmini_tiler;
