//! Loading measured RTL latencies (`firesim/gemmini_rtl_train.csv` and files of the same form).
//!
//! Only the layer (`prob.*`), the mapping (`mapping.mapping`) and the measured cycles
//! (`target.gemmini_cycle`) are read, plus Gemmini's own tiles where a file has them: the
//! training file's `arch.*` columns are one fixed configuration that does not describe the RTL
//! that ran, and in the searched file they change only with the search that produced a row (one
//! set per network and predictor), too few configurations to learn from.

use crate::ir::{parse_compact, Dim, Layer, LayerKind, Mapping};
use std::collections::BTreeMap;
use std::path::Path;

/// Levels of the Gemmini template every sample's mapping must have (MODEL.md section 2).
pub const LEVELS: usize = 4;

/// One measured point: a layer, a legal mapping of it and its RTL cycles.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub layer: Layer,
    pub mapping: Mapping,
    /// Measured cycles; `None` when the file has no target column (prediction only).
    pub cycles: Option<f64>,
    /// Index of the layer in first-appearance order: the group for layer-wise splits.
    pub group: usize,
}

/// One measurement of Gemmini's own tiler on a layer (`dse.auto_tiling`,
/// `target.gemmini_auto_cycle` of a searched-mappings file): what the `gemmini-default`
/// baseline runs, so the predictors can be scored on it too.
#[derive(Clone, Debug, PartialEq)]
pub struct AutoRow {
    pub layer: Layer,
    /// The tiler's tile per dim `R S P Q C K N`, in elements.
    pub tiles: [u64; 7],
    /// Measured cycles.
    pub cycles: f64,
    /// The layer's group, as in the file's [`Sample`]s.
    pub group: usize,
    /// Index of its row among the file's data rows (the row of the searched mapping measured
    /// on the same line).
    pub row: usize,
}

/// Why an RTL file could not be used; `line` is 1-based as an editor shows it.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Csv { path: String, message: String },
    #[error("{path}:{line}: {message}")]
    Row {
        path: String,
        line: u64,
        message: String,
    },
}

const DIM_COLS: [&str; 7] = [
    "prob.R", "prob.S", "prob.P", "prob.Q", "prob.C", "prob.K", "prob.N",
];

/// A stable name for a layer shape, used to group rows of the same layer.
pub fn layer_key(l: &Layer) -> String {
    let [r, s, p, q, c, k, n] = l.dims;
    format!(
        "R{r}_S{s}_P{p}_Q{q}_C{c}_K{k}_N{n}_st{}x{}",
        l.wstride, l.hstride
    )
}

impl AutoRow {
    /// The tiles in the tiler's own units, on the Gemmini template.
    fn tiles(&self) -> (crate::gemmini::tiler::Tiles, crate::ir::Arch) {
        use crate::gemmini::tiler::{self, ConvTiles, MatmulTiles, Tiles};
        let arch = crate::gemmini::rules::tile_arch(&crate::ir::gemmini_arch());
        let dim = tiler::gemmini_params(&arch).dim.max(1);
        let [r, s, p, q, c, k, n] = self.tiles;
        let tiles = if tiler::is_matmul(&self.layer) {
            Tiles::Matmul(MatmulTiles {
                tile_i: p.div_ceil(dim),
                tile_j: k.div_ceil(dim),
                tile_k: c.div_ceil(dim),
            })
        } else {
            Tiles::Conv(ConvTiles {
                batches: n,
                porows: q,
                pocols: p,
                pochs: k,
                krows: s,
                kcols: r,
                kchs: c,
            })
        };
        (tiles, arch)
    }

    /// Gemmini's tiles as the one mapping the `gemmini-default` baseline scores
    /// ([`crate::gemmini::tiler::auto_mapping`]): where a tile does not divide its dim the last
    /// tile is partial, and the layer runs as the pieces of [`Self::pieces`].
    pub fn mapping(&self) -> Result<Mapping, String> {
        let (tiles, arch) = self.tiles();
        crate::gemmini::tiler::auto_mapping(&self.layer, &tiles, &arch).map_err(|e| e.to_string())
    }

    /// The exact (layer, mapping) pieces Gemmini runs for these tiles
    /// ([`crate::gemmini::tiler::hardware_pieces`]: full tiles and the partial last tile of each
    /// dim): the analytical latency of the row is the sum over them, as the cost model scores
    /// [`Self::mapping`].
    pub fn pieces(&self) -> Result<Vec<(Layer, Mapping)>, String> {
        let (tiles, arch) = self.tiles();
        let pieces = crate::gemmini::tiler::hardware_pieces(&self.layer, &tiles, &arch)
            .map_err(|e| e.to_string())?;
        Ok(pieces.into_iter().map(|p| (p.layer, p.mapping)).collect())
    }
}

