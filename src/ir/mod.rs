//! The typed intermediate representation every pass consumes.
//!
//! Free of syntax: no spans, no source text. The `.dosa` front end lowers into these structs,
//! the CSV importers build them directly, and the model, search and emitters read them.

mod mapping;
mod suite;

/// The built-in architecture lives with the rest of Gemmini in [`crate::gemmini`].
pub use crate::gemmini::arch::{gemmini_arch, GEMMINI_MAC_PJ};
pub use mapping::{parse_compact, LevelMapping, Mapping, MappingParseError};
pub use suite::SuiteObjective;

use serde::{Deserialize, Serialize};
use std::fmt;

/// The seven loop dimensions of a layer, in the canonical order of MODEL.md section 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Dim {
    R,
    S,
    P,
    Q,
    C,
    K,
    N,
}

impl Dim {
    /// All dims in canonical order; index with `Dim as usize`.
    pub const ALL: [Dim; 7] = [Dim::R, Dim::S, Dim::P, Dim::Q, Dim::C, Dim::K, Dim::N];

    /// Canonical position, so per-dim data can live in `[T; 7]`.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The one-letter name used by the compact mapping form and by `.dosa` files.
    pub fn letter(self) -> char {
        match self {
            Dim::R => 'R',
            Dim::S => 'S',
            Dim::P => 'P',
            Dim::Q => 'Q',
            Dim::C => 'C',
            Dim::K => 'K',
            Dim::N => 'N',
        }
    }

    /// Inverse of [`Dim::letter`]; accepts either case since users type both.
    pub fn from_letter(c: char) -> Option<Dim> {
        Some(match c.to_ascii_uppercase() {
            'R' => Dim::R,
            'S' => Dim::S,
            'P' => Dim::P,
            'Q' => Dim::Q,
            'C' => Dim::C,
            'K' => Dim::K,
            'N' => Dim::N,
            _ => return None,
        })
    }

    /// Whether this dim indexes tensor `t` (the sliding window makes P,Q,R,S all index inputs).
    pub fn indexes(self, t: Tensor) -> bool {
        use Dim::*;
        match t {
            Tensor::W => matches!(self, R | S | C | K),
            Tensor::I => matches!(self, R | S | P | Q | C | N),
            Tensor::O => matches!(self, P | Q | K | N),
        }
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.letter())
    }
}

/// The three tensors of a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Tensor {
    W,
    I,
    O,
}

impl Tensor {
    /// All tensors; index with `Tensor as usize`.
    pub const ALL: [Tensor; 3] = [Tensor::W, Tensor::I, Tensor::O];

    /// Position in `[T; 3]` tables.
    pub fn index(self) -> usize {
        self as usize
    }

    /// One-letter name as in `L2[WI]`.
    pub fn letter(self) -> char {
        match self {
            Tensor::W => 'W',
            Tensor::I => 'I',
            Tensor::O => 'O',
        }
    }

    /// Inverse of [`Tensor::letter`].
    pub fn from_letter(c: char) -> Option<Tensor> {
        match c.to_ascii_uppercase() {
            'W' => Some(Tensor::W),
            'I' => Some(Tensor::I),
            'O' => Some(Tensor::O),
            _ => None,
        }
    }
}

/// Which tensors a storage level keeps, as a small set (`[W, I, O]` flags).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TensorSet(pub [bool; 3]);

impl TensorSet {
    /// Membership test.
    pub fn contains(self, t: Tensor) -> bool {
        self.0[t.index()]
    }
    /// Builder used by lowering and tests.
    pub fn with(mut self, t: Tensor) -> Self {
        self.0[t.index()] = true;
        self
    }
    /// A level that keeps nothing is a spec error, so callers check this.
    pub fn is_empty(self) -> bool {
        !self.0.iter().any(|&b| b)
    }
    /// The kept tensors in W, I, O order.
    pub fn iter(self) -> impl Iterator<Item = Tensor> {
        Tensor::ALL.into_iter().filter(move |t| self.contains(*t))
    }
    /// `WIO`-style string as in the compact mapping form.
    pub fn letters(self) -> String {
        self.iter().map(Tensor::letter).collect()
    }
}

/// Whether a layer came from a convolution or a matrix multiply (emitters call different APIs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LayerKind {
    Conv,
    Matmul,
}

