//! Partial tiles (`K64+`): the exact model of a mapping whose factors do not divide the layer is
//! the sum of its pieces, equal to the exact-factor model whenever they divide.

use dosa::ir::{gemmini_arch, Dim, Hardware, Layer, Mapping};
use dosa::model::exact::{evaluate_layer, sum_evals, EvalOptions};
use dosa::model::pieces::{check_cover, normalize_cover, pieces};
use dosa::passes::legal::check;
use dosa::passes::random::random_mapping;
use dosa::search::dosa::{prime_moves, tile_moves};
use dosa::util::Rng;
use proptest::prelude::*;

fn hw() -> Hardware {
    Hardware {
        pe_dim: 16.0,
        usable_bytes: vec![256.0, 1e12, 1e12, 0.0],
    }
}

fn points(l: &Layer) -> u128 {
    Dim::ALL.iter().map(|&d| l.dim(d) as u128).product()
}

/// A mapping with partial tiles of `layer`: a random one, its factors grown by one or two and
/// the cover re-established.
fn partial_mapping(layer: &Layer, rng: &mut Rng) -> Mapping {
    let arch = gemmini_arch();
    let mut m = dosa::passes::random::random_mapping_with(&arch, layer, 16, rng, true);
    for _ in 0..3 {
        let moves = tile_moves(&arch, layer, &m, 16);
        if moves.is_empty() {
            break;
        }
        m = moves[rng.below(moves.len() as u64) as usize].clone();
    }
    for (lm, level) in m.levels.iter_mut().zip(&arch.levels).take(3) {
        for d in Dim::ALL {
            if level.allows_temporal(d) {
                lm.temporal[d.index()] += rng.below(2);
            }
        }
    }
    normalize_cover(layer, &mut m);
    m
}

fn dims() -> impl Strategy<Value = [u64; 7]> {
    (
        1u64..4,
        1u64..4,
        1u64..40,
        1u64..40,
        1u64..70,
        1u64..70,
        1u64..3,
    )
        .prop_map(|(r, s, p, q, c, k, n)| [r, s, p, q, c, k, n])
}

/// Sizes with small prime factors only: the random mapper then draws exact factors.
fn smooth_dims() -> impl Strategy<Value = [u64; 7]> {
    let smooth = || {
        (0u32..5, 0u32..3, 0u32..2).prop_map(|(a, b, c)| 2u64.pow(a) * 3u64.pow(b) * 5u64.pow(c))
    };
    (
        1u64..4,
        1u64..4,
        smooth(),
        smooth(),
        smooth(),
        smooth(),
        1u64..3,
    )
        .prop_map(|(r, s, p, q, c, k, n)| [r, s, p, q, c, k, n])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    /// Marking dims partial changes nothing when the factors divide: one piece, the same cost.
    #[test]
    fn exact_factors_cost_the_same_marked_partial(d in smooth_dims(), stride in 1u64..3, seed: u64) {
        let arch = gemmini_arch();
        let layer = Layer::conv("l", d, stride, stride);
        let m = random_mapping(&arch, &layer, 16, &mut Rng::new(seed));
        prop_assert!(!m.has_partial());
        let mut marked = m.clone();
        marked.partial = [true; 7];
        prop_assert!(check_cover(&layer, &marked).is_ok());
        prop_assert_eq!(pieces(&layer, &marked).unwrap().len(), 1);
        for opts in [EvalOptions::analytical(&arch), EvalOptions::timeloop(&arch)] {
            let a = evaluate_layer(&arch, &layer, &m, &hw(), &opts).unwrap();
            let b = evaluate_layer(&arch, &layer, &marked, &hw(), &opts).unwrap();
            prop_assert_eq!(a, b);
        }
    }

    /// A partial mapping is legal, its pieces are exact legal mappings that run every point of
    /// the layer once, and its cost is the sum of theirs, each evaluated as an ordinary layer.
    #[test]
    fn partial_cost_is_the_sum_of_its_pieces(d in dims(), stride in 1u64..3, seed: u64) {
        let arch = gemmini_arch();
        let layer = Layer::conv("l", d, stride, stride);
        let m = partial_mapping(&layer, &mut Rng::new(seed));
        prop_assert!(check(&arch, &layer, &m, 16).is_ok(), "{}", m);
        // The compact form round-trips, partial marks included.
        prop_assert_eq!(&dosa::ir::parse_compact(&m.to_string()).unwrap(), &m);
        let ps = pieces(&layer, &m).unwrap();
        let covered: u128 = ps.iter().map(|p| points(&p.layer)).sum();
        prop_assert_eq!(covered, points(&layer));
        for p in &ps {
            prop_assert!(!p.mapping.has_partial());
            prop_assert!(check(&arch, &p.layer, &p.mapping, 16).is_ok(), "{} of {}", p.mapping, m);
        }
        for opts in [EvalOptions::analytical(&arch), EvalOptions::timeloop(&arch)] {
            let total = evaluate_layer(&arch, &layer, &m, &hw(), &opts).unwrap();
            let parts = sum_evals(ps.iter().map(|p| {
                evaluate_layer(&arch, &p.layer, &p.mapping, &hw(), &opts).unwrap()
            }))
            .unwrap();
            prop_assert!(total.cycles.is_finite() && total.energy_uj.is_finite());
            prop_assert_eq!(total.cycles, parts.cycles);
            prop_assert_eq!(total.energy_uj, parts.energy_uj);
            prop_assert_eq!(total.macs, layer.macs());
        }
        // Every prime move from it keeps covering the layer.
        for m2 in prime_moves(&arch, &layer, &m, 16) {
            prop_assert!(check(&arch, &layer, &m2, 16).is_ok(), "{} -> {}", m, m2);
        }
    }
}