/// A stable identity of a measured point (layer and mapping), for telling whether a file
/// overlaps a model's training rows: 16 hex digits of a 64-bit FNV-1a hash.
pub fn row_key(layer: &Layer, mapping: &Mapping) -> String {
    let text = format!("{}|{}", layer_key(layer), mapping);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Read an RTL CSV. With `need_target`, every row must carry a positive finite
/// `target.gemmini_cycle`. Every mapping must be a 4-level Gemmini mapping whose factors multiply
/// to the layer's dims.
pub fn load_csv(path: &Path, need_target: bool) -> Result<Vec<Sample>, DataError> {
    let (bytes, p) = read_file(path)?;
    read_csv(bytes.as_slice(), &p, need_target)
}

/// A file's bytes (size-capped) and its name for errors.
fn read_file(path: &Path) -> Result<(Vec<u8>, String), DataError> {
    let p = path.display().to_string();
    let io = |e| DataError::Io {
        path: p.clone(),
        source: e,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let bytes = crate::util::read_capped(file).map_err(io)?;
    Ok((bytes, p))
}

/// [`load_csv`] over any reader (tests feed strings); `name` labels errors.
pub fn read_csv<R: std::io::Read>(
    reader: R,
    name: &str,
    need_target: bool,
) -> Result<Vec<Sample>, DataError> {
    Ok(read_rows(reader, name, need_target)?.0)
}

/// The rows of Gemmini's own tiler in an RTL CSV (`dse.auto_tiling`,
/// `target.gemmini_auto_cycle`); empty when the file has no such columns.
pub fn load_auto(path: &Path) -> Result<Vec<AutoRow>, DataError> {
    let (bytes, p) = read_file(path)?;
    read_auto(bytes.as_slice(), &p)
}

/// [`load_auto`] over any reader; `name` labels errors.
pub fn read_auto<R: std::io::Read>(reader: R, name: &str) -> Result<Vec<AutoRow>, DataError> {
    Ok(read_rows(reader, name, false)?.1)
}

#[allow(clippy::type_complexity)]
fn read_rows<R: std::io::Read>(
    reader: R,
    name: &str,
    need_target: bool,
) -> Result<(Vec<Sample>, Vec<AutoRow>), DataError> {
    let csv_err = |message: String| DataError::Csv {
        path: name.to_string(),
        message,
    };
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(reader);
    let headers = rdr.headers().map_err(|e| csv_err(e.to_string()))?.clone();
    let col = |n: &str| headers.iter().position(|h| h.trim() == n);
    let need = |n: &str| col(n).ok_or_else(|| csv_err(format!("missing column `{n}`")));
    let dim_idx: Vec<usize> = DIM_COLS.iter().map(|c| need(c)).collect::<Result<_, _>>()?;
    let ws = need("prob.Wstride")?;
    let hs = need("prob.Hstride")?;
    let wd = col("prob.Wdilation");
    let hd = col("prob.Hdilation");
    let map_col = need("mapping.mapping")?;
    let tgt = col("target.gemmini_cycle");
    let auto_cols = col("dse.auto_tiling").zip(col("target.gemmini_auto_cycle"));
    let mut autos = Vec::new();
    if need_target && tgt.is_none() {
        return Err(csv_err(
            "missing column `target.gemmini_cycle` (measured RTL cycles)".into(),
        ));
    }
    let mut groups: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| csv_err(e.to_string()))?;
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        let row_err = |message: String| DataError::Row {
            path: name.to_string(),
            line,
            message,
        };
        let num = |i: usize, what: &str| -> Result<u64, DataError> {
            let s = rec.get(i).unwrap_or("").trim();
            let v: f64 = s
                .parse()
                .map_err(|_| row_err(format!("`{what}` is `{s}`, not a number")))?;
            if !(v >= 1.0 && v.fract() == 0.0 && v < 1e12) {
                return Err(row_err(format!(
                    "`{what}` is `{s}`, not a positive integer"
                )));
            }
            Ok(v as u64)
        };
        let mut dims = [1u64; 7];
        for (k, &i) in dim_idx.iter().enumerate() {
            dims[k] = num(i, DIM_COLS[k])?;
        }
        let mut layer = Layer::conv("", dims, num(ws, "prob.Wstride")?, num(hs, "prob.Hstride")?);
        if let Some(i) = wd {
            layer.wdilation = num(i, "prob.Wdilation")?;
        }
        if let Some(i) = hd {
            layer.hdilation = num(i, "prob.Hdilation")?;
        }
        if layer.dim(Dim::R) == 1 && layer.dim(Dim::S) == 1 && layer.dim(Dim::Q) == 1 {
            layer.kind = LayerKind::Matmul;
        }
        layer.name = layer_key(&layer);
        let text = rec.get(map_col).unwrap_or("");
        let mapping = parse_compact(text).map_err(|e| row_err(format!("mapping `{text}`: {e}")))?;
        check_mapping(&layer, &mapping).map_err(row_err)?;
        let cycles = match tgt {
            Some(i) => {
                let s = rec.get(i).unwrap_or("").trim();
                match s.parse::<f64>() {
                    Ok(v) if v.is_finite() && v > 0.0 => Some(v),
                    _ if !need_target && s.is_empty() => None,
                    _ => {
                        return Err(row_err(format!(
                            "`target.gemmini_cycle` is `{s}`, not a positive number"
                        )))
                    }
                }
            }
            None => None,
        };
        let next = groups.len();
        let group = *groups.entry(layer.name.clone()).or_insert(next);
        if let Some((ti, ci)) = auto_cols {
            let text = rec.get(ti).unwrap_or("").trim();
            let c = rec.get(ci).unwrap_or("").trim();
            // A row without a tiler measurement is simply not an auto row.
            if !(text.is_empty() && c.is_empty()) {
                let tiles = parse_tiles(text).map_err(&row_err)?;
                let cycles = match c.parse::<f64>() {
                    Ok(v) if v.is_finite() && v > 0.0 => v,
                    _ => {
                        return Err(row_err(format!(
                            "`target.gemmini_auto_cycle` is `{c}`, not a positive number"
                        )))
                    }
                };
                autos.push(AutoRow {
                    layer: layer.clone(),
                    tiles,
                    cycles,
                    group,
                    row: out.len(),
                });
            }
        }
        out.push(Sample {
            layer,
            mapping,
            cycles,
            group,
        });
    }
    if out.is_empty() {
        return Err(csv_err("no data rows".into()));
    }
    Ok((out, autos))
}