/// One distinct layer of a network: the 7-deep loop nest plus strides, dilations and repeat count.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Layer {
    pub name: String,
    pub kind: LayerKind,
    /// Sizes in canonical order R S P Q C K N.
    pub dims: [u64; 7],
    pub wstride: u64,
    pub hstride: u64,
    pub wdilation: u64,
    pub hdilation: u64,
    /// How many times the layer occurs in its network.
    pub count: u64,
}

impl Layer {
    /// A convolution with unit dilation; dims in R S P Q C K N order.
    pub fn conv(name: &str, dims: [u64; 7], wstride: u64, hstride: u64) -> Layer {
        Layer {
            name: name.to_string(),
            kind: LayerKind::Conv,
            dims,
            wstride,
            hstride,
            wdilation: 1,
            hdilation: 1,
            count: 1,
        }
    }

    /// `A[M,Kred] x B[Kred,Ncols]` as the layer `P=M, C=Kred, K=Ncols` (MODEL.md section 1).
    pub fn matmul(name: &str, m: u64, kred: u64, ncols: u64) -> Layer {
        Layer {
            name: name.to_string(),
            kind: LayerKind::Matmul,
            dims: [1, 1, m, 1, kred, ncols, 1],
            wstride: 1,
            hstride: 1,
            wdilation: 1,
            hdilation: 1,
            count: 1,
        }
    }

    /// Size of one dim.
    pub fn dim(&self, d: Dim) -> u64 {
        self.dims[d.index()]
    }

    /// Multiply-accumulates of one instance of the layer.
    pub fn macs(&self) -> f64 {
        self.dims.iter().map(|&d| d as f64).product()
    }

    /// Tensor size in words (inputs include the sliding-window halo).
    pub fn tensor_words(&self, t: Tensor) -> f64 {
        let [r, s, p, q, c, k, n] = self.dims.map(|d| d as f64);
        match t {
            Tensor::W => r * s * c * k,
            Tensor::O => n * k * p * q,
            Tensor::I => {
                let w = (p - 1.0) * self.wstride as f64 + (r - 1.0) * self.wdilation as f64 + 1.0;
                let h = (q - 1.0) * self.hstride as f64 + (s - 1.0) * self.hdilation as f64 + 1.0;
                n * c * w * h
            }
        }
    }
}

/// A named network: its distinct layers, each with a repeat count.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Network {
    pub name: String,
    pub layers: Vec<Layer>,
}

/// A size or count that is pinned, bounded above, or left to the search.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Bound {
    Fixed(u64),
    AtMost(u64),
    Free,
}

impl Bound {
    /// The largest value allowed, if any.
    pub fn max(self) -> Option<u64> {
        match self {
            Bound::Fixed(v) | Bound::AtMost(v) => Some(v),
            Bound::Free => None,
        }
    }
}

/// How many physical copies of a storage level exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Instances {
    /// One per PE: `pe_dim^2` (Gemmini's weight registers).
    PerPe,
    /// One per PE column: `pe_dim` (Gemmini's accumulator).
    PerColumn,
    /// A single shared instance (scratchpad, DRAM).
    Single,
}

/// Words per cycle a level can serve; `None` in a level means unlimited (not a bottleneck).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Bandwidth {
    /// A fixed number of words per cycle (DRAM: 8).
    Words(f64),
    /// `coef * pe_dim` words per cycle (Gemmini scratchpad: 2 * pe_dim).
    PerPeDim(f64),
    /// `coef * spatial factor of dim` words per cycle (Gemmini accumulator: 2 * spatial K).
    PerSpatial(f64, Dim),
}

/// Energy of one word access at a level, in pJ.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum AccessEnergy {
    /// A constant (DRAM: 100 pJ per 8-bit word).
    Const(f64),
    /// `base + per_kib * KiB of one instance` (Timeloop's SRAM formula is of this form).
    Linear { base: f64, per_kib: f64 },
}

impl AccessEnergy {
    /// Timeloop's built-in SRAM formula: `(1 + (5/99.5) * (KiB - 0.5)) * word_bits / 16` pJ.
    pub fn timeloop_sram(word_bits: u32) -> AccessEnergy {
        let scale = word_bits as f64 / 16.0;
        let slope = 5.0 / 99.5;
        AccessEnergy::Linear {
            base: (1.0 - slope * 0.5) * scale,
            per_kib: slope * scale,
        }
    }
    /// Timeloop's DRAM energy: `200 * word_bits / 16` pJ per word.
    pub fn timeloop_dram(word_bits: u32) -> AccessEnergy {
        AccessEnergy::Const(200.0 * word_bits as f64 / 16.0)
    }
    /// pJ per access for an instance of `instance_kib` KiB.
    pub fn at(self, instance_kib: f64) -> f64 {
        match self {
            AccessEnergy::Const(c) => c,
            AccessEnergy::Linear { base, per_kib } => base + per_kib * instance_kib,
        }
    }
}

