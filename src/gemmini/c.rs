//! A C program for `gemmini-rocc-tests/bareMetalC` that runs every mapped layer of a program on
//! Gemmini twice (with the mapping's tiles, and with Gemmini's own `_auto` tiler), checks both
//! results against a plain C reference and prints the cycle counts, so a mapping found by the
//! search can be checked on Spike and measured on Verilator or FireSim.
//!
//! Output: `<name>.c` and `<name>_params.h` (per-layer sizes, tiles and loop order). Each layer
//! prints `dosa verify layer=<network.layer> run=<mapped|auto> mismatches=<n>` for both runs
//! (unless [`Options::verify`] is off) and then
//! `dosa layer=<network.layer> mapped_cycles=<n> auto_cycles=<n> count=<n>`; the program
//! ends with `dosa total mapped_cycles=<n> auto_cycles=<n>` (sums weighted by `count`) and exits 1
//! if any element differed. [`parse_cycle_lines`] reads the cycle lines back.
//!
//! Nothing is emitted unless every layer passes Gemmini's rules for the architecture's
//! configuration ([`plan`]): the mapping must be legal for the layer, its spatial factors must fit
//! the array, Gemmini must be able to run the layer (one square kernel, one stride, one dilation,
//! sizes within the 16-bit loop fields) and the tiles must fit the double-buffered scratchpad and
//! accumulator (GEMMINI.md).
//!
//! Two APIs ([`Api`]): `upstream` (the `dev` branch of `ucb-bar/gemmini-rocc-tests`: Gemmini's
//! fixed loop order over tiles, the mapping's DRAM order is not used) and `dosa` (the research
//! branch: square `tiled_conv` sizes, and a 7-letter loop-order string over N Q P K S R C, first
//! letter innermost, taken from the mapping's DRAM level; orders it would run wrongly are
//! refused, see [`crate::gemmini::api`]).

use crate::emit::{c_identifier, EmittedFile};
use crate::gemmini::api::dosa_order_problem;
use crate::gemmini::tiler::{
    check_tiles, conv_shape, gemmini_params, mapping_to_tiles, matmul_shape, ConvTiles,
    GemminiParams, MatmulTiles, Tiles, Usage,
};
use crate::ir::{Dim, Layer, Mapping, Program};
use std::fmt::Write as _;

pub use crate::gemmini::api::Api;

/// How to emit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub api: Api,
    /// Base name of the files and of the bareMetalC test (made a C identifier).
    pub name: String,
    /// Where the program came from, for the header comment.
    pub source: String,
    /// Fill the inputs with pseudo-random data, compute each layer once with a plain C
    /// reference and compare both Gemmini runs against it (exit 1 on a mismatch). Off for RTL
    /// runs, where the reference loops would cost simulation time and change nothing measured.
    pub verify: bool,
}

/// The sizes one layer runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Run {
    Conv {
        batch_size: u64,
        in_row_dim: u64,
        in_col_dim: u64,
        in_channels: u64,
        out_channels: u64,
        out_row_dim: u64,
        out_col_dim: u64,
        stride: u64,
        kernel_dilation: u64,
        padding: u64,
        kernel_dim: u64,
        tiles: ConvTiles,
    },
    Matmul {
        dim_i: u64,
        dim_j: u64,
        dim_k: u64,
        tiles: MatmulTiles,
    },
}

/// One mapped layer, checked and ready to print.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerPlan {
    /// `network.layer` as written in the program.
    pub label: String,
    pub layer: Layer,
    pub mapping: Mapping,
    pub run: Run,
    /// The mapping's DRAM loop order, first letter innermost (only used by [`Api::Dosa`]).
    pub loop_order: String,
    pub usage: Usage,
}

/// Gemmini's fixed loop order over tiles, first letter innermost.
pub const GEMMINI_LOOP_ORDER: &str = "CRSKPQN";

/// The DRAM-level loop order of a mapping as a 7-letter string, first letter innermost:
/// the loops with a factor above 1 (innermost first), then the others in Gemmini's order.
pub fn loop_order_string(mapping: &Mapping) -> String {
    let Some(top) = mapping.levels.last() else {
        return GEMMINI_LOOP_ORDER.to_string();
    };
    let mut out: String = top
        .active_loops()
        .iter()
        .rev()
        .map(|d| d.letter())
        .collect();
    for c in GEMMINI_LOOP_ORDER.chars() {
        if !out.contains(c) {
            out.push(c);
        }
    }
    out
}

/// Largest size Gemmini's loop instructions can hold (16-bit fields).
const MAX_LOOP_FIELD: u64 = 65535;

