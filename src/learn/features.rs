//! Features of a (layer, mapping) point for the learned latency predictor, differentiable with
//! respect to the mapping's log tile factors.
//!
//! The search moves the *log* tile factors of the inner levels (L0..L2, temporal and spatial);
//! the DRAM factors are derived as `log dim - sum of inner logs` (MODEL.md section 8). Every
//! feature is written once, generically over [`Num`], so the same code gives plain values for
//! prediction and exact forward-mode gradients ([`Dual`]) for the search. Discrete parts (loop
//! orders, which loops count for reuse) are read from the integer mapping and held constant.

use super::data::LEVELS;
use crate::gemmini::tiler::is_matmul;
use crate::ir::{Dim, Layer, Mapping, Tensor};
use std::ops::{Add, Mul, Sub};

/// Inner levels whose factors are free variables (all but DRAM).
pub const INNER: usize = LEVELS - 1;
/// Number of log-factor variables: per inner level, 7 temporal then 7 spatial.
pub const N_FACTOR_VARS: usize = INNER * 14;
/// Analytical roofline terms (log cycles): compute, accumulator, scratchpad, DRAM.
pub const N_TERMS: usize = 4;
/// All differentiable inputs: the log factors, then the log roofline terms.
pub const N_VARS: usize = N_FACTOR_VARS + N_TERMS;

/// Position of a log factor among the variables.
pub fn var_index(level: usize, dim: Dim, spatial: bool) -> usize {
    level * 14 + usize::from(spatial) * 7 + dim.index()
}

/// The log tile factors of the inner levels of an integer mapping (the search's starting point).
pub fn log_factors(m: &Mapping) -> [f64; N_FACTOR_VARS] {
    let mut u = [0.0; N_FACTOR_VARS];
    for (l, lm) in m.levels.iter().take(INNER).enumerate() {
        for d in Dim::ALL {
            u[var_index(l, d, false)] = (lm.temporal[d.index()] as f64).ln();
            u[var_index(l, d, true)] = (lm.spatial[d.index()] as f64).ln();
        }
    }
    u
}

/// Scalars the feature code runs on: `f64` for values, [`Dual`] for values with gradients.
pub trait Num: Copy + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self> {
    /// A constant.
    fn cst(x: f64) -> Self;
    /// The value part.
    fn value(&self) -> f64;
    /// Natural logarithm.
    fn ln(self) -> Self;
    /// Exponential.
    fn exp(self) -> Self;
    /// Multiply by a constant.
    fn scale(self, k: f64) -> Self;
}

impl Num for f64 {
    fn cst(x: f64) -> Self {
        x
    }
    fn value(&self) -> f64 {
        *self
    }
    fn ln(self) -> Self {
        f64::ln(self)
    }
    fn exp(self) -> Self {
        f64::exp(self)
    }
    fn scale(self, k: f64) -> Self {
        self * k
    }
}

/// A value with its gradient over all [`N_VARS`] inputs (forward-mode automatic differentiation).
#[derive(Clone, Copy, Debug)]
pub struct Dual {
    pub v: f64,
    pub g: [f64; N_VARS],
}

impl Dual {
    /// The independent variable number `i` at value `v`.
    pub fn var(v: f64, i: usize) -> Dual {
        let mut g = [0.0; N_VARS];
        g[i] = 1.0;
        Dual { v, g }
    }
    fn map(self, v: f64, dv: f64) -> Dual {
        let mut g = self.g;
        g.iter_mut().for_each(|x| *x *= dv);
        Dual { v, g }
    }
}

impl Add for Dual {
    type Output = Dual;
    fn add(mut self, o: Dual) -> Dual {
        self.v += o.v;
        self.g.iter_mut().zip(o.g.iter()).for_each(|(a, b)| *a += b);
        self
    }
}

impl Sub for Dual {
    type Output = Dual;
    fn sub(mut self, o: Dual) -> Dual {
        self.v -= o.v;
        self.g.iter_mut().zip(o.g.iter()).for_each(|(a, b)| *a -= b);
        self
    }
}

impl Mul for Dual {
    type Output = Dual;
    fn mul(self, o: Dual) -> Dual {
        let mut g = [0.0; N_VARS];
        for (k, x) in g.iter_mut().enumerate() {
            *x = self.g[k] * o.v + o.g[k] * self.v;
        }
        Dual { v: self.v * o.v, g }
    }
}

impl Num for Dual {
    fn cst(x: f64) -> Self {
        Dual {
            v: x,
            g: [0.0; N_VARS],
        }
    }
    fn value(&self) -> f64 {
        self.v
    }
    fn ln(self) -> Self {
        self.map(self.v.ln(), 1.0 / self.v)
    }
    fn exp(self) -> Self {
        let e = self.v.exp();
        self.map(e, e)
    }
    fn scale(self, k: f64) -> Self {
        self.map(self.v * k, k)
    }
}

/// `ln(sum exp(x))`, shifted by the largest value so it never overflows.
fn lse<T: Num>(xs: &[T]) -> T {
    let m = xs
        .iter()
        .map(|x| x.value())
        .fold(f64::NEG_INFINITY, f64::max);
    let mut s = T::cst(0.0);
    for &x in xs {
        s = s + (x - T::cst(m)).exp();
    }
    T::cst(m) + s.ln()
}

/// The largest of a set of terms (its gradient is the largest term's).
fn hard_max<T: Num>(xs: &[T]) -> T {
    let mut best = xs[0];
    for &x in &xs[1..] {
        if x.value() > best.value() {
            best = x;
        }
    }
    best
}

/// The smaller of two terms (its gradient is the smaller term's).
fn hard_min<T: Num>(a: T, b: T) -> T {
    hard_max(&[a.scale(-1.0), b.scale(-1.0)]).scale(-1.0)
}

/// Sum of a set of terms (a `T` has no `Sum` impl).
fn sum<T: Num>(xs: impl IntoIterator<Item = T>) -> T {
    xs.into_iter().fold(T::cst(0.0), |a, b| a + b)
}