/// `R_S_P_Q_C_K_N` in elements, each a positive integer.
fn parse_tiles(text: &str) -> Result<[u64; 7], String> {
    let bad =
        || format!("`dse.auto_tiling` is `{text}`, not seven positive integers R_S_P_Q_C_K_N");
    let parts: Vec<&str> = text.split('_').collect();
    if parts.len() != 7 {
        return Err(bad());
    }
    let mut t = [0u64; 7];
    for (x, p) in t.iter_mut().zip(parts) {
        *x = p.trim().parse().map_err(|_| bad())?;
        if *x == 0 || *x > 1 << 40 {
            return Err(bad());
        }
    }
    Ok(t)
}

/// A mapping fits a layer when it has the Gemmini levels and its factors multiply to the dims.
pub fn check_mapping(layer: &Layer, m: &Mapping) -> Result<(), String> {
    if m.levels.len() != LEVELS {
        return Err(format!(
            "mapping has {} levels, Gemmini has {LEVELS}",
            m.levels.len()
        ));
    }
    for d in Dim::ALL {
        let got = m.dim_product(d);
        if got != layer.dim(d) as u128 {
            return Err(format!(
                "factors of {d} multiply to {got}, the layer has {d}={}",
                layer.dim(d)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "mapping.mapping,prob.C,prob.Hdilation,prob.Hstride,prob.K,prob.N,prob.P,prob.Q,prob.R,prob.S,prob.Wdilation,prob.Wstride,target.gemmini_cycle\n";

    #[test]
    fn reads_rows_and_groups_layers() {
        let text = format!(
            "{HEAD}L3[WIO] K8 Q28 - L2[WI] N1 K4X - L1[O] K2 S7 R7 Q4 P7 C3X - L0[W] P16,3,1,2,64,1,112,112,7,7,1,2,1234\n\
             L3[WIO] K16 - L2[WI] N1 K4X - L1[O] C8 - L0[W] P1,8,1,1,64,1,1,1,1,1,1,1,99.5\n\
             L3[WIO] K8 Q28 - L2[WI] N1 K4X - L1[O] K2 S7 R7 P7 Q4 C3X - L0[W] P16,3,1,2,64,1,112,112,7,7,1,2,1300\n"
        );
        let s = read_csv(text.as_bytes(), "t.csv", true).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].cycles, Some(1234.0));
        assert_eq!([s[0].group, s[1].group, s[2].group], [0, 1, 0]);
        assert_eq!(s[1].layer.kind, LayerKind::Matmul);
        assert_eq!(s[0].layer.wstride, 2);
    }

    #[test]
    fn bad_rows_are_reported_with_their_line() {
        let bad_factor = format!(
            "{HEAD}L3[WIO] K8 - L2[WI] N1 K4X - L1[O] C3X - L0[W] P1,3,1,1,64,1,1,1,1,1,1,1,5\n"
        );
        let e = read_csv(bad_factor.as_bytes(), "t.csv", true)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("t.csv:2") && e.contains("K multiply to 32"),
            "{e}"
        );
        let bad_target = format!(
            "{HEAD}L3[WIO] K16 - L2[WI] N1 K4X - L1[O] C3X - L0[W] P1,3,1,1,64,1,1,1,1,1,1,1,-3\n"
        );
        let e = read_csv(bad_target.as_bytes(), "t.csv", true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("target.gemmini_cycle"), "{e}");
        let e = read_csv("a,b\n1,2\n".as_bytes(), "t.csv", true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing column `prob.R`"), "{e}");
        let e = read_csv(HEAD.as_bytes(), "t.csv", true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no data rows"), "{e}");
    }
}