fn plan_one(
    program: &Program,
    p: &GemminiParams,
    label: &str,
    layer: &Layer,
    mapping: &Mapping,
    auto: bool,
) -> Result<LayerPlan, String> {
    // `auto`: Gemmini's own tiles on this configuration; otherwise the mapping's single tile
    // level, under the rules every search obeys.
    let (tiles, usage) = if auto {
        let tiles = crate::gemmini::tiler::auto_tile(layer, p);
        (
            tiles,
            check_tiles(layer, &tiles, p).map_err(|e| e.to_string())?,
        )
    } else {
        let usage = crate::gemmini::rules::check(&program.arch, layer, mapping, p)?;
        (mapping_to_tiles(layer, mapping, p.dim), usage)
    };
    let run = match tiles {
        Tiles::Matmul(t) => {
            let s = matmul_shape(layer);
            Run::Matmul {
                dim_i: s.i,
                dim_j: s.j,
                dim_k: s.k,
                tiles: t,
            }
        }
        Tiles::Conv(t) => {
            let s = conv_shape(layer);
            if s.kernel_rows != s.kernel_cols {
                return Err(format!(
                    "unsupported by Gemmini: tiled_conv takes one square kernel, the layer has R={} S={}",
                    s.kernel_cols, s.kernel_rows
                ));
            }
            if s.row_stride != s.col_stride {
                return Err(format!(
                    "unsupported by Gemmini: tiled_conv takes one stride, the layer has Wstride={} Hstride={}",
                    s.col_stride, s.row_stride
                ));
            }
            if s.row_dilation != s.col_dilation {
                return Err(format!(
                    "unsupported by Gemmini: tiled_conv takes one kernel dilation, the layer has Wdilation={} Hdilation={}",
                    s.col_dilation, s.row_dilation
                ));
            }
            let kernel_dim = s.kernel_rows;
            let stride = s.row_stride;
            let dil = s.row_dilation;
            // "Same"-style padding that is always below the kernel size, and the input size that
            // gives exactly the layer's output: out = (in + 2*pad - k') / stride + 1.
            let padding = (kernel_dim - 1) / 2;
            let k_eff = (kernel_dim - 1).saturating_mul(dil).saturating_add(1);
            let in_dim = |out: u64| {
                (out - 1)
                    .saturating_mul(stride)
                    .saturating_add(k_eff - 2 * padding)
            };
            Run::Conv {
                batch_size: s.batch,
                in_row_dim: in_dim(s.out_rows),
                in_col_dim: in_dim(s.out_cols),
                in_channels: s.in_channels,
                out_channels: s.out_channels,
                out_row_dim: s.out_rows,
                out_col_dim: s.out_cols,
                stride,
                kernel_dilation: dil,
                padding,
                kernel_dim,
                tiles: t,
            }
        }
    };
    let sizes: Vec<(&str, u64)> = match run {
        Run::Conv {
            batch_size,
            in_row_dim,
            in_col_dim,
            in_channels,
            out_channels,
            ..
        } => vec![
            ("batch size", batch_size),
            ("input rows", in_row_dim),
            ("input cols", in_col_dim),
            ("input channels", in_channels),
            ("output channels", out_channels),
        ],
        Run::Matmul { tiles, .. } => vec![
            ("tile_I", tiles.tile_i),
            ("tile_J", tiles.tile_j),
            ("tile_K", tiles.tile_k),
        ],
    };
    for (what, v) in sizes {
        if v > MAX_LOOP_FIELD {
            return Err(format!(
                "unsupported by Gemmini: {what} = {v} exceeds the 16-bit fields of its loop instructions ({MAX_LOOP_FIELD})"
            ));
        }
    }
    Ok(LayerPlan {
        label: label.to_string(),
        layer: layer.clone(),
        mapping: mapping.clone(),
        run,
        loop_order: loop_order_string(mapping),
        usage,
    })
}

/// Check every mapped layer of `program` against Gemmini's rules; all problems are reported,
/// each naming the layer, the resource and by how much it overflows.
pub fn plan(program: &Program) -> Result<(GemminiParams, Vec<LayerPlan>), Vec<String>> {
    let p = gemmini_params(&program.arch);
    let mut plans = Vec::new();
    let mut errors = Vec::new();
    for m in crate::emit::mapped_layers(program)? {
        let m = match m {
            Ok(m) => m,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let (i, label) = (m.index, &m.label);
        match plan_one(program, &p, label, m.layer, m.mapping, m.auto) {
            Ok(pl) => plans.push(pl),
            Err(e) => errors.push(format!("layer `{label}` (mapping {i}): {e}")),
        }
    }
    if errors.is_empty() {
        Ok((p, plans))
    } else {
        Err(errors)
    }
}

/// Text safe inside a `//` comment (one line).
fn comment(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A C string literal holding `s` with whitespace made `_` (the printed line splits on spaces).
fn c_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_whitespace() || c.is_control() => out.push('_'),
            c if c.is_ascii() => out.push(c),
            c => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    let _ = write!(out, "\\{b:03o}");
                }
            }
        }
    }
    out.push('"');
    out
}

fn layer_summary(l: &Layer) -> String {
    let dims: Vec<String> = Dim::ALL
        .iter()
        .map(|d| format!("{d}={}", l.dim(*d)))
        .collect();
    format!(
        "{} Wstride={} Hstride={} Wdilation={} Hdilation={} count={}",
        dims.join(" "),
        l.wstride,
        l.hstride,
        l.wdilation,
        l.hdilation,
        l.count
    )
}