/// A dim that may be spread spatially at a level, with the most it may be spread over.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpatialDim {
    pub dim: Dim,
    /// `None`: bounded only by the PE array dimension.
    pub max: Option<u64>,
}

/// One storage level of the architecture.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Level {
    pub name: String,
    pub keeps: TensorSet,
    pub word_bits: u32,
    /// Physical capacity in bytes of ONE instance; `Free` means derived by the search.
    pub capacity: Bound,
    /// Gemmini's C library double-buffers: a tile may use only half of the physical capacity.
    pub double_buffered: bool,
    pub instances: Instances,
    /// `None`: unlimited (not part of the roofline).
    pub bandwidth: Option<Bandwidth>,
    pub energy: AccessEnergy,
    /// Dims that may be spatial (parallel) at this level.
    pub spatial: Vec<SpatialDim>,
    /// Dims whose temporal factor may differ from 1 here; `None` means all.
    pub temporal: Option<Vec<Dim>>,
    /// The outermost level (DRAM) holds whole tensors and takes whatever factors remain.
    pub is_backing: bool,
}

impl Level {
    /// Whether a temporal factor of `d` may differ from 1 at this level.
    pub fn allows_temporal(&self, d: Dim) -> bool {
        self.temporal.as_ref().is_none_or(|ds| ds.contains(&d))
    }
    /// Whether `d` may be spatial at this level.
    pub fn allows_spatial(&self, d: Dim) -> bool {
        self.spatial.iter().any(|s| s.dim == d)
    }
    /// Number of instances for a given PE array dimension.
    pub fn instance_count(&self, pe_dim: f64) -> f64 {
        match self.instances {
            Instances::PerPe => pe_dim * pe_dim,
            Instances::PerColumn => pe_dim,
            Instances::Single => 1.0,
        }
    }
}

/// An accelerator template: a square PE array under a hierarchy of storage levels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Arch {
    pub name: String,
    /// Side of the square PE array.
    pub pe_dim: Bound,
    /// Smallest array side the derivation may return (Gemmini: 2).
    pub pe_min: u64,
    /// Storage levels, innermost (registers) first, backing store (DRAM) last.
    pub levels: Vec<Level>,
    pub mac_energy_pj: f64,
    /// Whose rules a mapping must obey here; set by the search from [`SearchSpec::mapspace`],
    /// never written in a file (an `arch` describes hardware, not the software that runs on it).
    #[serde(default, skip_serializing_if = "Mapspace::is_gemmini")]
    pub mapspace: Mapspace,
}

impl Arch {
    /// Index of the first level that keeps `t`, counting from the innermost.
    pub fn innermost_keeper(&self, t: Tensor) -> Option<usize> {
        self.levels.iter().position(|l| l.keeps.contains(t))
    }
}

/// Concrete hardware sizes: what the search derives and what an evaluation assumes.
///
/// Capacities are what a tile may use (Gemmini: half the physical buffer when double-buffered);
/// [`Hardware::physical_bytes`] gives the buffer to build.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hardware {
    pub pe_dim: f64,
    /// Usable bytes per level (summed over instances), innermost first. The backing level's is ignored.
    pub usable_bytes: Vec<f64>,
}

impl Hardware {
    /// Usable bytes of one instance of level `i` (per-column and per-PE buffers divide by the
    /// array): what must be compared when two designs have different arrays.
    pub fn instance_bytes(&self, arch: &Arch, i: usize) -> f64 {
        self.usable_bytes[i] / arch.levels[i].instance_count(self.pe_dim).max(1.0)
    }

    /// Physical bytes of level `i` in `arch` (twice the usable size when double-buffered).
    pub fn physical_bytes(&self, arch: &Arch, i: usize) -> f64 {
        let f = if arch.levels[i].double_buffered {
            2.0
        } else {
            1.0
        };
        self.usable_bytes[i] * f
    }
}

/// What the search minimises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Objective {
    Edp,
    Energy,
    Latency,
}

impl Objective {
    /// The value minimised for a design of `latency` cycles and `energy` uJ.
    pub fn of(self, latency: f64, energy: f64) -> f64 {
        match self {
            Objective::Edp => latency * energy,
            Objective::Energy => energy,
            Objective::Latency => latency,
        }
    }

