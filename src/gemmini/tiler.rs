//! Gemmini's own tilers (`tiled_matmul_auto`, `tiled_conv_auto`), reproduced exactly, and the
//! bridge from their tiles to this project's [`Mapping`]s.
//!
//! This is the `gemmini-default` baseline: Gemmini's C library picks its tiles greedily with no
//! cost model, and every result of the search is compared with it, so the tiles must be the ones
//! the library really picks. The algorithm follows `include/gemmini.h` of
//! `ucb-bar/gemmini-rocc-tests` (branch `dev`):
//!
//! * **Matmul** (weight-stationary, double-buffered): pad I, J, K to `nI, nJ, nK` blocks of DIM;
//!   `s = floor(sqrt((ACC_ROWS/2)/DIM))`; start `tile_I = min(nI, s)`, `tile_J = min(nJ, s)`,
//!   `tile_K = min(nK, (((BANK_NUM*BANK_ROWS/2)/2)/DIM)/s)`; then repeat passes until none raises
//!   anything: `J+1` if scratchpad and accumulator fit and `J+1 <= nJ`, then `I+1` likewise, then
//!   `K+1` if the scratchpad fits and `K+1 <= nK` (each try sees the raises made before it in the
//!   same pass). Scratchpad rows `(tI*tK + tK*tJ)*DIM`, accumulator rows `tI*tJ*DIM`, limits
//!   `BANK_NUM*BANK_ROWS/2` and `ACC_ROWS/2`. Output-stationary uses the full memories,
//!   `s = floor(sqrt(ACC_ROWS/DIM))` and `tile_K` start `((BANK_NUM*BANK_ROWS/2)/DIM)/s`.
//! * **Conv** (always double-buffered): `args = [batches, porows, pocols, pochs, krows, kcols,
//!   kchs]` starts at the whole layer. (1) While it does not fit: take the largest entry (ties
//!   to the lower index), skipping `pocols` while `pocols <= DIM && porows > 1`; channels
//!   (`pochs`, `kchs`) drop to the multiple of DIM below (or by DIM if already a multiple, never
//!   below 1), others drop by 1. (2) Raise `pocols` by 1 while it fits and stays in bound.
//!   (3) Passes over the 7 entries in order, each raised by 1 if it then fits and stays in bound,
//!   until a pass raises nothing. Fit: `orows = porows`, `ocols = pocols` (no pooling),
//!   dilated kernel `k' = k + (dil-1)*(k-1)`, `irows = orows*stride + krows' - 1` (same for
//!   cols; padding is not subtracted), input rows `ceil(kchs/DIM)*batches*irows*icols`, weight
//!   rows `ceil(pochs/DIM)*kcols*krows*kchs`, their sum `<= BANK_NUM*BANK_ROWS/2`; accumulator rows
//!   `ceil(pochs/DIM)*batches*orows*ocols <= ACC_ROWS/2`.
//!
//! Upstream also shrinks the input rows and cols by half for 1x1 stride-2 convolutions (its
//! "downsample" path); the published DOSA comparison had that path off, so it is off unless
//! [`GemminiParams::downsample`] is set.
//!
//! Which layers are matmuls: a layer with `R = S = Q = N = 1` (a `Layer::matmul`, or a fully
//! connected layer from a CSV) runs as `tiled_matmul` with `I = P`, `K = C` (reduction),
//! `J = K`; everything else runs as `tiled_conv` with rows = Q, cols = P, kernel rows = S,
//! kernel cols = R (1x1 convolutions over a feature map stay convolutions, as in the comparison).
//!
//! Long runs of single steps in (1) are taken at once where the result is provably the same
//! (see `flat_jump`), so absurdly large layers do not take billions of steps.
//!
//! Rectangular kernels, strides and dilations are accepted here (rows from S/Q/Hstride/Hdilation,
//! cols from R/P/Wstride/Wdilation), which is the natural generalisation of Gemmini's square ones;
//! the C emitter refuses layers Gemmini cannot run.

use crate::ir::{Arch, Bound, Dim, Instances, Layer, LevelMapping, Mapping, Tensor};
use serde::Serialize;
use std::fmt;

/// Gemmini's default number of scratchpad banks (`BANK_NUM`); the IR has no field for it.
pub const DEFAULT_BANK_NUM: u64 = 4;

/// The constants of `gemmini_params.h` that the tilers and the capacity rules depend on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct GemminiParams {
    /// Side of the PE array (`DIM`).
    pub dim: u64,
    /// Scratchpad banks (`BANK_NUM`).
    pub bank_num: u64,
    /// Rows per scratchpad bank (`BANK_ROWS`); a row is DIM elements of one byte.
    pub bank_rows: u64,
    /// Accumulator rows (`ACC_ROWS`); a row is DIM 32-bit accumulators.
    pub acc_rows: u64,
    /// Use upstream's 1x1 stride-2 "downsample" input sizing (off in the published comparison).
    pub downsample: bool,
}

impl GemminiParams {
    /// Gemmini as shipped: 16x16, 256 KiB scratchpad in 4 banks, 64 KiB accumulator.
    pub fn shipped() -> GemminiParams {
        GemminiParams {
            dim: 16,
            bank_num: DEFAULT_BANK_NUM,
            bank_rows: 4096,
            acc_rows: 1024,
            downsample: false,
        }
    }

    /// Scratchpad rows a tile may use (half of them when double-buffered, as the library does).
    pub fn max_spad_rows(&self, double_buffered: bool) -> u64 {
        let total = self.bank_num * self.bank_rows;
        if double_buffered {
            total / 2
        } else {
            total
        }
    }

    /// Accumulator rows a tile may use (half of them when double-buffered).
    pub fn max_acc_rows(&self, double_buffered: bool) -> u64 {
        if double_buffered {
            self.acc_rows / 2
        } else {
            self.acc_rows
        }
    }

    /// Physical scratchpad bytes this configuration describes.
    pub fn spad_bytes(&self) -> u64 {
        self.bank_num * self.bank_rows * self.dim
    }

