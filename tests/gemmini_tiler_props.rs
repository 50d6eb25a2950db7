//! Properties of Gemmini's default tilers and of their mappings on random layers and
//! configurations: tiles obey the capacity rules and the layer's bounds, and the mappings
//! factorise the (padded) layer exactly.

use dosa::gemmini::tiler::{
    auto_mapping, auto_tile, check_tiles, element_tile, gemmini_params, hardware_pieces,
    mapping_to_tiles, padded_problem, ConvTiles, GemminiParams, Tiles,
};
use dosa::ir::{gemmini_arch, Bound, Dim, Layer};
use dosa::passes::legal;
use proptest::prelude::*;

fn any_conv() -> impl Strategy<Value = Layer> {
    (
        (1u64..=7, 1u64..=7),
        (1u64..=300, 1u64..=300),
        (1u64..=2048, 1u64..=2048, 1u64..=4),
        (1u64..=3, 1u64..=3, 1u64..=2, 1u64..=2),
    )
        .prop_map(|((r, s), (p, q), (c, k, n), (ws, hs, wd, hd))| {
            let mut l = Layer::conv("l", [r, s, p, q, c, k, n], ws, hs);
            l.wdilation = wd;
            l.hdilation = hd;
            l
        })
}

fn any_matmul() -> impl Strategy<Value = Layer> {
    (1u64..=4096, 1u64..=4096, 1u64..=4096).prop_map(|(m, k, n)| Layer::matmul("m", m, k, n))
}

fn any_layer() -> impl Strategy<Value = Layer> {
    prop_oneof![any_conv(), any_matmul()]
}

/// A Gemmini configuration: array side, physical scratchpad and accumulator.
fn any_params() -> impl Strategy<Value = GemminiParams> {
    (
        prop::sample::select(vec![4u64, 8, 16, 32]),
        16u64..=1024,
        4u64..=256,
    )
        .prop_map(|(dim, sp_kib, acc_kib)| GemminiParams {
            dim,
            bank_num: 4,
            bank_rows: sp_kib * 1024 / dim / 4,
            acc_rows: acc_kib * 1024 / (dim * 4),
            downsample: false,
        })
}