/// The feature the `dnn` network's output is added to (log cycles of a mapping-only roofline).
pub const BASE_DNN: &str = "base.log_roof_proxy";
/// The feature the `both` network's output is added to: the log analytical latency.
pub const BASE_BOTH: &str = "roof.log_max";
/// The feature added to every network's output as a fixed offset (see [`offset_index`]): the
/// log ratio of a physical model of how the RTL data was measured to the set's base, so each
/// network learns only what that model misses.
///
/// The model: Gemmini's library runs a layer as one call per DRAM-level tile ([`TILE_CALL_CYCLES`]
/// each, plus [`LAYER_CYCLES`] per layer) doing its array work, `DIM` cycles per block product
/// on the 16 x 16 array. A convolution is bounded by that, its output writes ([`WRITE_CYCLES`])
/// or the memory terms (the roofline's for `both`, DRAM for `dnn`), plus its tile reloads, the
/// pages its DMA walks ([`PAGE_CYCLES`]) and the lines its loads miss in the L2 cache
/// ([`L2_BYTES`]). A matrix multiply runs as the DOSA
/// harness emulates a `pe x pe` array (`pe` = the mapping's larger spatial factor, at most 16):
/// dims padded to `pe`, tiles in `pe`-blocks of at least one, each block a full 16 x 16 block
/// product and load. Why: in the training file the analytical latency counts a mapping's
/// spatial factors as the array it runs on, which the RTL does not (its array is always 16 x
/// 16); within each matrix-multiply layer the emulated array explains the measured cycles with
/// log-error spread 0.63 against 1.16 for the analytical latency, and as the offset it took
/// cross-validation by layer from 41.9 % to 31.2 % MAPE (Spearman 0.967 -> 0.977).
pub const OFFSET: &str = "gemmini.log_harness_offset";
/// Bytes per cycle of Gemmini's DMA (its 128-bit system bus), for the reload time of [`OFFSET`].
const DMA_BYTES_PER_CYCLE: f64 = 16.0;
/// Sharpness of the smooth maximum in the roofline proxy.
const ROOF_K: f64 = 4.0;
/// `DIM` of the built-in Gemmini (the RTL the data was measured on): the lanes of its array and
/// the words of one DMA row. Features are constants of that machine, so they read it here; a
/// test checks it against [`crate::gemmini`]'s own parameters.
const GEMMINI_DIM: f64 = 16.0;

/// Bytes of a virtual-memory page. Gemmini's DMA translates addresses through a small TLB, so
/// the pages a mapping's loads touch cost time that bytes alone do not show. Why: in the
/// training file, inside each layer, the count of pages touched follows the measured latency
/// over base + reload more closely (correlation 0.48) than the DRAM iterations (0.38) or DMA
/// rows (0.21); as features, cross-validation by layer improved 43.3 % -> 41.9 % MAPE.
const PAGE_BYTES: f64 = 4096.0;
/// Cycles of each DMA row of a convolution's output (one pixel's channels, at most DIM), a bound
/// of [`OFFSET`]'s model like the array's work. Why: the searched rows of a layer with few output
/// channels per DMA row but much output (a 1x1 conv to 2 channels, a 3x3 conv from 1 input
/// channel) measure up to 8x their roofline; as this bound the model (no learning) goes from
/// Spearman 0.955 to 0.970 on the searched rows and leaves the training file's layer-held-out
/// rows as they were (34.1 -> 34.2 % MAPE, offline; 15 and 30 fit worse).
const WRITE_CYCLES: f64 = 20.0;
/// Cycles each page a convolution's DMA walks adds to [`OFFSET`]'s model (an address
/// translation per page). Why: a layer whose tiles move few bytes per page, like a 3x3 conv
/// with 1024 output channels whose weight rows sit 1 KiB apart, measures up to 3.7x its
/// roofline in the searched rows; with this term the model (no learning) goes from 38.2 % to
/// 34.1 % MAPE on the training file's layer-held-out rows and Spearman 0.937 -> 0.955 on the
/// searched rows (offline; 10-15 fit about equally, 20 and more worse).
const PAGE_CYCLES: f64 = 12.0;
/// Bytes of the L2 cache between Gemmini's DMA and DRAM: Chipyard's default inclusive cache
/// (`WithInclusiveCache`: 512 KiB, 8 ways), in which a tile that a DRAM loop brings back soon
/// enough is still held. Each line that misses adds [`LINE_BYTES`] at the DMA's bandwidth to
/// [`OFFSET`]'s model, beside the reload of the bytes the tiles use. Why: a convolution's
/// tiles that reuse nothing within the cache measure far above the model; U-Net's 28x28
/// C=1024 K=1024 bottleneck with the whole 3x3 kernel and all input channels in a 16-channel
/// K tile (weight rows 1 KiB apart, so every 16-byte row costs a 64-byte line, 590 KB of lines
/// reloaded for each of 14 output tiles) measures 2.0-2.2x the model, where its mapping with
/// the K loop innermost (four K tiles share each line, the input tile is reused) measures 1.1x.
/// With the term, no constant fitted (the cache and line are the hardware's defaults, the cost
/// the DMA's), the model (no learning, one constant) goes from 12.2 % / Spearman 0.969 to
/// 11.3 % / 0.971 on the searched rows and from 44.9 % / 0.970 to 44.2 % / 0.971 on the
/// training file (offline; a line-level LRU simulation of the same loads gives 11.3 % / 0.971
/// and 43.5 % / 0.971).
const L2_BYTES: f64 = 512.0 * 1024.0;
/// Bytes of an L2 cache line (`CacheBlockBytes`), the unit a DMA load misses in.
const LINE_BYTES: f64 = 64.0;
/// Bytes one DMA row moves at most (`MAX_BYTES` in Gemmini's `gemmini_params.h`: MAX_BLOCK_LEN
/// blocks of DIM one-byte elements).
const DMA_MAX_BYTES: f64 = 64.0;

/// Sharpness of the smooth maximum used for the derived PE array side.
const SMOOTH_MAX_K: f64 = 8.0;
/// Cycles of one tile call of Gemmini's library beyond its array work (see [`OFFSET`]). Read off
/// the training file as one constant for both kinds of layer (100 and 200 fit it about equally;
/// 400 and more, or none, clearly worse).
const TILE_CALL_CYCLES: f64 = 200.0;
/// Cycles of one layer's call of Gemmini's library beyond its tiles (see [`OFFSET`]): the
/// training file's smallest layer (256 MACs) measures 1222-1841 cycles.
const LAYER_CYCLES: f64 = 1000.0;

/// How much more work a convolution is when run as a square image of side `max(P, Q)`:
/// `max(P, Q)^2 / (P Q)`, 1 for matrix multiplies ([`is_matmul`]).
///
/// Why: in the shared RTL data the four layers with `P = 10 Q` measure 13-16x their analytical
/// latency while every square layer measures 1.1-9.5x; the harness that produced the data ran
/// convolutions through a square-image interface. As a feature it lets a held-out non-square
/// layer borrow what the others teach.
pub fn square_work(layer: &Layer) -> f64 {
    if is_matmul(layer) {
        return 1.0;
    }
    let [_, _, p, q, ..] = layer.dims;
    let (p, q) = (p.max(1) as f64, q.max(1) as f64);
    let side = p.max(q);
    side * side / (p * q)
}