    /// Physical accumulator bytes this configuration describes (4-byte accumulators).
    pub fn acc_bytes(&self) -> u64 {
        self.acc_rows * self.dim * 4
    }
}

impl fmt::Display for GemminiParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DIM={} BANK_NUM={} BANK_ROWS={} ACC_ROWS={} (scratchpad {} KiB, accumulator {} KiB, physical; tiles use half)",
            self.dim,
            self.bank_num,
            self.bank_rows,
            self.acc_rows,
            self.spad_bytes() / 1024,
            self.acc_bytes() / 1024
        )
    }
}

/// Gemmini's constants for an architecture, from its PE array side and physical buffer sizes.
///
/// `Level.capacity` is bytes per instance: the scratchpad (innermost level keeping inputs) is one
/// instance whose rows are DIM words; the accumulator (innermost level keeping outputs) has one
/// instance per PE column, total `capacity * pe_dim`, rows of DIM words of its word size.
/// `BANK_NUM` is Gemmini's default 4. A size the architecture leaves free (derived by the
/// search) falls back to the shipped configuration; a bound (`AtMost`) is taken as the size.
pub fn gemmini_params(arch: &Arch) -> GemminiParams {
    let shipped = GemminiParams::shipped();
    let dim = arch.pe_dim.max().unwrap_or(shipped.dim).max(1);
    let keeper = |t: Tensor| {
        arch.levels
            .iter()
            .find(|l| !l.is_backing && l.keeps.contains(t))
    };
    let bytes_of = |capacity: Bound, instances: Instances| -> Option<u64> {
        let per = capacity.max()?;
        let n = match instances {
            Instances::PerPe => dim * dim,
            Instances::PerColumn => dim,
            Instances::Single => 1,
        };
        Some(per.saturating_mul(n))
    };
    let bank_num = shipped.bank_num;
    let bank_rows = keeper(Tensor::I)
        .and_then(|l| {
            let row = dim * u64::from(l.word_bits.div_ceil(8).max(1));
            bytes_of(l.capacity, l.instances).map(|b| b / row / bank_num)
        })
        .unwrap_or(shipped.bank_rows * shipped.dim / dim);
    let acc_rows = keeper(Tensor::O)
        .and_then(|l| {
            let row = dim * u64::from(l.word_bits.div_ceil(8).max(1));
            bytes_of(l.capacity, l.instances).map(|b| b / row)
        })
        .unwrap_or(shipped.acc_rows * shipped.dim / dim);
    GemminiParams {
        dim,
        bank_num,
        bank_rows,
        acc_rows,
        downsample: false,
    }
}

/// Dataflow of a matmul; convolutions are always weight-stationary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Dataflow {
    /// Weight-stationary: double-buffered, half of each memory per tile (Gemmini's default).
    Ws,
    /// Output-stationary: the full memories.
    Os,
}

/// A convolution in Gemmini's terms (rows are Q/S, cols are P/R).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ConvShape {
    pub batch: u64,
    pub out_rows: u64,
    pub out_cols: u64,
    pub out_channels: u64,
    pub kernel_rows: u64,
    pub kernel_cols: u64,
    pub in_channels: u64,
    pub row_stride: u64,
    pub col_stride: u64,
    pub row_dilation: u64,
    pub col_dilation: u64,
}

impl ConvShape {
    /// The tile bounds, in the order of [`ConvTiles::to_array`].
    pub fn bounds(&self) -> [u64; 7] {
        [
            self.batch,
            self.out_rows,
            self.out_cols,
            self.out_channels,
            self.kernel_rows,
            self.kernel_cols,
            self.in_channels,
        ]
    }
}

/// A matrix multiply `C[I,J] = A[I,K] * B[K,J]` in elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct MatmulShape {
    pub i: u64,
    pub j: u64,
    pub k: u64,
}

/// How Gemmini runs a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum GemminiOp {
    Conv(ConvShape),
    Matmul(MatmulShape),
}

/// Whether a layer runs as `tiled_matmul` (`R = S = Q = N = 1`) rather than `tiled_conv`.
pub fn is_matmul(layer: &Layer) -> bool {
    [Dim::R, Dim::S, Dim::Q, Dim::N]
        .iter()
        .all(|&d| layer.dim(d) == 1)
}

/// The layer viewed as a convolution (any layer can be); zero sizes count as 1.
pub fn conv_shape(layer: &Layer) -> ConvShape {
    let g = |d: Dim| layer.dim(d).max(1);
    ConvShape {
        batch: g(Dim::N),
        out_rows: g(Dim::Q),
        out_cols: g(Dim::P),
        out_channels: g(Dim::K),
        kernel_rows: g(Dim::S),
        kernel_cols: g(Dim::R),
        in_channels: g(Dim::C),
        row_stride: layer.hstride.max(1),
        col_stride: layer.wstride.max(1),
        row_dilation: layer.hdilation.max(1),
        col_dilation: layer.wdilation.max(1),
    }
}

/// The layer viewed as a matmul: `I = P`, `J = K`, `K = C` (other dims are taken as 1).
pub fn matmul_shape(layer: &Layer) -> MatmulShape {
    MatmulShape {
        i: layer.dim(Dim::P).max(1),
        j: layer.dim(Dim::K).max(1),
        k: layer.dim(Dim::C).max(1),
    }
}

/// Which API runs the layer, with its sizes.
pub fn gemmini_op(layer: &Layer) -> GemminiOp {
    if is_matmul(layer) {
        GemminiOp::Matmul(matmul_shape(layer))
    } else {
        GemminiOp::Conv(conv_shape(layer))
    }
}

/// `tiled_conv`'s seven tile sizes, in elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ConvTiles {
    pub batches: u64,
    pub porows: u64,
    pub pocols: u64,
    pub pochs: u64,
    pub krows: u64,
    pub kcols: u64,
    pub kchs: u64,
}