fn within_layer(l: &Layer, t: &Tiles, dim: u64) -> bool {
    match t {
        Tiles::Conv(_) => {
            let e = t.element_dims(dim);
            Dim::ALL
                .iter()
                .all(|&d| e[d.index()] >= 1 && e[d.index()] <= l.dim(d))
        }
        Tiles::Matmul(m) => {
            let blocks = |n: u64| n.div_ceil(dim);
            m.tile_i >= 1
                && m.tile_j >= 1
                && m.tile_k >= 1
                && m.tile_i <= blocks(l.dim(Dim::P))
                && m.tile_j <= blocks(l.dim(Dim::K))
                && m.tile_k <= blocks(l.dim(Dim::C))
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn default_tiles_fit_and_stay_within_the_layer(l in any_layer()) {
        let p = GemminiParams::shipped();
        let t = auto_tile(&l, &p);
        prop_assert!(check_tiles(&l, &t, &p).is_ok(), "{:?} -> {:?}: {:?}", l.dims, t, check_tiles(&l, &t, &p));
        prop_assert!(within_layer(&l, &t, p.dim));
    }

    #[test]
    fn tiles_fit_any_sane_configuration(l in any_layer(), p in any_params()) {
        let t = auto_tile(&l, &p);
        prop_assert!(within_layer(&l, &t, p.dim));
        match t {
            Tiles::Conv(c) => {
                // Only a configuration too small for even a 1-element tile may fail.
                if check_tiles(&l, &t, &p).is_err() {
                    prop_assert_eq!(c, ConvTiles::from_array([1; 7]));
                }
            }
            Tiles::Matmul(_) => {
                // Upstream's start always fits when the accumulator holds a block per tile side
                // and the scratchpad partition holds at least that many blocks.
                let s = (((p.acc_rows / 2) / p.dim) as f64).sqrt() as u64;
                let mats = ((p.bank_num * p.bank_rows / 2) / 2) / p.dim;
                if s >= 1 && mats >= s {
                    prop_assert!(check_tiles(&l, &t, &p).is_ok(), "{:?} {:?}: {:?}", p, t, check_tiles(&l, &t, &p));
                }
            }
        }
    }

    #[test]
    fn mappings_factorise_the_padded_layer_exactly(l in any_layer()) {
        let arch = gemmini_arch();
        let p = gemmini_params(&arch);
        let t = auto_tile(&l, &p);
        let padded = padded_problem(&l, &t, &arch).unwrap();
        for d in Dim::ALL {
            prop_assert_eq!(padded.mapping.dim_product(d), padded.layer.dim(d) as u128);
            prop_assert!(padded.layer.dim(d) >= l.dim(d));
        }
        prop_assert!(legal::check(&arch, &padded.layer, &padded.mapping, p.dim).is_ok());
        // The mapping's accumulator-level tile is Gemmini's tile (C and K rounded up to the array).
        let back = mapping_to_tiles(&l, &padded.mapping, p.dim).element_dims(p.dim);
        let tile = element_tile(&l, &t, p.dim).unwrap();
        let want = match t { Tiles::Conv(_) => tile, Tiles::Matmul(_) => t.element_dims(p.dim) };
        for d in Dim::ALL {
            let (b, w) = (back[d.index()], want[d.index()]);
            if matches!(d, Dim::C | Dim::K) {
                prop_assert!(b >= w && b < w + p.dim, "{d}: {b} vs {w}");
            } else if matches!(t, Tiles::Conv(_)) {
                prop_assert_eq!(b, w, "{}", d);
            }
        }
    }

    /// Gemmini's tiles as one mapping with partial last tiles: its pieces are exact, legal, and
    /// run every point of the layer exactly once (a partial block of C or K runs on fewer
    /// lanes), and their steps on the array equal the padded count Gemmini's loops take.
    #[test]
    fn pieces_run_every_point_once(l in any_layer()) {
        let arch = gemmini_arch();
        let p = gemmini_params(&arch);
        let t = auto_tile(&l, &p);
        let m = auto_mapping(&l, &t, &arch).unwrap();
        prop_assert!(legal::check(&arch, &l, &m, p.dim).is_ok(), "{}", m);
        let pieces = hardware_pieces(&l, &t, &arch).unwrap();
        prop_assert!(!pieces.is_empty() && pieces.len() <= 3usize.pow(7));
        for pc in &pieces {
            for d in Dim::ALL {
                prop_assert_eq!(pc.mapping.dim_product(d), pc.layer.dim(d) as u128);
            }
            prop_assert!(legal::check(&arch, &pc.layer, &pc.mapping, p.dim).is_ok());
        }
        let points = |x: &Layer| Dim::ALL.iter().map(|&d| x.dim(d) as u128).product::<u128>();
        let covered: u128 = pieces.iter().map(|pc| points(&pc.layer)).sum();
        prop_assert_eq!(covered, points(&l));
        // Steps on the array (temporal iterations) are those of the tiles padded to whole blocks.
        let steps = |x: &dosa::ir::Mapping| x.levels.iter().map(|lv| lv.temporal.iter().map(|&f| f as u128).product::<u128>()).product::<u128>();
        let total: u128 = pieces.iter().map(|pc| steps(&pc.mapping)).sum();
        let padded = padded_problem(&l, &t, &arch).unwrap();
        prop_assert!(total <= steps(&padded.mapping), "{} > {}", total, steps(&padded.mapping));
    }

    #[test]
    fn params_follow_the_physical_buffers(
        dim in prop::sample::select(vec![4u64, 8, 16, 32]),
        sp_kib in 16u64..=1024,
        acc_kib in 4u64..=256,
    ) {
        let mut a = gemmini_arch();
        a.pe_dim = Bound::Fixed(dim);
        a.levels[2].capacity = Bound::Fixed(sp_kib * 1024);
        // The accumulator's capacity is per column instance.
        a.levels[1].capacity = Bound::Fixed(acc_kib * 1024 / dim);
        let p = gemmini_params(&a);
        prop_assert_eq!(p.dim, dim);
        prop_assert_eq!(p.bank_num * p.bank_rows * dim, sp_kib * 1024);
        prop_assert_eq!(p.acc_rows * dim * 4, acc_kib * 1024);
    }
}