/// The parameter header: Gemmini configuration the tiles were checked for, and per layer the
/// sizes, tiles and loop order as `L<i>_*` macros.
fn params_header(opts: &Options, p: &GemminiParams, plans: &[LayerPlan]) -> String {
    let guard = format!("{}_PARAMS_H", opts.name.to_ascii_uppercase());
    let mut h = String::new();
    let _ = writeln!(
        h,
        "// Generated by dosa from {}: per-layer parameters of {}.c.",
        comment(&opts.source),
        opts.name
    );
    let _ = writeln!(
        h,
        "// The tiles were checked against Gemmini's capacity rules for this configuration"
    );
    let _ = writeln!(
        h,
        "// (generate Gemmini with it; any configuration with the same DIM and at least"
    );
    let _ = writeln!(
        h,
        "// DOSA_MIN_SPAD_ROWS scratchpad rows and DOSA_MIN_ACC_ROWS accumulator rows runs them):"
    );
    let _ = writeln!(h, "//   {}", p);
    let _ = writeln!(h, "#ifndef {guard}");
    let _ = writeln!(h, "#define {guard}");
    let _ = writeln!(h);
    let _ = writeln!(h, "#define DOSA_DIM {}", p.dim);
    let _ = writeln!(h, "#define DOSA_BANK_NUM {}", p.bank_num);
    let _ = writeln!(h, "#define DOSA_BANK_ROWS {}", p.bank_rows);
    let _ = writeln!(h, "#define DOSA_ACC_ROWS {}", p.acc_rows);
    // The library lets a tile use half of each memory (double buffering).
    let most = |f: fn(&Usage) -> u64| plans.iter().map(|pl| f(&pl.usage)).max().unwrap_or(0);
    let _ = writeln!(
        h,
        "#define DOSA_MIN_SPAD_ROWS {}",
        2 * most(|u| u.spad_rows)
    );
    let _ = writeln!(h, "#define DOSA_MIN_ACC_ROWS {}", 2 * most(|u| u.acc_rows));
    let _ = writeln!(h, "#define DOSA_NUM_LAYERS {}", plans.len());
    // The program's one set of buffers is sized for the largest layer.
    let elems: Vec<[u64; 4]> = plans.iter().map(|pl| buffer_elems(&pl.run)).collect();
    for (k, name) in BUFFER_MACROS.iter().enumerate() {
        let max = elems.iter().map(|e| e[k]).max().unwrap_or(1).max(1);
        let _ = writeln!(h, "#define DOSA_{name} {max}");
    }
    for (i, pl) in plans.iter().enumerate() {
        let _ = writeln!(h);
        let kind = match pl.run {
            Run::Conv { .. } => "conv",
            Run::Matmul { .. } => "matmul",
        };
        let _ = writeln!(
            h,
            "// Layer {i}: {} ({kind}) {}",
            comment(&pl.label),
            layer_summary(&pl.layer)
        );
        let _ = writeln!(h, "//   mapping: {}", comment(&pl.mapping.to_string()));
        let _ = writeln!(
            h,
            "//   tile uses {} of {} scratchpad rows and {} of {} accumulator rows",
            pl.usage.spad_rows, pl.usage.spad_limit, pl.usage.acc_rows, pl.usage.acc_limit
        );
        let _ = writeln!(h, "#define L{i}_NAME {}", c_string(&pl.label));
        let _ = writeln!(h, "#define L{i}_COUNT {}", pl.layer.count);
        let mut def = |k: &str, v: u64| {
            let _ = writeln!(h, "#define L{i}_{k} {v}");
        };
        match pl.run {
            Run::Conv {
                batch_size,
                in_row_dim,
                in_col_dim,
                in_channels,
                out_channels,
                out_row_dim,
                out_col_dim,
                stride,
                kernel_dilation,
                padding,
                kernel_dim,
                tiles: t,
            } => {
                def("BATCH_SIZE", batch_size);
                def("IN_ROW_DIM", in_row_dim);
                def("IN_COL_DIM", in_col_dim);
                def("IN_CHANNELS", in_channels);
                def("OUT_CHANNELS", out_channels);
                def("OUT_ROW_DIM", out_row_dim);
                def("OUT_COL_DIM", out_col_dim);
                def("STRIDE", stride);
                def("KERNEL_DILATION", kernel_dilation);
                def("PADDING", padding);
                def("KERNEL_DIM", kernel_dim);
                def("BATCHES", t.batches);
                def("POROWS", t.porows);
                def("POCOLS", t.pocols);
                def("POCHS", t.pochs);
                def("KROWS", t.krows);
                def("KCOLS", t.kcols);
                def("KCHS", t.kchs);
                // Passed to the DOSA branch's tiled_conv, which takes but does not use them.
                def("SPATIAL_OCHS", pl.mapping.spatial(Dim::K));
                def("SPATIAL_KCHS", pl.mapping.spatial(Dim::C));
            }
            Run::Matmul {
                dim_i,
                dim_j,
                dim_k,
                tiles: t,
            } => {
                def("DIM_I", dim_i);
                def("DIM_J", dim_j);
                def("DIM_K", dim_k);
                def("TILE_I", t.tile_i);
                def("TILE_J", t.tile_j);
                def("TILE_K", t.tile_k);
            }
        }
        for (name, v) in BUFFER_MACROS.iter().zip(elems[i]) {
            def(name, v);
        }
        let _ = writeln!(h, "#define L{i}_LOOP_ORDER \"{}\"", pl.loop_order);
    }
    let _ = writeln!(h);
    let _ = writeln!(h, "#endif // {guard}");
    h
}

/// Elements of one layer's `[input, weights, bias, output]` buffers (matmul: `A, B, D, C`).
fn buffer_elems(run: &Run) -> [u64; 4] {
    let prod = |xs: &[u64]| xs.iter().fold(1u64, |a, &b| a.saturating_mul(b));
    match *run {
        Run::Conv {
            batch_size,
            in_row_dim,
            in_col_dim,
            in_channels,
            out_channels,
            out_row_dim,
            out_col_dim,
            kernel_dim,
            ..
        } => [
            prod(&[batch_size, in_row_dim, in_col_dim, in_channels]),
            prod(&[kernel_dim, kernel_dim, in_channels, out_channels]),
            out_channels,
            prod(&[batch_size, out_row_dim, out_col_dim, out_channels]),
        ],
        Run::Matmul {
            dim_i,
            dim_j,
            dim_k,
            ..
        } => [
            prod(&[dim_i, dim_k]),
            prod(&[dim_k, dim_j]),
            dim_j,
            prod(&[dim_i, dim_j]),
        ],
    }
}