/// The pieces of one layer by hand: K = 1009 in 16 lanes, P = 97 in tiles of 10.
#[test]
fn a_prime_layer_splits_into_four_pieces() {
    let arch = gemmini_arch();
    let layer = Layer::conv("head", [1, 1, 97, 97, 3, 1009, 1], 1, 1);
    let m =
        dosa::ir::parse_compact("L3[WIO] K64+ P10+ Q97 - L2[WI] K16X - L1[O] P10 C3X - L0[W] N1")
            .unwrap();
    let ps = pieces(&layer, &m).unwrap();
    let shapes: Vec<(u64, u64)> = ps
        .iter()
        .map(|p| (p.layer.dim(Dim::P), p.layer.dim(Dim::K)))
        .collect();
    assert_eq!(shapes, vec![(90, 1008), (90, 1), (7, 1008), (7, 1)]);
    let ev = evaluate_layer(&arch, &layer, &m, &hw(), &EvalOptions::analytical(&arch)).unwrap();
    assert_eq!(ev.macs, layer.macs());
    // The buffers it needs are those of its full tiles: the padded problem's.
    let padded = dosa::model::pieces::covering_layer(&layer, &m);
    assert_eq!((padded.dim(Dim::P), padded.dim(Dim::K)), (100, 1024));
    let mut exact = m.clone();
    exact.partial = [false; 7];
    let need = dosa::model::exact::min_hardware(&arch, &padded, &exact).unwrap();
    assert_eq!(ev.min_hw, need);
}

/// The IR of a partial mapping (what `check --emit ir` prints): the partial dims are listed,
/// and a mapping without any keeps the IR it always had (no `partial` key).
#[test]
fn the_ir_names_partial_dims_only_when_there_are_some() {
    let m = dosa::ir::parse_compact("L3[WIO] K64+ Q97 - L2[WI] N1 K16X - L1[O] P97 C3X - L0[W] N1")
        .unwrap();
    insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
        insta::assert_json_snapshot!("ir_partial_mapping", m);
    });
    let exact =
        dosa::ir::parse_compact("L3[WIO] K8 - L2[WI] N1 K16X - L1[O] P4 - L0[W] N1").unwrap();
    let json = serde_json::to_string(&exact).unwrap();
    assert!(!json.contains("partial"), "{json}");
    let back: Mapping = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
    assert_eq!(back, m);
}
