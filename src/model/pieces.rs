//! Partial tiles: what a mapping whose factors do not divide a dim means, and what it costs.
//!
//! A dim marked partial ([`Mapping::partial`], written `K64+`) has an outermost temporal factor
//! that counts tiles of the inner tile `T` (the product of its inner factors), the last one
//! partial: the factor must be `ceil(size / T)`. Such a mapping runs as a sum of exact
//! sub-problems, its *pieces*: per dim a full part (`floor(size / T)` tiles of `T`) and a
//! remainder part (one tile of `size mod T`). Inside the remainder the inner loops are clipped to
//! what is left (`min(factor, ceil(rest / inner))`, innermost first in tile order: the lanes of
//! spatial factors fill before any temporal loop, as in Gemmini's array), as Gemmini's loops
//! bound every tile; a clipped chain that again does not divide splits again. A partial *spatial*
//! factor cannot split (its lanes run together), so that part is padded: the array takes as
//! long for a partial block as for a full one. The pieces of all dims combine as a cross product;
//! each piece's cost is the exact model's, and latency and energy add (pieces run one after
//! another). Known deviation, shared with Gemmini's own tiler: a tensor kept stationary across a
//! split loop is counted once per piece.

use super::exact::ModelError;
use crate::ir::{Dim, Layer, Mapping};

/// A layer and the exact (perfectly factorised) mapping that runs it.
#[derive(Clone, Debug, PartialEq)]
pub struct Piece {
    pub layer: Layer,
    pub mapping: Mapping,
}

/// More pieces than this is an error rather than a slow evaluation (2^7 from one remainder per
/// dim, times a few clipped splits).
pub const MAX_PIECES: usize = 4096;

fn ceil_div(a: u64, b: u64) -> u64 {
    a.div_ceil(b.max(1))
}

/// Factors of `d` in tile order, innermost first: every level's spatial factor (lanes fill
/// first, as an array's do), then every level's temporal one; with whether each is spatial.
/// Slot `k` of level `l` is `l` (spatial) or `levels + l` (temporal).
fn chain(m: &Mapping, d: Dim) -> (Vec<u64>, Vec<bool>) {
    let n = m.levels.len();
    let f = (0..2 * n)
        .map(|k| {
            if k < n {
                m.levels[k].spatial[d.index()]
            } else {
                m.levels[k - n].temporal[d.index()]
            }
        })
        .collect();
    let sp = (0..2 * n).map(|k| k < n).collect();
    (f, sp)
}

fn product(f: &[u64]) -> u128 {
    f.iter().map(|&x| x as u128).product()
}

/// Check that the factors of every dim divide it, or cover it with a marked partial last tile.
pub fn check_cover(layer: &Layer, m: &Mapping) -> Result<(), ModelError> {
    for d in Dim::ALL {
        let size = layer.dim(d);
        let got = m.dim_product(d);
        if got == size as u128 {
            continue;
        }
        if !m.partial[d.index()] {
            return Err(ModelError::Factorisation {
                dim: d,
                got,
                want: size,
            });
        }
        let Some((level, spatial, factor)) = m.outermost(d) else {
            return Err(ModelError::Factorisation {
                dim: d,
                got,
                want: size,
            });
        };
        let inner = got / factor as u128;
        if spatial {
            return Err(ModelError::PartialSpatial { dim: d, level });
        }
        let want = (size as u128).div_ceil(inner.max(1));
        if want != factor as u128 {
            return Err(ModelError::PartialCount {
                dim: d,
                level,
                got: factor,
                size,
                inner,
                want,
            });
        }
    }
    Ok(())
}

/// Whether some dim really has a partial last tile (its factors do not multiply to it).
pub fn is_partial(layer: &Layer, m: &Mapping) -> bool {
    Dim::ALL
        .iter()
        .any(|&d| m.dim_product(d) != layer.dim(d) as u128)
}

/// The layer grown to what the factors cover (each dim rounded up to whole tiles): the problem
/// whose exact mapping has the same tiles, so the same buffer need; padding it is an upper bound
/// of the partial mapping's work.
pub fn covering_layer(layer: &Layer, m: &Mapping) -> Layer {
    let mut l = layer.clone();
    for d in Dim::ALL {
        l.dims[d.index()] = u64::try_from(m.dim_product(d)).unwrap_or(u64::MAX);
    }
    l
}

/// Whether `n` has a prime factor above 7: a size whose divisors are too few for good exact
/// tiles, where the search and the random mapper also try tiles with a partial last one.
pub fn awkward(n: u64) -> bool {
    let mut n = n.max(1);
    for p in [2, 3, 5, 7] {
        while n % p == 0 {
            n /= p;
        }
    }
    n > 1
}