/// 1 for a convolution with an even kernel side (2, 4, 6), else 0.
///
/// Why: in the shared RTL data all four even-kernel layers measure 4.7-9.5x their analytical
/// latency (after [`square_work`]) against 1.15-5.1x for the thirty odd-kernel ones; what the
/// RTL does differently (padding, window alignment) is not in the roofline, so a held-out
/// even-kernel layer can only learn it from the others through this flag.
pub fn even_kernel(layer: &Layer) -> f64 {
    let [r, s, ..] = layer.dims;
    let even = |k: u64| k > 1 && k % 2 == 0;
    if even(r) || even(s) {
        1.0
    } else {
        0.0
    }
}

/// How much of Gemmini's array a layer's channels `d` (C or K) leave idle at best:
/// `DIM ceil(n / DIM) / n` for `n` channels on the DIM-wide array (1 when `n` is a multiple of
/// DIM = 16).
///
/// Why: layers with few input or output channels (a network's first and last layers) measure
/// well above their analytical latency even after its own padding of the array's lanes (in the
/// training file the nine layer shapes with C < 16 measure 1.4-14x base + reload, the median
/// shape 1.6x). As a feature it measured a small, consistent gain: on the searched rows,
/// layer-disjoint, `both` MAPE fell in each of six seeds (mean 15.75 % -> 15.24 %, Spearman
/// 0.932 -> 0.935), and cross-validation by layer on the training file 44.2 % -> 43.3 %.
pub fn channel_padding(layer: &Layer, d: Dim) -> f64 {
    let n = layer.dim(d).max(1) as f64;
    (n / GEMMINI_DIM).ceil() * GEMMINI_DIM / n
}

/// Whether a feature set includes the analytical roofline terms (`both`) or not (`dnn`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Set {
    MappingOnly,
    WithRoofline,
}