/// The names of the buffer-size macros, in the order of [`buffer_elems`].
const BUFFER_MACROS: [&str; 4] = ["IN_ELEMS", "W_ELEMS", "BIAS_ELEMS", "OUT_ELEMS"];

fn conv_call(i: usize, tiled: bool, api: Api) -> String {
    let mut s = String::new();
    let f = if tiled {
        "tiled_conv"
    } else {
        "tiled_conv_auto"
    };
    // The DOSA branch takes one square size for rows and columns (checked in `emit`), and no
    // DRAM strides.
    match api {
        Api::Upstream => {
            let _ = writeln!(
                s,
                "  {f}(L{i}_BATCH_SIZE, L{i}_IN_ROW_DIM, L{i}_IN_COL_DIM, L{i}_IN_CHANNELS,"
            );
            let _ = writeln!(
                s,
                "      L{i}_OUT_CHANNELS, L{i}_OUT_ROW_DIM, L{i}_OUT_COL_DIM,"
            );
        }
        Api::Dosa => {
            let _ = writeln!(
                s,
                "  {f}(L{i}_BATCH_SIZE, L{i}_IN_ROW_DIM, L{i}_IN_CHANNELS,"
            );
            let _ = writeln!(s, "      L{i}_OUT_CHANNELS, L{i}_OUT_ROW_DIM,");
        }
    }
    let _ = writeln!(
        s,
        "      L{i}_STRIDE, 1, L{i}_KERNEL_DILATION, L{i}_PADDING, L{i}_KERNEL_DIM,"
    );
    if tiled && api == Api::Upstream {
        let _ = writeln!(
            s,
            "      L{i}_IN_CHANNELS, L{i}_OUT_CHANNELS, L{i}_OUT_CHANNELS,"
        );
    }
    let _ = writeln!(s, "      false, false, false, false, false,");
    if tiled {
        let _ = writeln!(
            s,
            "      L{i}_BATCHES, L{i}_POROWS, L{i}_POCOLS, L{i}_POCHS, L{i}_KROWS, L{i}_KCOLS, L{i}_KCHS,"
        );
        if api == Api::Dosa {
            let _ = writeln!(s, "      L{i}_SPATIAL_OCHS, L{i}_SPATIAL_KCHS,");
        }
    }
    let _ = writeln!(
        s,
        "      (elem_t *)input, (elem_t *)weights, (acc_t *)bias, (elem_t *)output,"
    );
    if tiled && api == Api::Dosa {
        let _ = writeln!(
            s,
            "      NO_ACTIVATION, ACC_SCALE_IDENTITY, 0, 0, 0, WS, L{i}_LOOP_ORDER);"
        );
    } else {
        let _ = writeln!(s, "      NO_ACTIVATION, ACC_SCALE_IDENTITY, 0, 0, 0, WS);");
    }
    s
}

fn matmul_call(i: usize, tiled: bool, api: Api) -> String {
    let mut s = String::new();
    let f = if tiled {
        "tiled_matmul"
    } else {
        "tiled_matmul_auto"
    };
    let _ = writeln!(s, "  {f}(L{i}_DIM_I, L{i}_DIM_J, L{i}_DIM_K,");
    let _ = writeln!(s, "      (elem_t *)A, (elem_t *)B, D, (elem_t *)C,");
    let _ = writeln!(s, "      L{i}_DIM_K, L{i}_DIM_J, L{i}_DIM_J, L{i}_DIM_J,");
    let _ = writeln!(
        s,
        "      MVIN_SCALE_IDENTITY, MVIN_SCALE_IDENTITY, MVIN_SCALE_IDENTITY,"
    );
    let _ = writeln!(s, "      NO_ACTIVATION, ACC_SCALE_IDENTITY, 0, true,");
    if tiled {
        let _ = writeln!(s, "      L{i}_TILE_I, L{i}_TILE_J, L{i}_TILE_K,");
    }
    if tiled && api == Api::Dosa {
        // The branch's last argument is the PE array size its tiles are counted in.
        let _ = writeln!(
            s,
            "      false, false, false, false, 0, WS, L{i}_LOOP_ORDER, DIM);"
        );
    } else {
        let _ = writeln!(s, "      false, false, false, false, 0, WS);");
    }
    s
}

/// The C helpers of the self-checking program: a fixed generator for the input data, the plain
/// reference loops (Gemmini's semantics with zero bias, scale 1 and no activation: int32 sums
/// saturated to int8) and the comparison that prints the verify line.
const VERIFY_HELPERS: &str = r#"
// A fixed generator (an LCG) so every run sees the same data: values in -2..2 keep sums small.
static uint32_t dosa_rng_state;
static void dosa_fill(elem_t *p, size_t n, uint32_t seed) {
  dosa_rng_state = seed;
  for (size_t i = 0; i < n; i++) {
    dosa_rng_state = dosa_rng_state * 1664525u + 1013904223u;
    p[i] = (elem_t)((int)((dosa_rng_state >> 24) % 5) - 2);
  }
}

// Overwrites an output with a pattern, so a run that leaves elements unwritten is caught.
static void dosa_poison(elem_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) p[i] = (elem_t)(i * 37 + 11);
}

static elem_t dosa_saturate(int32_t x) {
  return (elem_t)(x > elem_t_max ? elem_t_max : (x < elem_t_min ? elem_t_min : x));
}