/// Re-establish the cover after factors moved: per dim, the factors in tile order (see
/// `chain`: spatial ones first) are kept until they reach the dim, the one that reaches it becomes the count of tiles below it
/// (and the outer ones 1), and the backing level (the last) counts the rest, `ceil`; a dim is
/// partial exactly when its factors then do not multiply to it. Identity on a mapping whose
/// factors divide. A spatial factor that would overshoot is cut to the lanes that fill, so the
/// partial count always lands on a temporal factor.
pub fn normalize_cover(layer: &Layer, m: &mut Mapping) {
    let Some(back) = m.levels.len().checked_sub(1) else {
        return;
    };
    for d in Dim::ALL {
        let i = d.index();
        let size = layer.dim(d).max(1);
        m.levels[back].temporal[i] = 1;
        let mut covered = 1u64;
        let mut done = false;
        for spatial in [true, false] {
            for lm in &mut m.levels {
                let f = if spatial {
                    &mut lm.spatial[i]
                } else {
                    &mut lm.temporal[i]
                };
                if done {
                    *f = 1;
                    continue;
                }
                if covered.saturating_mul(*f) >= size {
                    let want = ceil_div(size, covered);
                    *f = if spatial && want * covered != size {
                        (size / covered).max(1)
                    } else {
                        want
                    };
                    covered = covered.saturating_mul(*f);
                    done = covered >= size;
                } else {
                    covered *= *f;
                }
            }
        }
        if covered < size {
            m.levels[back].temporal[i] = ceil_div(size, covered);
            let lm = &mut m.levels[back];
            if !lm.order.contains(&d) {
                lm.order.push(d);
            }
        }
        m.partial[i] = m.dim_product(d) != size as u128;
    }
    for lm in &mut m.levels {
        lm.normalize_order();
    }
}

/// The (factors, extent) parts one dim splits into; see the module documentation.
fn parts(f: &[u64], spatial: &[bool], size: u64, out: &mut Vec<(Vec<u64>, u64)>) {
    let prod = product(f);
    if prod == size as u128 {
        out.push((f.to_vec(), size));
        return;
    }
    let Some(m) = f.iter().rposition(|&x| x > 1) else {
        out.push((f.to_vec(), size));
        return;
    };
    let inner = u64::try_from(product(&f[..m])).unwrap_or(u64::MAX);
    if spatial[m] || inner == 0 || prod < size as u128 {
        // Lanes run together (or the chain does not reach the size, which check_cover
        // excludes): pad to what the chain covers.
        out.push((f.to_vec(), u64::try_from(prod).unwrap_or(u64::MAX)));
        return;
    }
    let q = size / inner;
    let r = size - q * inner;
    if q > 0 {
        let mut full = f.to_vec();
        full[m] = q;
        out.push((full, q * inner));
    }
    if r > 0 {
        let mut rem = f.to_vec();
        rem[m] = 1;
        let mut covered = 1u64;
        for x in rem.iter_mut().take(m) {
            *x = (*x).min(ceil_div(r, covered));
            covered = covered.saturating_mul(*x);
        }
        parts(&rem, spatial, r, out);
    }
}

