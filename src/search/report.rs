//! The result of any search method, in one shape: what `dosa search` and `dosa baseline` print
//! and write as `report.json`, so every method is compared on equal terms.

use serde::Serialize;

/// Derived hardware as reported: physical sizes to build, and the usable (tile) budget.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HardwareReport {
    pub pe_dim: u64,
    /// Physical scratchpad KiB (twice the usable budget when double-buffered).
    pub scratchpad_kib: f64,
    /// Physical accumulator KiB, summed over the per-column instances.
    pub accumulator_kib: f64,
    /// What a tile may use (Gemmini's C library double-buffers).
    pub scratchpad_usable_kib: f64,
    pub accumulator_usable_kib: f64,
}

/// Count-weighted network totals.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NetworkReport {
    pub latency_cycles: f64,
    pub energy_uj: f64,
    /// cycles x uJ.
    pub edp: f64,
}

/// One layer's chosen mapping and its cost on the derived hardware (one instance of the layer).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerReport {
    pub name: String,
    pub count: u64,
    pub mapping: String,
    pub latency_cycles: f64,
    pub energy_uj: f64,
}

/// A strict lower bound on network EDP under the cost model.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FloorReport {
    pub edp: f64,
}

/// What `search --compare --json` prints and writes as `compare.json`: every method's full
/// report and the floor, in one document.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Comparison<'a> {
    pub methods: Vec<&'a Report>,
    pub floor: FloorReport,
}

/// A method's result. `seconds` is the only field that varies between runs with the same seed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub method: String,
    pub objective: String,
    pub seed: u64,
    pub evaluations: u64,
    pub seconds: f64,
    pub hardware: HardwareReport,
    pub network: NetworkReport,
    pub layers: Vec<LayerReport>,
    /// The EDP floor for the same network and bounds ([`super::floor`]): how far the design is
    /// from the limit, read from one run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub floor: Option<FloorReport>,
    /// Best objective value seen so far against cost-model evaluations (for the curve plot).
    #[serde(skip)]
    pub curve: Vec<(u64, f64)>,
}
