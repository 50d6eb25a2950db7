//! Everything about Gemmini in one place: the machine a `.dosa` program gets by default, the
//! tiles its C library picks, the rules its C library imposes on a mapping, and the C program
//! that runs a mapping on it.
//!
//! Every stage that treats an architecture as Gemmini (check, eval, the search and its passes,
//! the baselines, the emitters) asks this module, so there is one rule set for one machine:
//! - [`arch`]: the built-in architecture (Gemmini as shipped) and its energies;
//! - [`tiler`]: Gemmini's own tilers (`tiled_conv_auto`, `tiled_matmul_auto`), its constants
//!   (`DIM`, banks, rows) and the bridge between its tiles and mappings;
//! - [`rules`]: what a mapping must satisfy for Gemmini's C library to run it;
//! - [`c`]: the bareMetalC program for `gemmini-rocc-tests`.

pub mod api;
pub mod arch;
pub mod c;
pub mod rules;
pub mod tiler;