// out[b][orow][ocol][och] = sum in[b][orow*stride+krow*dil-pad][ocol*stride+kcol*dil-pad][kch]
//   * w[krow][kcol][kch][och], zero outside the input; NHWC layouts as tiled_conv uses them.
static void dosa_reference_conv(int batch, int in_rows, int in_cols, int in_ch, int out_ch,
    int out_rows, int out_cols, int stride, int dil, int pad, int kdim,
    const elem_t *in, const elem_t *w, elem_t *out) {
  for (int b = 0; b < batch; b++)
    for (int orow = 0; orow < out_rows; orow++)
      for (int ocol = 0; ocol < out_cols; ocol++)
        for (int och = 0; och < out_ch; och++) {
          int32_t acc = 0;
          for (int krow = 0; krow < kdim; krow++) {
            const int irow = orow * stride + krow * dil - pad;
            if (irow < 0 || irow >= in_rows) continue;
            for (int kcol = 0; kcol < kdim; kcol++) {
              const int icol = ocol * stride + kcol * dil - pad;
              if (icol < 0 || icol >= in_cols) continue;
              const elem_t *x = in + ((size_t)(b * in_rows + irow) * in_cols + icol) * in_ch;
              const elem_t *y = w + ((size_t)(krow * kdim + kcol) * in_ch) * out_ch + och;
              for (int kch = 0; kch < in_ch; kch++)
                acc += (int32_t)x[kch] * (int32_t)y[(size_t)kch * out_ch];
            }
          }
          out[((size_t)(b * out_rows + orow) * out_cols + ocol) * out_ch + och] = dosa_saturate(acc);
        }
}

// C[i][j] = sum A[i][k] * B[k][j] (row-major, the strides tiled_matmul is given).
static void dosa_reference_matmul(int dim_i, int dim_j, int dim_k,
    const elem_t *a, const elem_t *b, elem_t *c) {
  for (int i = 0; i < dim_i; i++)
    for (int j = 0; j < dim_j; j++) {
      int32_t acc = 0;
      for (int k = 0; k < dim_k; k++)
        acc += (int32_t)a[(size_t)i * dim_k + k] * (int32_t)b[(size_t)k * dim_j + j];
      c[(size_t)i * dim_j + j] = dosa_saturate(acc);
    }
}

static unsigned long dosa_mismatches = 0;

static void dosa_compare(const char *name, const char *run, const elem_t *got,
    const elem_t *want, size_t n) {
  unsigned long bad = 0;
  size_t first = 0;
  for (size_t i = 0; i < n; i++) {
    if (got[i] != want[i]) {
      if (bad == 0) first = i;
      bad++;
    }
  }
  printf("dosa verify layer=%s run=%s mismatches=%lu\n", name, run, bad);
  if (bad != 0) {
    printf("dosa mismatch layer=%s run=%s first_index=%lu got=%d want=%d\n", name, run,
        (unsigned long)first, (int)got[first], (int)want[first]);
  }
  dosa_mismatches += bad;
}
"#;

