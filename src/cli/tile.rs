//! `dosa tile gemmini FILE [--json]`: the tiles Gemmini's own library would pick for every layer
//! of a program (the `gemmini-default` baseline), in Gemmini's terms and in the mapping's.

use super::CliError;
use crate::gemmini::tiler::{auto_tile, check_tiles, gemmini_params, GemminiParams, Tiles};
use crate::ir::Program;
use clap::{Args, Subcommand};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::PathBuf;

/// `dosa tile ...`
#[derive(Args, Debug)]
pub struct TileArgs {
    #[command(subcommand)]
    pub target: TileTarget,
}

/// Which accelerator's tiler to run.
#[derive(Subcommand, Debug)]
pub enum TileTarget {
    /// Gemmini's tiled_conv_auto / tiled_matmul_auto on every layer of FILE's networks.
    Gemmini {
        /// The .dosa file whose networks (and architecture) to tile.
        file: PathBuf,
        /// Print a JSON array, one object per layer, instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// A tile size per dim in elements, in the mapping's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[allow(non_snake_case)]
pub struct DimsJson {
    pub R: u64,
    pub S: u64,
    pub P: u64,
    pub Q: u64,
    pub C: u64,
    pub K: u64,
    pub N: u64,
}

/// One layer's default tiles, as `--json` prints them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerTiles {
    pub network: String,
    pub name: String,
    /// `conv` or `matmul`.
    pub kind: &'static str,
    /// Gemmini's own names and units (conv: elements; matmul: DIM-sized blocks).
    pub tiles: Tiles,
    /// The tile per dim in elements (matmul: P = tile_I*DIM, C = tile_K*DIM, K = tile_J*DIM).
    pub dims: DimsJson,
    /// Rows the tile uses of what a double-buffered tile may use.
    pub spad_rows: u64,
    pub acc_rows: u64,
    /// Why the tile breaks Gemmini's rules, if it does (only on configurations too small for
    /// the library's starting tile; the library would fail its assertion there).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The default tiles of every layer of every network, in program order.
pub fn layer_tiles(program: &Program, p: &GemminiParams) -> Vec<LayerTiles> {
    let mut out = Vec::new();
    for net in &program.networks {
        for l in &net.layers {
            let t = auto_tile(l, p);
            let d = t.element_dims(p.dim);
            let u = crate::gemmini::tiler::usage(l, &t, p);
            out.push(LayerTiles {
                network: net.name.clone(),
                name: l.name.clone(),
                kind: t.kind_name(),
                tiles: t,
                dims: DimsJson {
                    R: d[0],
                    S: d[1],
                    P: d[2],
                    Q: d[3],
                    C: d[4],
                    K: d[5],
                    N: d[6],
                },
                spad_rows: u.spad_rows,
                acc_rows: u.acc_rows,
                error: check_tiles(l, &t, p).err().map(|e| e.to_string()),
            });
        }
    }
    out
}

fn gemmini_terms(t: &Tiles) -> String {
    match t {
        Tiles::Conv(c) => format!(
            "batches={} porows={} pocols={} pochs={} krows={} kcols={} kchs={}",
            c.batches, c.porows, c.pocols, c.pochs, c.krows, c.kcols, c.kchs
        ),
        Tiles::Matmul(m) => format!(
            "tile_I={} tile_J={} tile_K={} (blocks)",
            m.tile_i, m.tile_j, m.tile_k
        ),
    }
}

/// The report `dosa tile gemmini` prints (text or JSON).
pub fn render(program: &Program, json: bool) -> String {
    let p = gemmini_params(&program.arch);
    let rows = layer_tiles(program, &p);
    if json {
        return serde_json::to_string_pretty(&rows).unwrap_or_else(|_| "[]".to_string()) + "\n";
    }
    let mut s = String::new();
    let _ = writeln!(s, "Gemmini configuration of `{}`: {}", program.arch.name, p);
    let _ = writeln!(
        s,
        "A tile may use {} scratchpad rows and {} accumulator rows (double-buffered).",
        p.max_spad_rows(true),
        p.max_acc_rows(true)
    );
    let label_w = rows
        .iter()
        .map(|r| r.network.len() + r.name.len() + 1)
        .max()
        .unwrap_or(0);
    let gem: Vec<String> = rows.iter().map(|r| gemmini_terms(&r.tiles)).collect();
    let gem_w = gem.iter().map(|g| g.len()).max().unwrap_or(0);
    let elems: Vec<String> = rows
        .iter()
        .map(|r| {
            let d = r.dims;
            format!(
                "R{} S{} P{} Q{} C{} K{} N{}",
                d.R, d.S, d.P, d.Q, d.C, d.K, d.N
            )
        })
        .collect();
    let elem_w = elems.iter().map(|e| e.len()).max().unwrap_or(0);
    for ((r, g), e) in rows.iter().zip(&gem).zip(&elems) {
        let label = format!("{}.{}", r.network, r.name);
        let _ = write!(
            s,
            "{label:<label_w$}  {:<6}  {g:<gem_w$}  | tile {e:<elem_w$}  | spad rows {} acc rows {}",
            r.kind, r.spad_rows, r.acc_rows
        );
        if let Some(e) = &r.error {
            let _ = write!(s, "  | DOES NOT FIT: {e}");
        }
        s.push('\n');
    }
    if rows.is_empty() {
        let _ = writeln!(s, "(the program has no layers)");
    }
    s
}

/// Run `dosa tile`.
pub fn run(args: TileArgs) -> Result<i32, CliError> {
    match args.target {
        TileTarget::Gemmini { file, json } => {
            super::require_file(&file)?;
            let program = crate::syntax::load_path(&file).map_err(CliError::Input)?;
            out!("{}", render(&program, json));
            Ok(0)
        }
    }
}