/// Compute the features of `layer` mapped by `mapping` (which fixes orders and reuse cuts) at
/// log factors `u` (length [`N_FACTOR_VARS`]) and, for [`Set::WithRoofline`], log roofline terms.
/// With `names`, the feature names are pushed too (same order).
pub fn compute<T: Num>(
    layer: &Layer,
    mapping: &Mapping,
    u: &[T],
    terms: Option<&[T; N_TERMS]>,
    mut names: Option<&mut Vec<String>>,
    out: &mut Vec<T>,
) {
    out.clear();
    let mut put = |name: &dyn Fn() -> String, v: T| {
        if let Some(n) = names.as_deref_mut() {
            n.push(name());
        }
        out.push(v);
    };
    let ln = |x: f64| x.max(1e-300).ln();
    let ldim = layer.dims.map(|d| ln(d as f64));
    // --- the layer (constant) ---
    for d in Dim::ALL {
        put(&|| format!("layer.log_{d}"), T::cst(ldim[d.index()]));
    }
    put(
        &|| "layer.log_wstride".into(),
        T::cst(ln(layer.wstride as f64)),
    );
    put(
        &|| "layer.log_hstride".into(),
        T::cst(ln(layer.hstride as f64)),
    );
    put(
        &|| "layer.log_square_work".into(),
        T::cst(square_work(layer).ln()),
    );
    put(&|| "layer.even_kernel".into(), T::cst(even_kernel(layer)));
    for d in [Dim::C, Dim::K] {
        put(
            &|| format!("layer.log_pad_{d}"),
            T::cst(channel_padding(layer, d).ln()),
        );
    }
    let log_macs = ldim.iter().sum::<f64>();
    put(&|| "layer.log_macs".into(), T::cst(log_macs));
    for t in Tensor::ALL {
        put(
            &|| format!("layer.log_words_{}", t.letter()),
            T::cst(ln(layer.tensor_words(t))),
        );
    }

    // --- per-level log factors; DRAM takes the rest ---
    let lt = |l: usize, d: Dim| -> T {
        if l < INNER {
            u[var_index(l, d, false)]
        } else {
            let inner =
                sum((0..INNER).flat_map(|k| [u[var_index(k, d, false)], u[var_index(k, d, true)]]));
            T::cst(ldim[d.index()]) - inner
        }
    };
    let ls = |l: usize, d: Dim| -> T {
        if l < INNER {
            u[var_index(l, d, true)]
        } else {
            T::cst(0.0)
        }
    };
    for l in 0..LEVELS {
        for d in Dim::ALL {
            put(&|| format!("f.L{l}.{d}"), lt(l, d));
        }
        if l < INNER {
            for d in Dim::ALL {
                put(&|| format!("f.L{l}.{d}X"), ls(l, d));
            }
        }
    }

    // --- derived hardware (MODEL.md section 4), smooth ---
    let s_c = sum((0..INNER).map(|l| ls(l, Dim::C)));
    let s_k = sum((0..INNER).map(|l| ls(l, Dim::K)));
    let log_pe = lse(&[
        s_c.scale(SMOOTH_MAX_K),
        s_k.scale(SMOOTH_MAX_K),
        T::cst(SMOOTH_MAX_K * 2f64.ln()),
    ])
    .scale(1.0 / SMOOTH_MAX_K);
    put(&|| "hw.log_pe".into(), log_pe);
    put(&|| "hw.log_spatial_C".into(), s_c);
    put(&|| "hw.log_spatial_K".into(), s_k);
    put(&|| "hw.log_util".into(), s_c + s_k - log_pe.scale(2.0));

    // Cumulative log tile per dim through level l (temporal and spatial).
    let cum = |l: usize, d: Dim| sum((0..=l).flat_map(|k| [lt(k, d), ls(k, d)]));
    // Log extent of the input window along one image axis at level l: the columns
    // (`P`, `R`, W stride) or the rows (`Q`, `S`, H stride).
    let window = |l: usize, cols: bool| -> T {
        let (outer, filt, stride, dil) = if cols {
            (Dim::P, Dim::R, layer.wstride, layer.wdilation)
        } else {
            (Dim::Q, Dim::S, layer.hstride, layer.hdilation)
        };
        log_extent(cum(l, outer), cum(l, filt), stride, dil)
    };
    let tile = |l: usize, t: Tensor| -> T {
        match t {
            Tensor::W | Tensor::O => sum(Dim::ALL
                .into_iter()
                .filter(|d| d.indexes(t))
                .map(|d| cum(l, d))),
            Tensor::I => window(l, true) + window(l, false) + cum(l, Dim::C) + cum(l, Dim::N),
        }
    };
    let mut tiles = [[T::cst(0.0); 3]; INNER];
    for (l, row) in tiles.iter_mut().enumerate() {
        for t in Tensor::ALL {
            row[t.index()] = tile(l, t);
            put(&|| format!("tile.L{l}.{}", t.letter()), row[t.index()]);
        }
    }
    let (w2, i2, o1) = (tiles[2][0], tiles[2][1], tiles[1][2]);
    put(&|| "hw.log_sp_words".into(), lse(&[w2, i2]));
    put(&|| "hw.log_acc_words".into(), log_pe + o1);

    // --- work ---
    put(&|| "work.log_compute".into(), T::cst(log_macs) - s_c - s_k);
    for l in 0..LEVELS {
        put(
            &|| format!("work.log_iters.L{l}"),
            sum(Dim::ALL.into_iter().map(|d| lt(l, d))),
        );
    }

    // Smooth `ln max(1, e^x)`: a count that cannot fall below one.
    let pos = |x: T| lse(&[T::cst(0.0), x.scale(ROOF_K)]).scale(1.0 / ROOF_K);

    // --- reuse at DRAM: fills of each tensor's tile (MODEL.md section 5's stationarity rule) ---
    let keeper = |t: Tensor| if t == Tensor::O { 1 } else { 2 };
    let mut traffic = Vec::with_capacity(3);
    let mut rows = Vec::with_capacity(3);
    for t in Tensor::ALL {
        let mut started = false;
        let mut fills = T::cst(0.0);
        for l in keeper(t) + 1..LEVELS {
            for &d in mapping.levels[l].order.iter().rev() {
                let f = mapping.levels[l].temporal[d.index()];
                if !started && d.indexes(t) && f > 1 {
                    started = true;
                }
                if started {
                    fills = fills + lt(l, d);
                }
            }
        }
        let k = keeper(t);
        put(&|| format!("reuse.log_fills_{}", t.letter()), fills);
        let tr = fills + tiles[k][t.index()];
        put(&|| format!("reuse.log_dram_{}", t.letter()), tr);
        traffic.push(tr);
        // DMA moves rows of the innermost (contiguous) dim, at most DIM words each: a tile of
        // few channels costs as many requests as a full one.
        let inner = match t {
            Tensor::I => cum(k, Dim::C),
            _ => cum(k, Dim::K),
        };
        let per_row = pos(inner - T::cst(GEMMINI_DIM.ln()));
        let r = tr - inner + per_row;
        put(&|| format!("dma.log_rows_{}", t.letter()), r);
        rows.push(r);
    }
    let all_rows = lse(&rows);
    put(&|| "dma.log_rows".into(), all_rows);
    let iters3 = sum(Dim::ALL.into_iter().map(|d| lt(LEVELS - 1, d)));
    put(&|| "iter.log_rows".into(), all_rows - iters3);
    put(&|| "iter.log_macs".into(), T::cst(log_macs) - iters3);
    put(
        &|| "iter.log_compute".into(),
        T::cst(log_macs) - s_c - s_k - iters3,
    );
    let dram = lse(&traffic);
    put(&|| "reuse.log_dram".into(), dram);
    let compute = T::cst(log_macs) - s_c - s_k;
    let dram_cycles = dram - T::cst(8f64.ln());
    put(
        &|| "reuse.log_dram_over_compute".into(),
        dram_cycles - compute,
    );
    // A mapping-only roofline proxy: the `dnn` predictor learns its log residual.
    let proxy = lse(&[compute.scale(ROOF_K), dram_cycles.scale(ROOF_K)]).scale(1.0 / ROOF_K);
    put(&|| BASE_DNN.into(), proxy);
    // The set's base (replaced by the analytical latency for `both` below).
    let mut base = proxy;

    // --- loop order (constant): relative position of each non-unit loop at L1 and DRAM ---
    for l in [1, 3] {
        let lm = &mapping.levels[l];
        let live: Vec<Dim> = lm.active_loops();
        for d in Dim::ALL {
            let pos = live
                .iter()
                .position(|&x| x == d)
                .map_or(0.0, |p| (p + 1) as f64 / live.len() as f64);
            put(&|| format!("order.L{l}.{d}"), T::cst(pos));
        }
    }

    // --- the time of Gemmini's tile loop as the measurement harness ran it ---
    let t2 = |d: Dim| cum(2, d);
    let ldim16 = T::cst(GEMMINI_DIM.ln());
    // `ln max(1, e^x)`, exact at integer points: a count of tiles or blocks is at least one.
    let one = |x: T| hard_max(&[T::cst(0.0), x]);
    let matmul = is_matmul(layer);
    let harness = if matmul {
        // The harness emulates a `pe x pe` array (`pe` = the mapping's larger spatial factor,
        // at most DIM) on the DIM x DIM one: each dim is padded to `pe`, tiled in `pe`-blocks
        // (at least one per tile), and each block product takes DIM cycles on the real array.
        let pe = hard_max(&[s_c, s_k]);
        let pe = hard_min(pe, ldim16);
        let (mut work, mut calls, mut tiles) = (ldim16, T::cst(0.0), [T::cst(0.0); 3]);
        // (log extent, log tile) of the product's I (= P N), J (= K) and K (= C).
        let ld = |d: Dim| ldim[d.index()];
        for (k, (lim, tile)) in [
            (ld(Dim::P) + ld(Dim::N), t2(Dim::P) + t2(Dim::N)),
            (ld(Dim::K), t2(Dim::K)),
            (ld(Dim::C), t2(Dim::C)),
        ]
        .into_iter()
        .enumerate()
        {
            let blocks = one(T::cst(lim) - pe);
            tiles[k] = one(tile - pe);
            let count = one(blocks - tiles[k]);
            work = work + count + tiles[k];
            calls = calls + count;
        }
        // Every call loads its A (I x K) and B (K x J) tiles afresh, DIM x DIM bytes a block,
        // at the DMA's bandwidth; the output is written once.
        let [ti, tj, tk] = tiles;
        let loads = calls
            + lse(&[ti + tk, tk + tj])
            + T::cst((GEMMINI_DIM * GEMMINI_DIM / DMA_BYTES_PER_CYCLE).ln());
        let store = T::cst(ln(layer.tensor_words(Tensor::O)) - DMA_BYTES_PER_CYCLE.ln());
        lse(&[work, calls + T::cst(TILE_CALL_CYCLES.ln()), loads, store])
    } else {
        // One call per DRAM iteration of the square image (see [`square_work`]); per call,
        // every output pixel of the tile meets every kernel position once per block of DIM
        // input and DIM output channels.
        let calls = iters3 + T::cst(square_work(layer).ln());
        let per = sum([Dim::N, Dim::P, Dim::Q, Dim::R, Dim::S].map(t2))
            + one(t2(Dim::C) - ldim16)
            + one(t2(Dim::K) - ldim16);
        calls + lse(&[per, T::cst(TILE_CALL_CYCLES.ln())])
    };
    put(&|| "gemmini.log_harness".into(), harness);
    // What bounds a convolution besides its array time: its output writes (one DMA row per
    // pixel and block of at most DIM channels, [`WRITE_CYCLES`] each) and, for `dnn`, DRAM
    // traffic, which the roofline's own memory terms replace for `both` below.
    let lsum = |ds: &[Dim]| ds.iter().map(|d| ldim[d.index()]).sum::<f64>();
    let writes = T::cst(lsum(&[Dim::N, Dim::P, Dim::Q, Dim::K])) - t2(Dim::K)
        + one(t2(Dim::K) - ldim16)
        + T::cst(WRITE_CYCLES.ln());
    put(&|| "gemmini.log_writes".into(), writes);
    let mut bound = hard_max(&[harness, dram_cycles, writes]);

    // --- the analytical roofline (only for the `both` predictor) ---
    if let Some(r) = terms {
        const NAMES: [&str; N_TERMS] = ["compute", "acc", "sp", "dram"];
        for (k, name) in NAMES.iter().enumerate() {
            put(&|| format!("roof.log_{name}"), r[k]);
        }
        base = hard_max(r);
        put(&|| BASE_BOTH.into(), base);
        put(&|| "roof.log_smooth_max".into(), lse(r));
        bound = hard_max(&[harness, writes, r[1], r[2], r[3]]);
    }

    // --- Gemmini's tile reloads ---
    // Gemmini's C library loads every DRAM iteration's input and weight tiles afresh (each call
    // is one command to the hardware conv loop, which loads all of the call's tiles; nothing
    // carries over from one call to the next, and the data fit no overlap of the loads with the
    // array work: `models/README.md`), where the cost model, like Timeloop, keeps a tile that
    // does not change. The time of those loads at the DMA's bandwidth, added to the base: in the
    // searched-mapping rows it explains why bert's 768x3072 matmul measures 1.01x its roofline
    // at 24 DRAM iterations and 2.41x at 192 (offline: base + reload alone scores 16.8 % MAPE
    // there against 26.8 % for the roofline).
    let reload = lse(&[
        iters3 + lse(&[w2, i2]),
        T::cst(ln(layer.tensor_words(Tensor::O))),
    ]) - T::cst(DMA_BYTES_PER_CYCLE.ln());
    put(&|| "gemmini.log_reload".into(), reload);
    // --- virtual-memory pages Gemmini's DMA walks (see [`PAGE_BYTES`]) ---
    // Per DRAM iteration, as Gemmini's conv loop moves its tiles: each weight row group (one per
    // kernel position and [`DMA_MAX_BYTES`] output channels) spans `C_t K` bytes; each input
    // row of the tile spans its columns' `C` bytes, once per block of input channels; each
    // output row is written once. A span shorter than a page still costs one.
    let lpage = T::cst(PAGE_BYTES.ln());
    let lblock = T::cst(DMA_MAX_BYTES.ln());
    let (icols, irows) = (window(2, true), window(2, false));
    let lk = T::cst(ldim[Dim::K.index()]);
    let wpages =
        iters3 + pos(t2(Dim::K) - lblock) + t2(Dim::R) + t2(Dim::S) + pos(t2(Dim::C) + lk - lpage);
    let ipages = iters3
        + t2(Dim::N)
        + irows
        + pos(icols + T::cst(ldim[Dim::C.index()]) - lpage)
        + pos(t2(Dim::C) - lblock);
    let out_iters = sum([Dim::P, Dim::Q, Dim::K, Dim::N].map(|d| lt(LEVELS - 1, d)));
    let opages = out_iters + t2(Dim::N) + t2(Dim::Q) + pos(t2(Dim::P) + lk - lpage);
    let pages = lse(&[wpages, ipages, opages]);
    // --- lines the DMA's loads miss in the L2 cache (see [`L2_BYTES`]) ---
    let misses = l2_misses(layer, mapping, &ldim, &lt, &t2);
    let model = if matmul {
        harness
    } else {
        lse(&[
            bound,
            reload,
            pages + T::cst(PAGE_CYCLES.ln()),
            misses + T::cst((LINE_BYTES / DMA_BYTES_PER_CYCLE).ln()),
        ])
    };
    let model = lse(&[model, T::cst(LAYER_CYCLES.ln())]);
    put(&|| OFFSET.into(), model - base);
    put(&|| "gemmini.log_pages".into(), pages);
    put(&|| "gemmini.log_pages_over_base".into(), pages - base);
    put(&|| "gemmini.log_l2_misses".into(), misses);
}