impl ConvTiles {
    /// `[batches, porows, pocols, pochs, krows, kcols, kchs]`, the order the library iterates.
    pub fn to_array(self) -> [u64; 7] {
        [
            self.batches,
            self.porows,
            self.pocols,
            self.pochs,
            self.krows,
            self.kcols,
            self.kchs,
        ]
    }

    /// Inverse of [`ConvTiles::to_array`].
    pub fn from_array(a: [u64; 7]) -> ConvTiles {
        ConvTiles {
            batches: a[0],
            porows: a[1],
            pocols: a[2],
            pochs: a[3],
            krows: a[4],
            kcols: a[5],
            kchs: a[6],
        }
    }

    /// The names the library uses, in array order (for messages and JSON).
    pub const NAMES: [&'static str; 7] = [
        "batches", "porows", "pocols", "pochs", "krows", "kcols", "kchs",
    ];
}

/// `tiled_matmul`'s three tile sizes, in DIM-sized blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct MatmulTiles {
    #[serde(rename = "tile_I")]
    pub tile_i: u64,
    #[serde(rename = "tile_J")]
    pub tile_j: u64,
    #[serde(rename = "tile_K")]
    pub tile_k: u64,
}

/// The tiles of one layer in Gemmini's own terms and units.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Tiles {
    Conv(ConvTiles),
    Matmul(MatmulTiles),
}

impl Tiles {
    /// `"conv"` or `"matmul"`, as the `tile` command prints it.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Tiles::Conv(_) => "conv",
            Tiles::Matmul(_) => "matmul",
        }
    }

    /// Gemmini's tile in elements per dim R S P Q C K N (matmul blocks times DIM, unclipped).
    pub fn element_dims(&self, dim: u64) -> [u64; 7] {
        match *self {
            Tiles::Conv(t) => [
                t.kcols, t.krows, t.pocols, t.porows, t.kchs, t.pochs, t.batches,
            ],
            Tiles::Matmul(t) => [1, 1, t.tile_i * dim, 1, t.tile_k * dim, t.tile_j * dim, 1],
        }
    }
}

fn ceil_div(a: u64, b: u64) -> u64 {
    a.div_ceil(b.max(1))
}

fn sat(x: u128) -> u64 {
    u64::try_from(x).unwrap_or(u64::MAX)
}

/// Scratchpad rows (inputs + weights) and accumulator rows a convolution tile occupies.
pub fn conv_rows(shape: &ConvShape, t: &ConvTiles, p: &GemminiParams) -> (u64, u64) {
    let dim = p.dim.max(1) as u128;
    let w = |x: u64| x as u128;
    let orows = w(t.porows);
    let ocols = w(t.pocols);
    let kr = w(t.krows) + (w(shape.row_dilation) - 1) * w(t.krows).saturating_sub(1);
    let kc = w(t.kcols) + (w(shape.col_dilation) - 1) * w(t.kcols).saturating_sub(1);
    let mut irows = (orows * w(shape.row_stride) + kr).saturating_sub(1);
    let mut icols = (ocols * w(shape.col_stride) + kc).saturating_sub(1);
    if p.downsample
        && shape.kernel_rows == 1
        && shape.kernel_cols == 1
        && shape.row_stride == 2
        && shape.col_stride == 2
    {
        irows >>= 1;
        icols >>= 1;
    }
    let in_banks = w(t.kchs).div_ceil(dim);
    let out_banks = w(t.pochs).div_ceil(dim);
    let a = in_banks * w(t.batches) * irows * icols;
    let b = out_banks * w(t.kcols) * w(t.krows) * w(t.kchs);
    let c = out_banks * w(t.batches) * orows * ocols;
    (sat(a + b), sat(c))
}

/// Scratchpad rows and accumulator rows a matmul tile occupies.
pub fn matmul_rows(t: &MatmulTiles, p: &GemminiParams) -> (u64, u64) {
    let w = |x: u64| x as u128;
    let spad = (w(t.tile_i) * w(t.tile_k) + w(t.tile_k) * w(t.tile_j)) * w(p.dim);
    let acc = w(t.tile_i) * w(t.tile_j) * w(p.dim);
    (sat(spad), sat(acc))
}