fn program_c(opts: &Options, plans: &[LayerPlan]) -> String {
    let mut c = String::new();
    let api_text = match opts.api {
        Api::Upstream => {
            "upstream gemmini-rocc-tests (dev): tiles from the mappings, Gemmini's fixed loop order over tiles"
        }
        Api::Dosa => "DOSA research branch: tiles and DRAM loop order (L<i>_LOOP_ORDER) from the mappings",
    };
    let _ = writeln!(c, "// Generated by dosa from {}.", comment(&opts.source));
    let _ = writeln!(
        c,
        "// Runs each mapped layer on Gemmini with the mapping's tiles and with Gemmini's own"
    );
    let _ = writeln!(c, "// tiler (the _auto functions), and prints per layer");
    if opts.verify {
        let _ = writeln!(
            c,
            "//   dosa verify layer=<network.layer> run=<mapped|auto> mismatches=<n>"
        );
    }
    let _ = writeln!(
        c,
        "//   dosa layer=<network.layer> mapped_cycles=<n> auto_cycles=<n> count=<n>"
    );
    let _ = writeln!(
        c,
        "// then `dosa total mapped_cycles=<n> auto_cycles=<n>` (sums weighted by count)."
    );
    if opts.verify {
        let _ = writeln!(
            c,
            "// Inputs and weights are pseudo-random int8 in -2..2; both runs are compared with a plain"
        );
        let _ = writeln!(
            c,
            "// C reference and the program exits 1 if any output element differs."
        );
    } else {
        let _ = writeln!(
            c,
            "// Timing only (--no-verify): the data is all zero and no result is checked."
        );
    }
    let _ = writeln!(c, "// API: {api_text}.");
    let _ = writeln!(
        c,
        "// Use: copy {0}.c and {0}_params.h into gemmini-rocc-tests/bareMetalC, add `{0}` to the",
        opts.name
    );
    let _ = writeln!(
        c,
        "// tests list of bareMetalC/Makefile, build, and run {}-baremetal.",
        opts.name
    );
    let _ = writeln!(c);
    let _ = writeln!(c, "#include <stdint.h>");
    let _ = writeln!(c, "#include <stddef.h>");
    let _ = writeln!(c, "#include <stdbool.h>");
    let _ = writeln!(c, "#include <stdio.h>");
    let _ = writeln!(c, "#include <stdlib.h>");
    let _ = writeln!(c, "#ifndef BAREMETAL");
    let _ = writeln!(c, "#include <sys/mman.h>");
    let _ = writeln!(c, "#endif");
    let _ = writeln!(c, "#include \"include/gemmini_testutils.h\"");
    let _ = writeln!(c, "#include \"{}_params.h\"", opts.name);
    let _ = writeln!(c);
    let _ = writeln!(
        c,
        "#if DIM != DOSA_DIM || BANK_NUM * BANK_ROWS < DOSA_MIN_SPAD_ROWS || ACC_ROWS < DOSA_MIN_ACC_ROWS"
    );
    let _ = writeln!(
        c,
        "#error \"these tiles need a Gemmini with DIM == DOSA_DIM and at least DOSA_MIN_SPAD_ROWS / DOSA_MIN_ACC_ROWS rows: see {}_params.h\"",
        opts.name
    );
    let _ = writeln!(c, "#endif");
    let _ = writeln!(c);
    let _ = writeln!(
        c,
        "// One set of buffers, sized for the largest layer: bare-metal RAM is limited."
    );
    let _ = writeln!(c, "static elem_t dosa_in[DOSA_IN_ELEMS] row_align(1);");
    let _ = writeln!(c, "static elem_t dosa_w[DOSA_W_ELEMS] row_align(1);");
    let _ = writeln!(
        c,
        "static acc_t dosa_bias[DOSA_BIAS_ELEMS] row_align_acc(1); // stays zero"
    );
    let _ = writeln!(c, "static elem_t dosa_out[DOSA_OUT_ELEMS] row_align(1);");
    if opts.verify {
        let _ = writeln!(c, "static elem_t dosa_ref[DOSA_OUT_ELEMS];");
        c.push_str(VERIFY_HELPERS);
    }
    let _ = writeln!(c);
    let _ = writeln!(c, "static unsigned long long total_mapped = 0;");
    let _ = writeln!(c, "static unsigned long long total_auto = 0;");
    let _ = writeln!(c);
    let _ = writeln!(
        c,
        "static void report(const char *name, unsigned long long count, uint64_t mapped, uint64_t autoc) {{"
    );
    let _ = writeln!(
        c,
        "  printf(\"dosa layer=%s mapped_cycles=%llu auto_cycles=%llu count=%llu\\n\", name,"
    );
    let _ = writeln!(
        c,
        "      (unsigned long long)mapped, (unsigned long long)autoc, count);"
    );
    let _ = writeln!(c, "  total_mapped += count * (unsigned long long)mapped;");
    let _ = writeln!(c, "  total_auto += count * (unsigned long long)autoc;");
    let _ = writeln!(c, "}}");
    for (i, pl) in plans.iter().enumerate() {
        let _ = writeln!(c);
        let _ = writeln!(c, "// Layer {i}: {}", comment(&pl.label));
        let _ = writeln!(c, "static void run_layer_{i}(void) {{");
        let (input, weights, bias, output) = match pl.run {
            Run::Conv { .. } => ("input", "weights", "bias", "output"),
            Run::Matmul { .. } => ("A", "B", "D", "C"),
        };
        let _ = writeln!(c, "  elem_t *{input} = dosa_in;");
        let _ = writeln!(c, "  elem_t *{weights} = dosa_w;");
        let _ = writeln!(c, "  acc_t *{bias} = dosa_bias;");
        let _ = writeln!(c, "  elem_t *{output} = dosa_out;");
        if opts.verify {
            let seed = 2 * i as u64 + 1;
            let _ = writeln!(c, "  dosa_fill({input}, L{i}_IN_ELEMS, {seed});");
            let _ = writeln!(c, "  dosa_fill({weights}, L{i}_W_ELEMS, {});", seed + 1);
            match pl.run {
                Run::Conv { .. } => {
                    let _ = writeln!(
                        c,
                        "  dosa_reference_conv(L{i}_BATCH_SIZE, L{i}_IN_ROW_DIM, L{i}_IN_COL_DIM, L{i}_IN_CHANNELS,"
                    );
                    let _ = writeln!(
                        c,
                        "      L{i}_OUT_CHANNELS, L{i}_OUT_ROW_DIM, L{i}_OUT_COL_DIM, L{i}_STRIDE, L{i}_KERNEL_DILATION,"
                    );
                    let _ = writeln!(
                        c,
                        "      L{i}_PADDING, L{i}_KERNEL_DIM, input, weights, dosa_ref);"
                    );
                }
                Run::Matmul { .. } => {
                    let _ = writeln!(
                        c,
                        "  dosa_reference_matmul(L{i}_DIM_I, L{i}_DIM_J, L{i}_DIM_K, A, B, dosa_ref);"
                    );
                }
            }
        }
        for tiled in [true, false] {
            let var = if tiled { "mapped" } else { "autoc" };
            let _ = writeln!(c);
            if opts.verify {
                let _ = writeln!(c, "  dosa_poison({output}, L{i}_OUT_ELEMS);");
            }
            let _ = writeln!(c, "  gemmini_flush(0);");
            let _ = writeln!(c, "  const uint64_t {var}_start = read_cycles();");
            match pl.run {
                Run::Conv { .. } => c.push_str(&conv_call(i, tiled, opts.api)),
                Run::Matmul { .. } => c.push_str(&matmul_call(i, tiled, opts.api)),
            }
            let _ = writeln!(c, "  gemmini_fence();");
            let _ = writeln!(c, "  const uint64_t {var} = read_cycles() - {var}_start;");
            if opts.verify {
                let run = if tiled { "mapped" } else { "auto" };
                let _ = writeln!(
                    c,
                    "  dosa_compare(L{i}_NAME, \"{run}\", {output}, dosa_ref, L{i}_OUT_ELEMS);"
                );
            }
        }
        let _ = writeln!(c);
        let _ = writeln!(c, "  report(L{i}_NAME, L{i}_COUNT, mapped, autoc);");
        let _ = writeln!(c, "}}");
    }
    let _ = writeln!(c);
    let _ = writeln!(c, "int main(void) {{");
    let _ = writeln!(c, "#ifndef BAREMETAL");
    let _ = writeln!(c, "  if (mlockall(MCL_CURRENT | MCL_FUTURE) != 0) {{");
    let _ = writeln!(c, "    perror(\"mlockall failed\");");
    let _ = writeln!(c, "    exit(1);");
    let _ = writeln!(c, "  }}");
    let _ = writeln!(c, "#endif");
    for i in 0..plans.len() {
        let _ = writeln!(c, "  run_layer_{i}();");
    }
    let _ = writeln!(
        c,
        "  printf(\"dosa total mapped_cycles=%llu auto_cycles=%llu\\n\", total_mapped, total_auto);"
    );
    if opts.verify {
        let _ = writeln!(c, "  exit(dosa_mismatches == 0 ? 0 : 1);");
    } else {
        let _ = writeln!(c, "  exit(0);");
    }
    let _ = writeln!(c, "}}");
    c
}