/// Log extent of the input along one image axis for `e^outer` outputs and `e^filt` kernel taps
/// at `stride` and dilation `dil` (relaxed counts; never below 1e-6).
fn log_extent<T: Num>(outer: T, filt: T, stride: u64, dil: u64) -> T {
    let (st, di) = (stride as f64, dil as f64);
    let x = outer.exp().scale(st) + filt.exp().scale(di) + T::cst(1.0 - st - di);
    if x.value() > 1e-6 {
        x.ln()
    } else {
        T::cst(1e-6f64.ln())
    }
}

/// Log count of the cache lines a convolution's input and weight loads miss in the L2 cache
/// ([`L2_BYTES`]), by reuse distance over the DRAM loops: walking them from the innermost out,
/// a loop's tiles come back from the cache when one iteration of it (the lines its inner loops
/// touch) fits in the cache; from the first loop that does not fit, every iteration of it and of
/// the loops outside it loads its lines from DRAM again. A line holds [`LINE_BYTES`] of one
/// weight row (a kernel position and input channel, the output channels contiguous) or one
/// input pixel (its channels contiguous), so a tile of 16 of 1024 output channels still moves
/// whole lines. Which loops fit is read from the values (held constant for the gradient, like
/// the loop orders).
fn l2_misses<T: Num>(
    layer: &Layer,
    mapping: &Mapping,
    ldim: &[f64; 7],
    lt: &dyn Fn(usize, Dim) -> T,
    t2: &dyn Fn(Dim) -> T,
) -> T {
    let lline = LINE_BYTES.ln();
    // Lines per row of a tensor whose rows are `full` words and of which `span` are used: a
    // whole line at least, the whole row at most.
    let per_row = |span: T, full: f64| {
        hard_min(hard_max(&[span, T::cst(lline)]), T::cst(full)) - T::cst(lline)
    };
    let lines = |span: &[T; 7]| -> T {
        let g = |d: Dim| span[d.index()];
        let w = g(Dim::R) + g(Dim::S) + g(Dim::C) + per_row(g(Dim::K), ldim[Dim::K.index()]);
        let i = g(Dim::N)
            + log_extent(g(Dim::P), g(Dim::R), layer.wstride, layer.wdilation)
            + log_extent(g(Dim::Q), g(Dim::S), layer.hstride, layer.hdilation)
            + per_row(g(Dim::C), ldim[Dim::C.index()]);
        lse(&[w, i])
    };
    let capacity = (L2_BYTES / LINE_BYTES).ln();
    let mut span = Dim::ALL.map(t2);
    let mut loops = mapping.levels[LEVELS - 1].order.iter().rev();
    let mut outside = T::cst(0.0);
    for &d in loops.by_ref() {
        if lines(&span).value() > capacity {
            outside = lt(LEVELS - 1, d);
            break;
        }
        span[d.index()] = span[d.index()] + lt(LEVELS - 1, d);
    }
    for &d in loops {
        outside = outside + lt(LEVELS - 1, d);
    }
    lines(&span) + outside
}