/// `tiled_conv_auto`'s choice for a convolution.
///
/// If even the all-ones tile does not fit (a configuration far smaller than any Gemmini), the
/// library would loop forever; here the shrinking stops and [`check_tiles`] reports the overflow.
pub fn auto_tile_conv(shape: &ConvShape, p: &GemminiParams) -> ConvTiles {
    let dim = p.dim.max(1);
    let max = shape.bounds().map(|b| b.max(1));
    let max_spad = p.max_spad_rows(true);
    let max_acc = p.max_acc_rows(true);
    let fits = |a: &[u64; 7]| {
        let (s, c) = conv_rows(shape, &ConvTiles::from_array(*a), p);
        s <= max_spad && c <= max_acc
    };
    const OROWS: usize = 1;
    const OCOLS: usize = 2;
    const OCHS: usize = 3;
    const KCHS: usize = 6;

    let mut a = max;
    // (1) Shrink the largest entry until the tile fits.
    while !fits(&a) {
        if let Some(c) = flat_jump(&a, dim, &fits) {
            a = c;
            continue;
        }
        let mut pick: Option<usize> = None;
        for i in 0..7 {
            // The library keeps ocols when it can, so the array's rows stay busy.
            if i == OCOLS && a[i] <= dim && a[OROWS] > 1 {
                continue;
            }
            if pick.is_none_or(|j| a[i] > a[j]) {
                pick = Some(i);
            }
        }
        let Some(i) = pick else { break };
        if a[i] <= 1 {
            break;
        }
        if i == OCHS || i == KCHS {
            a[i] = if a[i] % dim != 0 {
                a[i] / dim * dim
            } else {
                a[i] - dim
            };
            a[i] = a[i].max(1);
            continue;
        }
        a[i] -= 1;
    }
    // (2) Raise ocols while it fits.
    loop {
        let mut c = a;
        c[OCOLS] += 1;
        if c[OCOLS] > max[OCOLS] || !fits(&c) {
            break;
        }
        a = c;
    }
    // (3) Passes over all entries until nothing can grow.
    loop {
        let mut changed = false;
        for i in 0..7 {
            let mut c = a;
            c[i] += 1;
            if c[i] > max[i] {
                continue;
            }
            if fits(&c) {
                a = c;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    ConvTiles::from_array(a)
}

/// Many shrinking steps at once, landing exactly where stepping by one would.
///
/// When the largest eligible entries are all equal (value `m`) and none is a channel, the
/// library lowers them round-robin by one, lowest index first, as long as they stay above every
/// other eligible entry (and above 2, and above DIM for `pocols` while it could be skipped).
/// Fitting only gets easier along that sequence, so a binary search over the number of steps
/// finds the first state that fits. Used only for long runs (huge layers), so that they do not
/// take billions of steps; `None` means "take one ordinary step".
fn flat_jump(a: &[u64; 7], dim: u64, fits: &impl Fn(&[u64; 7]) -> bool) -> Option<[u64; 7]> {
    const OROWS: usize = 1;
    const OCOLS: usize = 2;
    const OCHS: usize = 3;
    const KCHS: usize = 6;
    let eligible = |j: usize| !(j == OCOLS && a[OCOLS] <= dim && a[OROWS] > 1);
    let m = (0..7).filter(|&j| eligible(j)).map(|j| a[j]).max()?;
    let group: Vec<usize> = (0..7)
        .filter(|&j| eligible(j) && a[j] == m && j != OCHS && j != KCHS)
        .collect();
    if group.is_empty() {
        return None;
    }
    let next = (0..7)
        .filter(|&j| eligible(j) && !group.contains(&j))
        .map(|j| a[j])
        .max()
        .unwrap_or(0);
    // Lowest value an entry may have when it is picked within the run.
    let mut low = (next + 1).max(3);
    if group.contains(&OCOLS) {
        low = low.max(dim + 1);
    }
    if m < low {
        return None;
    }
    let k = group.len() as u64;
    let steps = k * (m - low + 1);
    if steps < 64 {
        return None;
    }
    let state = |t: u64| {
        let (r, q) = (t / k, t % k);
        let mut c = *a;
        for (n, &j) in group.iter().enumerate() {
            c[j] = m - r - u64::from((n as u64) < q);
        }
        c
    };
    if !fits(&state(steps)) {
        return Some(state(steps));
    }
    let (mut lo, mut hi) = (1, steps);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if fits(&state(mid)) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Some(state(lo))
}

fn isqrt(n: u64) -> u64 {
    let mut r = (n as f64).sqrt() as u64;
    while r * r > n {
        r -= 1;
    }
    while (r + 1) * (r + 1) <= n {
        r += 1;
    }
    r
}

/// `tiled_matmul_auto`'s choice for a matmul in the given dataflow.
///
/// The starting tile is not checked by the library; on configurations where it already
/// overflows (or where the accumulator holds less than one block and upstream would divide by
/// zero) the start is clamped to 1 and [`check_tiles`] reports the overflow.
pub fn auto_tile_matmul(shape: &MatmulShape, p: &GemminiParams, dataflow: Dataflow) -> MatmulTiles {
    let dim = p.dim.max(1);
    let n_i = ceil_div(shape.i.max(1), dim);
    let n_j = ceil_div(shape.j.max(1), dim);
    let n_k = ceil_div(shape.k.max(1), dim);
    let db = dataflow == Dataflow::Ws;
    let max_spad = p.max_spad_rows(db);
    let max_acc = p.max_acc_rows(db);
    let (s, tile_k_start) = if db {
        let partition_rows = (p.bank_num * p.bank_rows / 2) / 2;
        let mats_in_partition = partition_rows / dim;
        let mats_in_acc = (p.acc_rows / 2) / dim;
        let s = isqrt(mats_in_acc);
        (s, mats_in_partition / s.max(1))
    } else {
        let partition_rows = p.bank_num * p.bank_rows / 2;
        let mats_in_partition = partition_rows / dim;
        let mats_in_acc = p.acc_rows / dim;
        let s = isqrt(mats_in_acc);
        (s, mats_in_partition / s.max(1))
    };
    let mut t = MatmulTiles {
        tile_i: n_i.min(s).max(1),
        tile_j: n_j.min(s).max(1),
        tile_k: n_k.min(tile_k_start).max(1),
    };
    let spad_ok = |t: &MatmulTiles| matmul_rows(t, p).0 <= max_spad;
    let acc_ok = |t: &MatmulTiles| matmul_rows(t, p).1 <= max_acc;
    loop {
        let mut increased = false;
        let c = MatmulTiles {
            tile_j: t.tile_j + 1,
            ..t
        };
        if spad_ok(&c) && acc_ok(&c) && c.tile_j <= n_j {
            t = c;
            increased = true;
        }
        let c = MatmulTiles {
            tile_i: t.tile_i + 1,
            ..t
        };
        if spad_ok(&c) && acc_ok(&c) && c.tile_i <= n_i {
            t = c;
            increased = true;
        }
        let c = MatmulTiles {
            tile_k: t.tile_k + 1,
            ..t
        };
        if spad_ok(&c) && c.tile_k <= n_k {
            t = c;
            increased = true;
        }
        if !increased {
            break;
        }
    }
    t
}

/// The tiles Gemmini's library picks for `layer` (matmuls weight-stationary, as by default).
pub fn auto_tile(layer: &Layer, params: &GemminiParams) -> Tiles {
    match gemmini_op(layer) {
        GemminiOp::Conv(s) => Tiles::Conv(auto_tile_conv(&s, params)),
        GemminiOp::Matmul(s) => Tiles::Matmul(auto_tile_matmul(&s, params, Dataflow::Ws)),
    }
}

/// Rows a tile occupies against what a double-buffered tile may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub spad_rows: u64,
    pub spad_limit: u64,
    pub acc_rows: u64,
    pub acc_limit: u64,
}

/// Why a tile cannot run: the resource and by how much it overflows.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CapacityError {
    #[error(
        "scratchpad overflow: the tile needs {needed} rows of {row_bytes} B but a double-buffered tile may use {limit} (over by {})",
        needed - limit
    )]
    Scratchpad {
        needed: u64,
        limit: u64,
        row_bytes: u64,
    },
    #[error(
        "accumulator overflow: the tile needs {needed} rows of {row_bytes} B but a double-buffered tile may use {limit} (over by {})",
        needed - limit
    )]
    Accumulator {
        needed: u64,
        limit: u64,
        row_bytes: u64,
    },
    #[error("tile bound: {name} = {value} is outside 1..={max}")]
    Bounds {
        name: &'static str,
        value: u64,
        max: u64,
    },
}