/// What the DOSA branch cannot run correctly, per layer: its `tiled_conv` takes one square size,
/// and its loop order must keep each output tile's reduction together ([`dosa_order_problem`]).
fn dosa_problems(plans: &[LayerPlan]) -> Vec<String> {
    let mut errors = Vec::new();
    for pl in plans {
        let label = &pl.label;
        if let Run::Conv {
            in_row_dim,
            in_col_dim,
            out_row_dim,
            out_col_dim,
            ..
        } = pl.run
        {
            if in_row_dim != in_col_dim || out_row_dim != out_col_dim {
                errors.push(format!(
                    "layer `{label}`: unsupported by --api dosa: the branch's tiled_conv takes one square size, the layer has {out_row_dim}x{out_col_dim} outputs from {in_row_dim}x{in_col_dim} inputs (use --api upstream)"
                ));
            }
        }
        if let Some(why) = dosa_order_problem(&pl.mapping) {
            errors.push(format!("layer `{label}`: refused for --api dosa: {why}"));
        }
    }
    errors
}

/// Check everything, then render `<name>.c` and `<name>_params.h`; on any problem, the
/// diagnostics and no files.
///
/// For [`Api::Dosa`] a mapping whose DRAM order the branch would run wrongly is refused rather
/// than reordered: moving the reduction loops inward changes the DRAM traffic the mapping was
/// costed with, so the program would measure a different mapping.
///
/// A program whose mappings span several networks (a suite search's `result.dosa`: one Gemmini
/// configuration, each network its own mappings) gets one program per network,
/// `<name>_<network>.c` and its `_params.h`, all for the same configuration, so each network
/// is built, run and measured on its own.
pub fn emit(program: &Program, opts: &Options) -> Result<Vec<EmittedFile>, Vec<String>> {
    let mut nets: Vec<&str> = Vec::new();
    for m in &program.mappings {
        if !nets.contains(&m.network.as_str()) {
            nets.push(&m.network);
        }
    }
    if nets.len() < 2 {
        return emit_one(program, opts);
    }
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for net in nets {
        let one = Program {
            mappings: program
                .mappings
                .iter()
                .filter(|m| m.network == net)
                .cloned()
                .collect(),
            ..program.clone()
        };
        let o = Options {
            name: format!("{}_{net}", opts.name),
            ..opts.clone()
        };
        match emit_one(&one, &o) {
            Ok(f) => files.extend(f),
            Err(e) => errors.extend(e),
        }
    }
    if errors.is_empty() {
        Ok(files)
    } else {
        Err(errors)
    }
}

/// [`emit`] of one program for every mapped layer it has.
fn emit_one(program: &Program, opts: &Options) -> Result<Vec<EmittedFile>, Vec<String>> {
    let opts = Options {
        name: c_identifier(&opts.name),
        ..opts.clone()
    };
    let (p, plans) = plan(program)?;
    if opts.api == Api::Dosa {
        let errors = dosa_problems(&plans);
        if !errors.is_empty() {
            return Err(errors);
        }
    }
    Ok(vec![
        EmittedFile {
            path: format!("{}.c", opts.name),
            contents: program_c(&opts, &plans),
        },
        EmittedFile {
            path: format!("{}_params.h", opts.name),
            contents: params_header(&opts, &p, &plans),
        },
    ])
}

/// One `dosa layer=...` line printed by the emitted program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CycleRecord {
    pub layer: String,
    pub mapped_cycles: u64,
    pub auto_cycles: u64,
    pub count: u64,
}