    /// Name as written in `.dosa` files, reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Objective::Edp => "edp",
            Objective::Energy => "energy",
            Objective::Latency => "latency",
        }
    }
}

/// Which latency model the search and reports use (MODEL.md section 9).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Predictor {
    Analytical,
    Dnn,
    Both,
}

impl Predictor {
    /// Name as written in `.dosa` files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Predictor::Analytical => "analytical",
            Predictor::Dnn => "dnn",
            Predictor::Both => "both",
        }
    }
}

/// Upper bounds on derived hardware the search must respect.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HwBounds {
    pub pe_max: Option<u64>,
    /// Physical scratchpad KiB (Gemmini's shipped: 256).
    pub sp_max_kib: Option<f64>,
    /// Physical accumulator KiB (Gemmini's shipped: 64).
    pub acc_max_kib: Option<f64>,
}

/// Search settings; the command line overrides what a file says.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchSpec {
    pub objective: Objective,
    pub starts: u32,
    pub steps: u32,
    pub round_every: u32,
    pub lr: f64,
    pub seed: u64,
    pub bounds: HwBounds,
    pub predictor: Predictor,
    /// Path of a trained latency model (for `dnn` / `both`).
    pub model: Option<String>,
    /// Design the hardware too, or map onto the architecture's fixed sizes; `None`: fixed when
    /// the program's own `arch` fixes the array and every buffer, free otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware: Option<HardwareMode>,
    /// Which mappings the search may return (see [`Mapspace`]).
    #[serde(default, skip_serializing_if = "Mapspace::is_gemmini")]
    pub mapspace: Mapspace,
}

/// The space of mappings a search explores. On a Gemmini-shaped architecture the default keeps
/// to what Gemmini's C library runs (one tile level, split reductions innermost, tiles counted in
/// Gemmini's rows: [`crate::gemmini::rules`]); `free` drops those rules and keeps only the
/// model's own (every level's capacity, spatial limits), which is Timeloop's mapspace: for
/// comparing with Timeloop's mapper or designing for other software. `emit gemmini` refuses
/// what Gemmini cannot run. Other architectures have no software rules, so both are the same.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mapspace {
    /// What the target's software runs (Gemmini's C library on a Gemmini-shaped architecture).
    #[default]
    Gemmini,
    /// Whatever the cost model accepts.
    Free,
}

impl Mapspace {
    /// Name as written in `.dosa` files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Mapspace::Gemmini => "gemmini",
            Mapspace::Free => "free",
        }
    }
    /// The default, which files and reports leave out.
    pub fn is_gemmini(&self) -> bool {
        *self == Mapspace::Gemmini
    }
}

/// Whether `search` designs hardware along with the mappings or maps onto a chip that exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HardwareMode {
    /// Co-design: derive the array and buffers the mappings need (within the bounds).
    Free,
    /// Mapping only: the architecture's array and buffer sizes are the hardware.
    Fixed,
}

impl HardwareMode {
    /// Name as written in `.dosa` files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            HardwareMode::Free => "free",
            HardwareMode::Fixed => "fixed",
        }
    }
}

impl Default for SearchSpec {
    fn default() -> Self {
        SearchSpec {
            objective: Objective::Edp,
            starts: 7,
            steps: 1500,
            round_every: 500,
            lr: 0.05,
            seed: 0,
            bounds: HwBounds::default(),
            predictor: Predictor::Analytical,
            model: None,
            hardware: None,
            mapspace: Mapspace::Gemmini,
        }
    }
}

/// A mapping bound to a layer by name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerMapping {
    /// `network.layer` as written.
    pub network: String,
    pub layer: String,
    /// For `auto`, the mapping of Gemmini's own tiles (its first full-tile piece when they do not
    /// divide the layer), which reports show.
    pub mapping: Mapping,
    /// `map ... auto`: Gemmini's default tiler (`tiled_conv_auto` / `tiled_matmul_auto`) runs the
    /// layer; evaluated piece by piece as the hardware runs partial tiles.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auto: bool,
}

/// Everything one `.dosa` file (with its imports) describes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Program {
    pub arch: Arch,
    pub networks: Vec<Network>,
    pub mappings: Vec<LayerMapping>,
    pub search: SearchSpec,
}

impl Program {
    /// Lookup used by every command that resolves `network.layer` references.
    pub fn layer(&self, network: &str, layer: &str) -> Option<&Layer> {
        self.networks
            .iter()
            .find(|n| n.name == network)?
            .layers
            .iter()
            .find(|l| l.name == layer)
    }
}