/// Rows used by `tiles` on `layer` (the view of the layer follows the tiles' kind).
pub fn usage(layer: &Layer, tiles: &Tiles, p: &GemminiParams) -> Usage {
    let (spad_rows, acc_rows) = match tiles {
        Tiles::Conv(t) => conv_rows(&conv_shape(layer), t, p),
        Tiles::Matmul(t) => matmul_rows(t, p),
    };
    Usage {
        spad_rows,
        spad_limit: p.max_spad_rows(true),
        acc_rows,
        acc_limit: p.max_acc_rows(true),
    }
}

/// Gemmini's legality rules for a tile (GEMMINI.md): bounds, then scratchpad, then accumulator,
/// all with the double-buffered halves the library asserts for WS matmuls and all convs.
pub fn check_tiles(
    layer: &Layer,
    tiles: &Tiles,
    p: &GemminiParams,
) -> Result<Usage, CapacityError> {
    match tiles {
        Tiles::Conv(t) => {
            let max = conv_shape(layer).bounds();
            for ((name, value), max) in ConvTiles::NAMES.iter().zip(t.to_array()).zip(max) {
                if value < 1 || value > max {
                    return Err(CapacityError::Bounds { name, value, max });
                }
            }
        }
        Tiles::Matmul(t) => {
            let s = matmul_shape(layer);
            let dim = p.dim.max(1);
            for (name, value, n) in [
                ("tile_I", t.tile_i, s.i),
                ("tile_J", t.tile_j, s.j),
                ("tile_K", t.tile_k, s.k),
            ] {
                let max = ceil_div(n, dim);
                if value < 1 || value > max {
                    return Err(CapacityError::Bounds { name, value, max });
                }
            }
        }
    }
    let u = usage(layer, tiles, p);
    if u.spad_rows > u.spad_limit {
        return Err(CapacityError::Scratchpad {
            needed: u.spad_rows,
            limit: u.spad_limit,
            row_bytes: p.dim,
        });
    }
    if u.acc_rows > u.acc_limit {
        return Err(CapacityError::Accumulator {
            needed: u.acc_rows,
            limit: u.acc_limit,
            row_bytes: p.dim * 4,
        });
    }
    Ok(u)
}

/// Why tiles cannot become a mapping.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TileError {
    #[error("the architecture `{arch}` is not Gemmini-shaped: {why}")]
    NotGemmini { arch: String, why: String },
    #[error(
        "matmul tiles given for layer `{layer}`, which is not a matmul (R, S, Q and N must be 1)"
    )]
    KindMismatch { layer: String },
    #[error("layer `{layer}`: {why}")]
    Pieces { layer: String, why: String },
}

/// Where Gemmini's parts sit in an architecture's level list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GemminiLevels {
    /// Innermost level (weight registers); gets no factors.
    pub reg: usize,
    /// Accumulator: the tile level, with spatial C.
    pub acc: usize,
    /// Scratchpad: spatial K.
    pub spad: usize,
    /// Backing store: the loops over tiles.
    pub dram: usize,
}

/// Locate the accumulator (innermost keeper of O), scratchpad (innermost keeper of I) and DRAM.
pub fn gemmini_levels(arch: &Arch) -> Result<GemminiLevels, TileError> {
    let bad = |why: &str| TileError::NotGemmini {
        arch: arch.name.clone(),
        why: why.to_string(),
    };
    let n = arch.levels.len();
    if n < 3 {
        return Err(bad(
            "it needs at least an accumulator, a scratchpad and a backing store",
        ));
    }
    let dram = n - 1;
    if !arch.levels[dram].is_backing {
        return Err(bad("its outermost level is not a backing store"));
    }
    let keeper = |t: Tensor| arch.levels[..dram].iter().position(|l| l.keeps.contains(t));
    let acc = keeper(Tensor::O).ok_or_else(|| bad("no on-chip level keeps outputs"))?;
    let spad = keeper(Tensor::I).ok_or_else(|| bad("no on-chip level keeps inputs"))?;
    if spad <= acc {
        return Err(bad("the input buffer must sit outside the accumulator"));
    }
    Ok(GemminiLevels {
        reg: 0,
        acc,
        spad,
        dram,
    })
}

/// The element tile per dim (R S P Q C K N) the tiles describe on this layer: Gemmini's tile,
/// with matmul blocks clipped to the layer (a last partial block is computed as rows of it).
pub fn element_tile(layer: &Layer, tiles: &Tiles, dim: u64) -> Result<[u64; 7], TileError> {
    let mut t = tiles.element_dims(dim);
    if let Tiles::Matmul(_) = tiles {
        if !is_matmul(layer) {
            return Err(TileError::KindMismatch {
                layer: layer.name.clone(),
            });
        }
        for d in Dim::ALL {
            t[d.index()] = t[d.index()].min(layer.dim(d).max(1));
        }
    }
    Ok(t.map(|x| x.max(1)))
}

/// The largest spatial factor Gemmini lays out for a tile extent at a level.
fn spatial_for(arch: &Arch, level: usize, d: Dim, extent: u64, dim: u64) -> u64 {
    let cap = arch.levels[level]
        .spatial
        .iter()
        .find(|s| s.dim == d)
        .map(|s| s.max.unwrap_or(dim).min(dim))
        .unwrap_or(1);
    extent.min(cap).max(1)
}