/// Read the per-layer lines out of a simulator log (other lines are ignored).
pub fn parse_cycle_lines(log: &str) -> Vec<CycleRecord> {
    let mut out = Vec::new();
    for line in log.lines() {
        let Some(rest) = line.trim().strip_prefix("dosa layer=") else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let Some(layer) = words.next() else { continue };
        let mut rec = CycleRecord {
            layer: layer.to_string(),
            mapped_cycles: 0,
            auto_cycles: 0,
            count: 1,
        };
        let mut seen = 0;
        for w in words {
            let Some((k, v)) = w.split_once('=') else {
                continue;
            };
            let Ok(v) = v.parse::<u64>() else { continue };
            match k {
                "mapped_cycles" => {
                    rec.mapped_cycles = v;
                    seen |= 1;
                }
                "auto_cycles" => {
                    rec.auto_cycles = v;
                    seen |= 2;
                }
                "count" => rec.count = v,
                _ => {}
            }
        }
        if seen == 3 {
            out.push(rec);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{gemmini_arch, parse_compact, LayerMapping, Network, SearchSpec};

    fn program(layers: Vec<Layer>, maps: Vec<(&str, &str)>) -> Program {
        Program {
            arch: gemmini_arch(),
            networks: vec![Network {
                name: "net".into(),
                layers,
            }],
            mappings: maps
                .into_iter()
                .map(|(l, m)| LayerMapping {
                    network: "net".into(),
                    layer: l.into(),
                    mapping: parse_compact(m).unwrap(),
                    auto: false,
                })
                .collect(),
            search: SearchSpec::default(),
        }
    }

    fn opts() -> Options {
        Options {
            api: Api::Upstream,
            name: "t".into(),
            source: "test".into(),
            verify: true,
        }
    }

    #[test]
    fn loop_order_is_innermost_first_and_completed_in_gemmini_order() {
        let m =
            parse_compact("L3[WIO] K8 Q28 - L2[WI] N1 K4X - L1[O] K2 S7 R7 Q4 P7 C3X - L0[W] P16")
                .unwrap();
        assert_eq!(loop_order_string(&m), "QKCRSPN");
        let m = parse_compact("L3[WIO] N1 - L2[WI] N1 - L1[O] N1 - L0[W] N1").unwrap();
        assert_eq!(loop_order_string(&m), GEMMINI_LOOP_ORDER);
    }

    #[test]
    fn conv_sizes_reproduce_the_output() {
        let l = Layer::conv("c1", [7, 7, 112, 112, 3, 64, 1], 2, 2);
        let p = program(
            vec![l],
            vec![(
                "c1",
                "L3[WIO] Q28 K8 - L2[WI] K4X - L1[O] K2 S7 R7 Q4 P7 C3X - L0[W] P16",
            )],
        );
        let (_, plans) = plan(&p).unwrap();
        match plans[0].run {
            Run::Conv {
                in_row_dim,
                padding,
                kernel_dim,
                stride,
                out_row_dim,
                tiles,
                ..
            } => {
                assert_eq!((kernel_dim, padding, stride), (7, 3, 2));
                assert_eq!(
                    (in_row_dim + 2 * padding - kernel_dim) / stride + 1,
                    out_row_dim
                );
                assert_eq!(tiles.to_array(), [1, 4, 112, 8, 7, 7, 3]);
            }
            _ => panic!("expected a conv"),
        }
    }

    #[test]
    fn overflow_refuses_with_layer_resource_and_amount() {
        let l = Layer::conv("big", [3, 3, 56, 56, 64, 64, 1], 1, 1);
        let ok = Layer::conv("ok", [3, 3, 8, 8, 16, 16, 1], 1, 1);
        let p = program(
            vec![l, ok],
            vec![
                (
                    "ok",
                    "L3[WIO] N1 - L2[WI] K16X - L1[O] S3 R3 Q8 P8 C16X - L0[W] N1",
                ),
                (
                    "big",
                    "L3[WIO] N1 - L2[WI] K16X - L1[O] K4 S3 R3 Q56 P56 C4 C16X - L0[W] N1",
                ),
            ],
        );
        let errs = plan(&p).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].contains("net.big"), "{}", errs[0]);
        assert!(errs[0].contains("scratchpad overflow"), "{}", errs[0]);
        assert!(errs[0].contains("over by 7568"), "{}", errs[0]);
        assert!(emit(&p, &opts()).is_err());
    }

    #[test]
    fn spatial_beyond_the_array_and_unknown_layers_are_refused() {
        let l = Layer::conv("c", [1, 1, 8, 8, 64, 64, 1], 1, 1);
        let p = program(
            vec![l],
            vec![
                (
                    "c",
                    "L3[WIO] N1 - L2[WI] K64X - L1[O] Q8 P8 C64X - L0[W] N1",
                ),
                ("nope", "L3[WIO] N1 - L2[WI] N1 - L1[O] N1 - L0[W] N1"),
            ],
        );
        let errs = plan(&p).unwrap_err();
        assert_eq!(errs.len(), 2);
        assert!(
            errs[0].contains("not legal") && errs[0].contains("C64 exceeds"),
            "{}",
            errs[0]
        );
        assert!(errs[1].contains("no such layer"), "{}", errs[1]);
    }

    #[test]
    fn rectangular_kernels_are_refused_for_conv() {
        let l = Layer::conv("r", [3, 1, 8, 8, 16, 16, 1], 1, 1);
        let p = program(
            vec![l],
            vec![(
                "r",
                "L3[WIO] N1 - L2[WI] K16X - L1[O] R3 Q8 P8 C16X - L0[W] N1",
            )],
        );
        let errs = plan(&p).unwrap_err();
        assert!(errs[0].contains("square kernel"), "{}", errs[0]);
    }

    #[test]
    fn parses_the_printed_lines() {
        let log = "boot\ndosa layer=net.c1 mapped_cycles=123 auto_cycles=456 count=3\nnoise dosa layer=x\ndosa layer=net.m mapped_cycles=7 auto_cycles=8 count=1\ndosa total mapped_cycles=376 auto_cycles=1376\n";
        let r = parse_cycle_lines(log);
        assert_eq!(r.len(), 2);
        assert_eq!(
            r[0],
            CycleRecord {
                layer: "net.c1".into(),
                mapped_cycles: 123,
                auto_cycles: 456,
                count: 3
            }
        );
    }

    #[test]
    fn names_in_strings_are_escaped() {
        assert_eq!(c_string("a \"b\"\\"), "\"a_\\\"b\\\"\\\\\"");
    }
}