/// The exact sub-problems a (checked) mapping runs as: one piece, the layer itself, when every
/// factor divides; otherwise the cross product of every dim's parts.
pub fn pieces(layer: &Layer, m: &Mapping) -> Result<Vec<Piece>, ModelError> {
    let mut per_dim: Vec<Vec<(Vec<u64>, u64)>> = Vec::with_capacity(7);
    let mut count = 1usize;
    for d in Dim::ALL {
        let (f, sp) = chain(m, d);
        let mut v = Vec::new();
        parts(&f, &sp, layer.dim(d), &mut v);
        count = count.saturating_mul(v.len());
        per_dim.push(v);
    }
    if count > MAX_PIECES {
        return Err(ModelError::TooManyPieces {
            layer: layer.name.clone(),
            count,
        });
    }
    let mut out = Vec::with_capacity(count);
    let mut idx = [0usize; 7];
    loop {
        let mut piece = Piece {
            layer: layer.clone(),
            mapping: Mapping::new(m.levels.clone()),
        };
        for d in Dim::ALL {
            let (f, extent) = &per_dim[d.index()][idx[d.index()]];
            piece.layer.dims[d.index()] = *extent;
            let n = piece.mapping.levels.len();
            for (k, lm) in piece.mapping.levels.iter_mut().enumerate() {
                lm.spatial[d.index()] = f[k];
                lm.temporal[d.index()] = f[n + k];
            }
        }
        for lm in &mut piece.mapping.levels {
            lm.normalize_order();
        }
        out.push(piece);
        // Odometer over the parts, last dim fastest.
        let mut k = 7;
        loop {
            if k == 0 {
                return Ok(out);
            }
            k -= 1;
            idx[k] += 1;
            if idx[k] < per_dim[k].len() {
                break;
            }
            idx[k] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::parse_compact;

    fn layer(dims: [u64; 7]) -> Layer {
        Layer::conv("t", dims, 1, 1)
    }

    #[test]
    fn a_dividing_mapping_is_one_piece_of_itself() {
        let l = layer([1, 1, 16, 1, 32, 64, 1]);
        let m = parse_compact("L3[WIO] K4 - L2[WI] K16X - L1[O] P16 C2 C16X - L0[W] N1").unwrap();
        check_cover(&l, &m).unwrap();
        let p = pieces(&l, &m).unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].layer, l);
        assert_eq!(p[0].mapping, m);
    }

    #[test]
    fn a_prime_dim_splits_into_full_tiles_and_one_remainder() {
        // K = 1009 in tiles of 16: 63 full tiles and one tile of 1.
        let l = layer([1, 1, 1, 1, 1, 1009, 1]);
        let m = parse_compact("L3[WIO] K64+ - L2[WI] K16X - L1[O] N1 - L0[W] N1").unwrap();
        assert!(m.partial[Dim::K.index()]);
        assert_eq!(
            m.to_string(),
            "L3[WIO] K64+ - L2[WI] N1 K16X - L1[O] N1 - L0[W] N1"
        );
        check_cover(&l, &m).unwrap();
        let p = pieces(&l, &m).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].layer.dim(Dim::K), 1008);
        assert_eq!(
            p[0].mapping.to_string(),
            "L3[WIO] K63 - L2[WI] N1 K16X - L1[O] N1 - L0[W] N1"
        );
        assert_eq!(p[1].layer.dim(Dim::K), 1);
        assert_eq!(
            p[1].mapping.to_string(),
            "L3[WIO] N1 - L2[WI] N1 - L1[O] N1 - L0[W] N1"
        );
    }

    #[test]
    fn a_clipped_remainder_splits_again_and_pads_only_lanes() {
        // C = 40 in tiles of 3 x 8 = 24: one full tile, then 16 left: clipped to C8X x C2.
        let l = layer([1, 1, 1, 1, 40, 1, 1]);
        let m = parse_compact("L3[WIO] C2+ - L2[WI] N1 - L1[O] C3 C8X - L0[W] N1").unwrap();
        check_cover(&l, &m).unwrap();
        let p = pieces(&l, &m).unwrap();
        let ext: Vec<u64> = p.iter().map(|x| x.layer.dim(Dim::C)).collect();
        assert_eq!(ext, vec![24, 16]);
        // 20 left of 24 with lanes of 8: C8X x C3 covers 24 > 20, its last block padded.
        let l = layer([1, 1, 1, 1, 44, 1, 1]);
        let p = pieces(&l, &m).unwrap();
        let ext: Vec<u64> = p.iter().map(|x| x.layer.dim(Dim::C)).collect();
        assert_eq!(ext, vec![24, 16, 4]);
        assert_eq!(p[2].mapping.levels[1].spatial[Dim::C.index()], 4);
    }

    #[test]
    fn normalizing_keeps_exact_mappings_and_repairs_moved_factors() {
        let l = layer([1, 1, 16, 1, 32, 64, 1]);
        let m = parse_compact("L3[WIO] K4 - L2[WI] K16X - L1[O] P16 C2 C16X - L0[W] N1").unwrap();
        let mut n = m.clone();
        normalize_cover(&l, &mut n);
        assert_eq!(n, m);
        // K = 1009: 16 lanes, then the backing level counts ceil(1009/16) = 64 tiles.
        let l = layer([1, 1, 1, 1, 1, 1009, 1]);
        let mut m = parse_compact("L3[WIO] K7 - L2[WI] K16X - L1[O] N1 - L0[W] N1").unwrap();
        normalize_cover(&l, &mut m);
        assert_eq!(
            m.to_string(),
            "L3[WIO] K64+ - L2[WI] N1 K16X - L1[O] N1 - L0[W] N1"
        );
        check_cover(&l, &m).unwrap();
        // An inner chain past the dim is cut, lanes first: K = 20 with K16X (L2) and K4 (L1)
        // -> 16 lanes and two tiles of them, the last partial.
        let l = layer([1, 1, 1, 1, 1, 20, 1]);
        let mut m = parse_compact("L3[WIO] N1 - L2[WI] K16X - L1[O] K4 - L0[W] N1").unwrap();
        normalize_cover(&l, &mut m);
        assert_eq!(
            m.to_string(),
            "L3[WIO] N1 - L2[WI] N1 K16X - L1[O] K2+ - L0[W] N1"
        );
        check_cover(&l, &m).unwrap();
        // Lanes that would overshoot are cut to those that fill: K = 12 -> K12X.
        let l = layer([1, 1, 1, 1, 1, 12, 1]);
        normalize_cover(&l, &mut m);
        assert_eq!(
            m.to_string(),
            "L3[WIO] N1 - L2[WI] N1 K12X - L1[O] N1 - L0[W] N1"
        );
    }

    #[test]
    fn a_wrong_count_or_an_unmarked_remainder_is_refused() {
        let l = layer([1, 1, 1, 1, 1, 1009, 1]);
        let m = parse_compact("L3[WIO] K63+ - L2[WI] K16X - L1[O] N1 - L0[W] N1").unwrap();
        assert!(matches!(
            check_cover(&l, &m),
            Err(ModelError::PartialCount { want: 64, .. })
        ));
        let m = parse_compact("L3[WIO] K64 - L2[WI] K16X - L1[O] N1 - L0[W] N1").unwrap();
        assert!(matches!(
            check_cover(&l, &m),
            Err(ModelError::Factorisation { .. })
        ));
        assert!(parse_compact("L3[WIO] K64 - L2[WI] K16+ - L1[O] N1 - L0[W] N1").is_err());
    }
}