/// The mapping for one tile shape repeated `trips` times per dim, and the tile per dim it
/// really covers (C and K rounded up to a multiple of their spatial factor).
fn build_mapping(
    arch: &Arch,
    lv: GemminiLevels,
    matmul: bool,
    tile: [u64; 7],
    trips: [u64; 7],
    dim: u64,
) -> (Mapping, [u64; 7]) {
    use Dim::*;
    let mut levels: Vec<LevelMapping> = arch
        .levels
        .iter()
        .map(|l| LevelMapping::unit(l.keeps))
        .collect();
    let mut covered = tile;
    let sc = spatial_for(arch, lv.acc, C, tile[C.index()], dim);
    let sk = spatial_for(arch, lv.spad, K, tile[K.index()], dim);
    {
        let acc = &mut levels[lv.acc];
        for d in [R, S, P, Q, N] {
            acc.temporal[d.index()] = tile[d.index()];
        }
        acc.spatial[C.index()] = sc;
        acc.temporal[C.index()] = ceil_div(tile[C.index()], sc);
        acc.temporal[K.index()] = ceil_div(tile[K.index()], sk);
        acc.order = if matmul {
            vec![K, C, P, R, S, Q, N]
        } else {
            vec![K, S, R, C, N, Q, P]
        };
    }
    levels[lv.spad].spatial[K.index()] = sk;
    covered[C.index()] = sc * ceil_div(tile[C.index()], sc);
    covered[K.index()] = sk * ceil_div(tile[K.index()], sk);
    {
        let top = &mut levels[lv.dram];
        top.temporal = trips;
        // Gemmini's fixed loop order over tiles, outermost first.
        top.order = if matmul {
            vec![P, K, C, R, S, Q, N]
        } else {
            vec![N, Q, P, K, S, R, C]
        };
    }
    for l in &mut levels {
        l.normalize_order();
    }
    (Mapping::new(levels), covered)
}

pub use crate::model::pieces::Piece;

/// The layer padded to whole tiles, with the mapping Gemmini's tiles give on it.
///
/// Per dim the L1 (accumulator-level) tile is the Gemmini tile: R, S, P, Q, N temporal at L1;
/// C spatial `min(DIM, tile C)` at L1 (`C..X`) with the rest temporal at L1; K spatial
/// `min(DIM, tile K)` at L2 (`K..X`) with the rest temporal at L1; L0 gets no factor (the
/// weight-stationary reuse over N, Q, P comes from the L1 order K S R C N Q P, outermost first);
/// DRAM loops over the tiles in Gemmini's fixed order (conv N Q P K S R C, matmul i j k = P K C).
/// Padding: each dim becomes `ceil(size / tile) * tile'` where `tile'` is the tile with C and K
/// rounded up to a multiple of their spatial factor. This over-counts the work of the last,
/// partial tile of every dim; use [`hardware_pieces`] for the cost "as the hardware runs it".
/// The C/K rounding models the array's time (a partial block takes as long as a full one); the
/// buffer need derived from such a mapping can exceed the library's own count by that rounding.
pub fn padded_problem(layer: &Layer, tiles: &Tiles, arch: &Arch) -> Result<Piece, TileError> {
    let lv = gemmini_levels(arch)?;
    let dim = gemmini_params(arch).dim;
    let tile = element_tile(layer, tiles, dim)?;
    let trips: [u64; 7] = std::array::from_fn(|i| ceil_div(layer.dims[i].max(1), tile[i]));
    let (mapping, covered) = build_mapping(
        arch,
        lv,
        matches!(tiles, Tiles::Matmul(_)),
        tile,
        trips,
        dim,
    );
    let mut padded = layer.clone();
    padded.dims = std::array::from_fn(|i| trips[i] * covered[i]);
    Ok(Piece {
        layer: padded,
        mapping,
    })
}

/// The mapping the `gemmini-default` baseline evaluates: the one of [`padded_problem`], which
/// is exact on the layer whenever the tiles divide it (and C, K tiles fill the array).
pub fn tiles_to_mapping(layer: &Layer, tiles: &Tiles, arch: &Arch) -> Result<Mapping, TileError> {
    padded_problem(layer, tiles, arch).map(|p| p.mapping)
}

/// Gemmini's tiles as one mapping of the layer itself: the tile below the backing level, which
/// counts the tiles of each dim with the last one partial ([`crate::model::pieces`]), in
/// Gemmini's fixed loop order. Exact whenever the tiles divide the layer.
pub fn auto_mapping(layer: &Layer, tiles: &Tiles, arch: &Arch) -> Result<Mapping, TileError> {
    let mut m = tiles_to_mapping(layer, tiles, arch)?;
    crate::model::pieces::normalize_cover(layer, &mut m);
    Ok(m)
}

/// The layer split into sub-problems that together run as Gemmini runs it: the pieces
/// ([`crate::model::pieces`]) of [`auto_mapping`], full tiles and the partial last tile of each
/// dim whose tile does not divide it (at most 2^7, usually a handful). The cost of the layer is
/// the sum of the pieces' costs.
pub fn hardware_pieces(layer: &Layer, tiles: &Tiles, arch: &Arch) -> Result<Vec<Piece>, TileError> {
    let m = auto_mapping(layer, tiles, arch)?;
    crate::model::pieces::pieces(layer, &m).map_err(|e| TileError::Pieces {
        layer: layer.name.clone(),
        why: e.to_string(),
    })
}