/// Position of the base feature of a set: the prediction is `exp(base + network output)`.
pub fn base_index(set: Set) -> usize {
    index_of(
        set,
        if set == Set::WithRoofline {
            BASE_BOTH
        } else {
            BASE_DNN
        },
    )
}

/// Position of the feature `name` in a set (every set has the ones asked for here).
fn index_of(set: Set, name: &str) -> usize {
    names(set)
        .iter()
        .position(|n| n == name)
        .unwrap_or_else(|| panic!("every feature set has `{name}`"))
}

/// Position of [`OFFSET`]: `ln(model / base)`, added to the network's output so that a
/// prediction is `model x exp(network)`: the network learns what is left after the physical
/// model of the measurement.
pub fn offset_index(set: Set) -> usize {
    index_of(set, OFFSET)
}

/// Names of the features of a set, in order (stored in a model file to catch version skew).
pub fn names(set: Set) -> Vec<String> {
    let layer = Layer::conv("x", [1; 7], 1, 1);
    let m = unit_mapping();
    let u = [0.0; N_FACTOR_VARS];
    let terms = [0.0; N_TERMS];
    let mut names = Vec::new();
    let mut out = Vec::new();
    let t = (set == Set::WithRoofline).then_some(&terms);
    compute::<f64>(&layer, &m, &u, t, Some(&mut names), &mut out);
    names
}

fn unit_mapping() -> Mapping {
    use crate::ir::{LevelMapping, TensorSet};
    Mapping::new(
        (0..LEVELS)
            .map(|_| LevelMapping::unit(TensorSet::default()))
            .collect(),
    )
}

/// Plain feature values of an integer mapping (prediction; no gradients).
pub fn values(
    layer: &Layer,
    mapping: &Mapping,
    log_terms: Option<&[f64; N_TERMS]>,
    out: &mut Vec<f64>,
) {
    let u = log_factors(mapping);
    compute::<f64>(layer, mapping, &u, log_terms, None, out);
}