/// Gemmini's tiles that a mapping asks for: per dim the product of every factor below the
/// backing level (L2 temporal loops cannot be separate in Gemmini, so they fold into the tile),
/// at most the layer's size (Gemmini's loops run the last tile of a dim partial, whatever its size).
/// Matmul layers get blocks `ceil(tile / DIM)`.
pub fn mapping_to_tiles(layer: &Layer, mapping: &Mapping, dim: u64) -> Tiles {
    let inner = mapping.levels.len().saturating_sub(1);
    // A partial count below the backing level covers more than the layer: the tile is the layer.
    let t: [u64; 7] = std::array::from_fn(|i| {
        mapping.levels[..inner]
            .iter()
            .map(|l| l.temporal[i].saturating_mul(l.spatial[i]))
            .fold(1u64, |a, b| a.saturating_mul(b))
            .min(layer.dims[i].max(1))
    });
    let g = |d: Dim| t[d.index()];
    if is_matmul(layer) {
        Tiles::Matmul(MatmulTiles {
            tile_i: ceil_div(g(Dim::P), dim),
            tile_j: ceil_div(g(Dim::K), dim),
            tile_k: ceil_div(g(Dim::C), dim),
        })
    } else {
        Tiles::Conv(ConvTiles {
            batches: g(Dim::N),
            porows: g(Dim::Q),
            pocols: g(Dim::P),
            pochs: g(Dim::K),
            krows: g(Dim::S),
            kcols: g(Dim::R),
            kchs: g(Dim::C),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::gemmini_arch;

    fn conv(r: u64, pq: u64, c: u64, k: u64, stride: u64) -> Layer {
        Layer::conv("t", [r, r, pq, pq, c, k, 1], stride, stride)
    }

    /// The library's shrinking loop stepped one by one, to check the fast path against.
    fn reference_conv(shape: &ConvShape, p: &GemminiParams) -> ConvTiles {
        let dim = p.dim;
        let max = shape.bounds();
        let fits = |a: &[u64; 7]| {
            let (s, c) = conv_rows(shape, &ConvTiles::from_array(*a), p);
            s <= p.max_spad_rows(true) && c <= p.max_acc_rows(true)
        };
        let mut a = max;
        while !fits(&a) {
            let mut pick = 0;
            let mut best: i64 = -1;
            for i in 0..7 {
                if !(i == 2 && a[i] <= dim && a[1] > 1) && a[i] as i64 > best {
                    best = a[i] as i64;
                    pick = i;
                }
            }
            if a[pick] <= 1 {
                break;
            }
            if pick == 3 || pick == 6 {
                a[pick] = if a[pick] % dim != 0 {
                    a[pick] / dim * dim
                } else {
                    a[pick] - dim
                }
                .max(1);
            } else {
                a[pick] -= 1;
            }
        }
        let grown = |mut a: [u64; 7]| {
            loop {
                let mut c = a;
                c[2] += 1;
                if c[2] > max[2] || !fits(&c) {
                    break;
                }
                a = c;
            }
            loop {
                let mut changed = false;
                for i in 0..7 {
                    let mut c = a;
                    c[i] += 1;
                    if c[i] <= max[i] && fits(&c) {
                        a = c;
                        changed = true;
                    }
                }
                if !changed {
                    break;
                }
            }
            a
        };
        ConvTiles::from_array(grown(a))
    }

    #[test]
    fn fast_shrinking_matches_stepping_by_one() {
        let mut rng = crate::util::Rng::new(7);
        let p = GemminiParams::shipped();
        for case in 0..150 {
            let big = |rng: &mut crate::util::Rng, n: u64| 1 + rng.below(n);
            let k = 1 + rng.below(7);
            let l = Layer::conv(
                "x",
                [
                    k,
                    1 + rng.below(7),
                    big(&mut rng, 3000),
                    big(&mut rng, 3000),
                    big(&mut rng, 600),
                    big(&mut rng, 600),
                    big(&mut rng, 3),
                ],
                1 + rng.below(3),
                1 + rng.below(3),
            );
            let s = conv_shape(&l);
            assert_eq!(
                auto_tile_conv(&s, &p),
                reference_conv(&s, &p),
                "case {case}: {:?}",
                l.dims
            );
        }
    }

    #[test]
    fn huge_layers_do_not_hang() {
        let l = conv(3, 1 << 30, 64, 64, 1);
        let t = auto_tile(&l, &GemminiParams::shipped());
        check_tiles(&l, &t, &GemminiParams::shipped()).unwrap();
    }

    #[test]
    fn shipped_params_follow_from_the_builtin_arch() {
        assert_eq!(gemmini_params(&gemmini_arch()), GemminiParams::shipped());
    }

    #[test]
    fn resnet50_conv1_matches_gemmini_md() {
        let t = auto_tile(&conv(7, 112, 3, 64, 2), &GemminiParams::shipped());
        assert_eq!(
            t,
            Tiles::Conv(ConvTiles {
                batches: 1,
                porows: 22,
                pocols: 23,
                pochs: 16,
                krows: 7,
                kcols: 7,
                kchs: 3
            })
        );
    }

    #[test]
    fn fc_2048_to_1000_matches_gemmini_md() {
        let l = Layer::conv("fc", [1, 1, 1, 1, 2048, 1000, 1], 1, 1);
        let t = auto_tile(&l, &GemminiParams::shipped());
        assert_eq!(
            t,
            Tiles::Matmul(MatmulTiles {
                tile_i: 1,
                tile_j: 8,
                tile_k: 56
            })
        );
    }

    #[test]
    fn hand_worked_bert_matmuls() {
        let p = GemminiParams::shipped();
        // I=128, K=128, J=64: start (5,4,8); I grows to 8 while the accumulator allows.
        let t = auto_tile(&Layer::matmul("mm_2", 128, 128, 64), &p);
        assert_eq!(
            t,
            Tiles::Matmul(MatmulTiles {
                tile_i: 8,
                tile_j: 4,
                tile_k: 8
            })
        );
        // I=128, K=3072, J=768: the start (5,5,51) already fills the scratchpad.
        let t = auto_tile(&Layer::matmul("mm_5", 128, 3072, 768), &p);
        assert_eq!(
            t,
            Tiles::Matmul(MatmulTiles {
                tile_i: 5,
                tile_j: 5,
                tile_k: 51
            })
        );
    }

    #[test]
    fn output_stationary_uses_full_memories() {
        let p = GemminiParams::shipped();
        let s = MatmulShape {
            i: 1024,
            j: 1024,
            k: 1024,
        };
        let t = auto_tile_matmul(&s, &p, Dataflow::Os);
        // s = sqrt(64) = 8, tile_K start = 512/8 = 64 = nK; growth limited by full memories.
        let (sp, acc) = matmul_rows(&t, &p);
        assert!(sp <= 16384 && acc <= 1024, "{t:?}");
        assert!(t.tile_i >= 8 && t.tile_j >= 8 && t.tile_k == 64, "{t:?}");
    }

    #[test]
    fn small_conv_takes_the_whole_layer() {
        // 3x3 over 8x8, 16 -> 16 channels: everything fits at once.
        let l = conv(3, 8, 16, 16, 1);
        let t = auto_tile(&l, &GemminiParams::shipped());
        assert_eq!(
            t,
            Tiles::Conv(ConvTiles::from_array([1, 8, 8, 16, 3, 3, 16]))
        );
    }

    #[test]
    fn hand_worked_1x1_conv_shrinks_channels_first() {
        // 1x1, 14x14, C=1024, K=256 (resnet50 _outputs_input.80). Start [1,14,14,256,1,1,1024]:
        // the largest entries are channels, which drop by DIM; rows/cols stay 14 (acc needs
        // ceil(K/16)*196 <= 512 -> K <= 32; scratchpad 196*ceil(C/16) + C*ceil(K/16) <= 8192).
        let l = conv(1, 14, 1024, 256, 1);
        let p = GemminiParams::shipped();
        let t = match auto_tile(&l, &p) {
            Tiles::Conv(t) => t,
            _ => unreachable!(),
        };
        check_tiles(&l, &Tiles::Conv(t), &p).unwrap();
        assert_eq!((t.porows, t.pocols), (14, 14));
        assert!(t.pochs <= 32);
    }

    #[test]
    fn overflow_is_reported_with_resource_and_amount() {
        let l = conv(3, 56, 64, 64, 1);
        let p = GemminiParams::shipped();
        let t = Tiles::Conv(ConvTiles::from_array([1, 56, 56, 64, 3, 3, 64]));
        let e = check_tiles(&l, &t, &p).unwrap_err();
        // inputs 4*58*58 + weights 4*9*64 = 15760 rows vs 8192.
        assert_eq!(
            e,
            CapacityError::Scratchpad {
                needed: 15760,
                limit: 8192,
                row_bytes: 16
            }
        );
        assert!(e.to_string().contains("over by 7568"));
        let t = Tiles::Conv(ConvTiles::from_array([1, 57, 56, 64, 3, 3, 64]));
        assert!(matches!(
            check_tiles(&l, &t, &p),
            Err(CapacityError::Bounds { name: "porows", .. })
        ));
    }

    #[test]
    fn mapping_of_conv1_tiles_is_gemmini_shaped() {
        let arch = gemmini_arch();
        let l = conv(7, 112, 3, 64, 2);
        let t = auto_tile(&l, &GemminiParams::shipped());
        let m = tiles_to_mapping(&l, &t, &arch).unwrap();
        assert_eq!(
            m.to_string(),
            "L3[WIO] Q6 P5 K4 - L2[WI] N1 K16X - L1[O] S7 R7 Q22 P23 C3X - L0[W] N1"
        );
        let padded = padded_problem(&l, &t, &arch).unwrap().layer;
        assert_eq!(padded.dims, [7, 7, 115, 132, 3, 64, 1]);
        for d in Dim::ALL {
            assert_eq!(m.dim_product(d), padded.dim(d) as u128);
        }
    }

    #[test]
    fn pieces_cover_the_layer_exactly_outside_the_array_padding() {
        let arch = gemmini_arch();
        let l = conv(7, 112, 3, 64, 2);
        let t = auto_tile(&l, &GemminiParams::shipped());
        let pieces = hardware_pieces(&l, &t, &arch).unwrap();
        // P = 4*23 + 20, Q = 5*22 + 2: four pieces.
        assert_eq!(pieces.len(), 4);
        let macs: f64 = pieces.iter().map(|p| p.layer.macs()).sum();
        assert_eq!(macs, l.macs());
        for p in &pieces {
            for d in Dim::ALL {
                assert_eq!(p.mapping.dim_product(d), p.layer.dim(d) as u128);
            }
        }
    }

    #[test]
    fn matmul_mapping_clips_blocks_and_runs_partial_blocks_on_fewer_lanes() {
        let arch = gemmini_arch();
        let l = Layer::conv("fc", [1, 1, 1, 1, 2048, 1000, 1], 1, 1);
        let t = auto_tile(&l, &GemminiParams::shipped());
        let m = tiles_to_mapping(&l, &t, &arch).unwrap();
        assert_eq!(
            m.to_string(),
            "L3[WIO] K8 C3 - L2[WI] N1 K16X - L1[O] K8 C56 C16X - L0[W] N1"
        );
        let pieces = hardware_pieces(&l, &t, &arch).unwrap();
        // C = 2*896 + 256, K = 7*128 + 104, and the 104 run as 6 blocks of 16 lanes and one
        // block of 8: seven steps, as the padded block would take, with exact data.
        let ks: Vec<u64> = pieces.iter().map(|p| p.layer.dim(Dim::K)).collect();
        assert_eq!(ks, vec![896, 96, 8, 896, 96, 8]);
        let cs: Vec<u64> = pieces.iter().map(|p| p.layer.dim(Dim::C)).collect();
        assert_eq!(cs, vec![1792, 1792, 1792, 256, 256, 256]);
        let macs: f64 = pieces.iter().map(|p| p.layer.macs()).sum();
        assert_eq!(macs, l.macs());
    }

    #[test]
    fn mapping_round_trips_to_the_same_tiles() {
        let arch = gemmini_arch();
        let p = GemminiParams::shipped();
        for l in [
            conv(7, 112, 3, 64, 2),
            conv(3, 56, 64, 64, 1),
            Layer::matmul("m", 128, 3072, 768),
        ] {
            let t = auto_tile(&l, &p);
            let piece = padded_problem(&l, &t, &arch).unwrap();
            assert_eq!(mapping_to_tiles(&l, &piece.mapping, p.dim), t, "{}", l.name);
        }
    }
}