/// Features and their Jacobian (`jac[i][v]` = d feature i / d variable v) at a relaxed point.
pub fn with_jacobian(
    layer: &Layer,
    mapping: &Mapping,
    u: &[f64; N_FACTOR_VARS],
    log_terms: Option<&[f64; N_TERMS]>,
) -> Vec<Dual> {
    let ud: Vec<Dual> = u
        .iter()
        .enumerate()
        .map(|(i, &x)| Dual::var(x, i))
        .collect();
    let td = log_terms.map(|t| {
        let mut a = [Dual::cst(0.0); N_TERMS];
        for k in 0..N_TERMS {
            a[k] = Dual::var(t[k], N_FACTOR_VARS + k);
        }
        a
    });
    let mut out = Vec::new();
    compute::<Dual>(layer, mapping, &ud, td.as_ref(), None, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::parse_compact;

    #[test]
    fn harness_features_of_layer_shapes() {
        let conv = |r, p, q| Layer::conv("c", [r, r, p, q, 8, 8, 1], 1, 1);
        // The shapes of the shared RTL data: P = 10 Q runs as a square of side P.
        assert!((square_work(&conv(3, 60, 6)) - 10.0).abs() < 1e-12);
        assert!((square_work(&conv(3, 6, 60)) - 10.0).abs() < 1e-12);
        assert_eq!(square_work(&conv(3, 28, 28)), 1.0);
        // A matrix multiply (P = M, Q = 1) is not an image.
        assert_eq!(square_work(&Layer::matmul("m", 512, 512, 32)), 1.0);
        assert_eq!(even_kernel(&conv(2, 14, 14)), 1.0);
        assert_eq!(even_kernel(&conv(6, 14, 14)), 1.0);
        assert_eq!(even_kernel(&conv(3, 14, 14)), 0.0);
        assert_eq!(even_kernel(&conv(1, 14, 14)), 0.0);
    }

    fn example() -> (Layer, Mapping) {
        let l = Layer::conv("c1", [7, 7, 112, 112, 3, 64, 1], 2, 2);
        let m =
            parse_compact("L3[WIO] K8 Q28 - L2[WI] N1 K4X - L1[O] K2 S7 R7 Q4 P7 C3X - L0[W] P16")
                .unwrap();
        (l, m)
    }

    /// The training file's 512 x 512 x 32 matrix multiply mapped with spatial C4 K4.
    fn matmul_example() -> (Layer, Mapping) {
        let l = Layer::matmul("m", 512, 512, 32);
        let m =
            parse_compact("L3[WIO] C16 K4 P2 - L2[WI] N1 K4X - L1[O] K2 C8 P2 C4X - L0[W] P128")
                .unwrap();
        (l, m)
    }

    /// The mapping-only feature names and values of a layer and mapping (no roofline terms).
    fn mapping_only(l: &Layer, m: &Mapping) -> (Vec<String>, Vec<f64>) {
        let mut v = Vec::new();
        values(l, m, None, &mut v);
        (names(Set::MappingOnly), v)
    }

    fn get(names: &[String], vals: &[f64], n: &str) -> f64 {
        vals[names
            .iter()
            .position(|x| x == n)
            .unwrap_or_else(|| panic!("no feature {n}"))]
    }

    #[test]
    fn values_of_the_model_md_example() {
        let (l, m) = example();
        let (names, v) = mapping_only(&l, &m);
        assert_eq!(names.len(), v.len());
        let e = |n: &str| get(&names, &v, n).exp();
        assert!((e("f.L3.K") - 8.0).abs() < 1e-9);
        assert!((e("f.L3.Q") - 28.0).abs() < 1e-9);
        assert!((e("f.L3.P") - 1.0).abs() < 1e-9);
        // Weight tile at L2: R7 S7 C3 K(4*2) = 1176 words; input window at L2:
        // P tile 112 -> (112-1)*2+7 = 229, Q tile 4 -> (4-1)*2+7 = 13, C 3.
        assert!((e("tile.L2.W") - 1176.0).abs() < 1e-6);
        assert!((e("tile.L2.I") - 229.0 * 13.0 * 3.0).abs() < 1e-6);
        // Output tile at L1 (L0 folded in): P112 Q4 K2.
        assert!((e("tile.L1.O") - 896.0).abs() < 1e-6);
        // Smooth max of spatial C=3, K=4 and 2 is a little above 4.
        assert!(e("hw.log_pe") > 4.0 && e("hw.log_pe") < 4.2);
        // DRAM loops K8 Q28 (K innermost... order is K then Q, Q innermost): weights are
        // indexed by K only, so W is refetched once per K iteration... Q innermost does not index
        // W, K does: fills = 8. Inputs: Q indexes I, fills = 28*8. Outputs: Q indexes O: 224.
        assert!((e("reuse.log_fills_W") - 8.0).abs() < 1e-9);
        assert!((e("reuse.log_fills_I") - 224.0).abs() < 1e-9);
        assert!((e("reuse.log_fills_O") - 224.0).abs() < 1e-9);
        assert!((get(&names, &v, "order.L3.Q") - 1.0).abs() < 1e-12);
        assert!((get(&names, &v, "order.L3.K") - 0.5).abs() < 1e-12);
    }

    /// Pages of the example's loads, 224 DRAM iterations: weights, one row group per kernel
    /// position (49) in a span of 3 x 64 bytes (under a page); inputs, one per window row (13)
    /// of 229 x 3 bytes; outputs, 224 tiles of 4 rows, each 112 x 64 bytes = 1.75 pages. The
    /// smooth maxima keep it within 1 %.
    #[test]
    fn pages_count_each_row_group_and_its_span() {
        let (l, m) = example();
        let (names, v) = mapping_only(&l, &m);
        let want = 224.0 * 49.0 + 224.0 * 13.0 + 224.0 * 4.0 * 1.75;
        let got = get(&names, &v, "gemmini.log_pages").exp();
        assert!((got / want - 1.0).abs() < 0.01, "{got} vs {want}");
        let base = get(&names, &v, BASE_DNN);
        let over = get(&names, &v, "gemmini.log_pages_over_base");
        assert!((over - (got.ln() - base)).abs() < 1e-9);
    }

    /// Gemmini reloads each DRAM iteration's input and weight tiles: for the example, 8 x 28
    /// iterations of (1176 weight + 11907 input words), plus the outputs once, at 16 bytes per
    /// cycle. The harness runs the example's 224 tiles at 200 cycles each plus their array
    /// work: a tile of 112 x 4 pixels meets 7 x 7 kernel positions with one block of channels.
    /// The whole layer fits the L2 cache, so its lines miss once: 7 x 7 x 3 weight rows of one
    /// line each and 229 x 229 input pixels of 3 bytes (see `l2_misses_follow_reuse_distance`).
    /// The offset is `ln(max(harness, memory terms) + reload + pages + misses + 1000) - base` for
    /// each set.
    #[test]
    fn harness_offset_counts_tile_calls_work_and_reloads() {
        let (l, m) = example();
        let reload = (224.0 * (1176.0 + 229.0 * 13.0 * 3.0) + 112.0 * 112.0 * 64.0) / 16.0;
        let harness = 224.0 * (112.0 * 4.0 * 49.0 + TILE_CALL_CYCLES);
        let terms = [10.0, 9.5, 11.0, 10.9];
        for (set, t) in [(Set::MappingOnly, None), (Set::WithRoofline, Some(&terms))] {
            let n = names(set);
            let mut v = Vec::new();
            values(&l, &m, t, &mut v);
            let got = get(&n, &v, "gemmini.log_reload").exp();
            assert!((got / reload - 1.0).abs() < 1e-9, "{got} vs {reload}");
            let got = get(&n, &v, "gemmini.log_harness").exp();
            assert!((got / harness - 1.0).abs() < 1e-9, "{got} vs {harness}");
            // One output DMA row per pixel and K tile of 8 channels.
            let writes = 112.0 * 112.0 * 8.0 * WRITE_CYCLES;
            let got = get(&n, &v, "gemmini.log_writes").exp();
            assert!((got / writes - 1.0).abs() < 1e-9, "{got} vs {writes}");
            // The array time bounds the example in both sets (e^11 and the writes' 2.0 M cycles
            // < 4.96 M); the pages add their cycles.
            let pages = get(&n, &v, "gemmini.log_pages").exp();
            let misses = 147.0 + 229.0 * 229.0 * 3.0 / 64.0;
            let got = get(&n, &v, "gemmini.log_l2_misses").exp();
            assert!((got / misses - 1.0).abs() < 1e-9, "{got} vs {misses}");
            let want = (harness + reload + PAGE_CYCLES * pages + 4.0 * misses + LAYER_CYCLES).ln()
                - v[base_index(set)];
            assert!((v[offset_index(set)] - want).abs() < 1e-9);
        }
    }

    #[test]
    fn output_writes_bound_a_conv_with_few_output_channels() {
        // U-Net's last layer as a search mapped it: 2 output channels, so each of its 388 x 388
        // output pixels is one DMA row, and writing them takes longer than the array's work.
        let l = Layer::conv("out", [1, 1, 388, 388, 64, 2, 1], 1, 1);
        let m =
            parse_compact("L3[WIO] Q388 - L2[WI] N1 K2X - L1[O] C4 P4 C16X - L0[W] P97").unwrap();
        let (n, v) = mapping_only(&l, &m);
        let writes = 388.0 * 388.0 * WRITE_CYCLES;
        let got = get(&n, &v, "gemmini.log_writes").exp();
        assert!((got / writes - 1.0).abs() < 1e-9, "{got} vs {writes}");
        let harness = get(&n, &v, "gemmini.log_harness").exp();
        assert!(harness < writes / 4.0, "{harness} vs {writes}");
        let reload = get(&n, &v, "gemmini.log_reload").exp();
        let pages = get(&n, &v, "gemmini.log_pages").exp();
        let misses = get(&n, &v, "gemmini.log_l2_misses").exp();
        let want = (writes + reload + PAGE_CYCLES * pages + 4.0 * misses + LAYER_CYCLES).ln()
            - v[base_index(Set::MappingOnly)];
        let got = v[offset_index(Set::MappingOnly)];
        assert!((got - want).abs() < 1e-9, "{got} vs {want}");
    }

    /// U-Net's bottleneck, two ways (rows of the searched file). Whole 3x3 kernel and all 1024
    /// input channels in a K tile of 16: one call touches 9216 weight rows of one 64-byte line
    /// each (16 of their bytes used) and 16 x 6 input pixels of 16 lines, 10752 lines, more
    /// than the 8192 the cache holds, so all 896 calls miss everything. The kernel at DRAM and
    /// K innermost: one call touches 1024 + 28 x 4 x 16 = 2816 lines, so the K loop's tiles
    /// come back from the cache (four K tiles share a line, the input tile stays); one sweep of
    /// it (1024 rows x 16 lines + 1792) does not fit, so its 63 sweeps miss all they touch.
    #[test]
    fn l2_misses_follow_reuse_distance() {
        let l = Layer::conv("bottleneck", [3, 3, 28, 28, 1024, 1024, 1], 1, 1);
        for (map, want) in [
            (
                "L3[WIO] K64 Q2 P7 - L2[WI] N1 K16X - L1[O] S3 R3 C64 Q14 C16X - L0[W] P4",
                896.0 * (9216.0 + 1536.0),
            ),
            (
                "L3[WIO] Q7 S3 R3 K64 - L2[WI] N1 K16X - L1[O] Q2 C64 P4 C16X - L0[W] Q2 P7",
                63.0 * (16384.0 + 1792.0),
            ),
        ] {
            let m = parse_compact(map).unwrap();
            let (n, v) = mapping_only(&l, &m);
            let got = get(&n, &v, "gemmini.log_l2_misses").exp();
            assert!((got / want - 1.0).abs() < 1e-9, "{map}: {got} vs {want}");
        }
    }

    /// A matrix multiply runs as the harness emulates a `pe x pe` array on the 16 x 16 one: with
    /// spatial factors C4 K4, `pe` = 4, and the 512 x 512 x 32 multiply of the training file
    /// (tile P256 K8 C32) is 128 calls of 64 x 2 x 8 blocks of 16 cycles, loading
    /// 64 x 8 + 8 x 2 blocks of 16 x 16 bytes each call. Tiles smaller than `pe` still take a
    /// block (P = 1), and spatial factors beyond 16 run at 16.
    #[test]
    fn matmul_harness_pads_to_the_emulated_array() {
        let (l, m) = matmul_example();
        let (n, mut v) = mapping_only(&l, &m);
        let want = 128.0
            * (64.0 * 2.0 * 8.0 * 16.0 + TILE_CALL_CYCLES + (64.0 * 8.0 + 8.0 * 2.0) * 16.0)
            + 512.0 * 32.0 / 16.0;
        let got = get(&n, &v, "gemmini.log_harness").exp();
        assert!((got / want - 1.0).abs() < 1e-9, "{got} vs {want}");
        let want = (want + LAYER_CYCLES).ln() - v[base_index(Set::MappingOnly)];
        assert!((v[offset_index(Set::MappingOnly)] - want).abs() < 1e-9);

        // A vector times a matrix with a 32-wide spatial C: pe = 16, the single row of A is one
        // block, the 256 x 64 matrix 16 x 4 blocks in 4 calls of 16 x 1.
        let l = Layer::matmul("v", 1, 256, 64);
        let m = parse_compact("L3[WIO] K4 - L2[WI] N1 K16X - L1[O] C8 C32X - L0[W] N1").unwrap();
        values(&l, &m, None, &mut v);
        let want = 4.0 * (16.0 * 16.0 + TILE_CALL_CYCLES + (16.0 + 16.0) * 16.0) + 64.0 / 16.0;
        let got = get(&n, &v, "gemmini.log_harness").exp();
        assert!((got / want - 1.0).abs() < 1e-9, "{got} vs {want}");
    }

    /// The idle share of the 16 lanes: none for whole blocks of 16, most for few channels, and
    /// the example's C = 3 input layer gets its feature under that name.
    #[test]
    fn channel_padding_of_few_and_whole_channels() {
        let arch = crate::gemmini::rules::tile_arch(&crate::ir::gemmini_arch());
        assert_eq!(
            crate::gemmini::tiler::gemmini_params(&arch).dim as f64,
            GEMMINI_DIM
        );
        let l = |c, k| Layer::conv("c", [3, 3, 8, 8, c, k, 1], 1, 1);
        assert_eq!(channel_padding(&l(1, 64), Dim::C), 16.0);
        assert_eq!(channel_padding(&l(1, 64), Dim::K), 1.0);
        assert_eq!(channel_padding(&l(64, 2), Dim::K), 8.0);
        assert_eq!(channel_padding(&l(24, 512), Dim::C), 32.0 / 24.0);
        let (l, m) = example();
        let (n, v) = mapping_only(&l, &m);
        assert!((get(&n, &v, "layer.log_pad_C") - (16.0f64 / 3.0).ln()).abs() < 1e-12);
        assert_eq!(get(&n, &v, "layer.log_pad_K"), 0.0);
    }

    #[test]
    fn jacobian_matches_finite_differences() {
        let (l, m) = example();
        jacobian_check(&l, &m);
        // A matrix multiply, through the emulated-array branch of the harness model.
        let (l, m) = matmul_example();
        jacobian_check(&l, &m);
        // The L2-miss count where no DRAM loop's tiles fit the cache, and where only some do.
        let l = Layer::conv("bottleneck", [3, 3, 28, 28, 1024, 1024, 1], 1, 1);
        for map in [
            "L3[WIO] K64 Q2 P7 - L2[WI] N1 K16X - L1[O] S3 R3 C64 Q14 C16X - L0[W] P4",
            "L3[WIO] Q7 S3 R3 K64 - L2[WI] N1 K16X - L1[O] Q2 C64 P4 C16X - L0[W] Q2 P7",
        ] {
            jacobian_check(&l, &parse_compact(map).unwrap());
        }
    }

    fn jacobian_check(l: &Layer, m: &Mapping) {
        let mut u = log_factors(m);
        // Move off the integer point so every smooth piece is exercised.
        for (i, x) in u.iter_mut().enumerate() {
            *x += 0.013 * ((i * 7 % 5) as f64 - 2.0);
        }
        let terms = [10.0, 9.5, 11.0, 10.9];
        let d = with_jacobian(l, m, &u, Some(&terms));
        let f = |u: &[f64; N_FACTOR_VARS], t: &[f64; N_TERMS]| {
            let mut o = Vec::new();
            compute::<f64>(l, m, u, Some(t), None, &mut o);
            o
        };
        let base = f(&u, &terms);
        for (i, x) in d.iter().enumerate() {
            assert!((x.v - base[i]).abs() < 1e-12);
        }
        let h = 1e-6;
        for v in 0..N_VARS {
            let (mut up, mut um, mut tp, mut tm) = (u, u, terms, terms);
            if v < N_FACTOR_VARS {
                up[v] += h;
                um[v] -= h;
            } else {
                tp[v - N_FACTOR_VARS] += h;
                tm[v - N_FACTOR_VARS] -= h;
            }
            let (a, b) = (f(&up, &tp), f(&um, &tm));
            for i in 0..base.len() {
                let fd = (a[i] - b[i]) / (2.0 * h);
                assert!(
                    (fd - d[i].g[v]).abs() < 1e-5,
                    "feature {i} var {v}: fd {fd} vs ad {}",
                    d[i].g[v]
                );
            }
        }
    }
}
