//! The search and the baselines: every result is legal, fits its hardware and bounds, and the
//! same seed gives the same bytes.

use dosa::ir::{gemmini_arch, HwBounds, Layer, Objective, SearchSpec};
use dosa::passes::legal::check;
use dosa::search::design::{round_hardware, within_bounds, Exact, Scored};
use dosa::search::{baseline, bo, dosa as one_loop, floor, AnalyticalModel, Engine};
use proptest::prelude::*;

fn small_net() -> Vec<Layer> {
    let mut a = Layer::conv("conv3x3", [3, 3, 14, 14, 32, 64, 1], 1, 1);
    a.count = 2;
    let b = Layer::conv("conv1x1", [1, 1, 28, 28, 64, 32, 1], 1, 1);
    let c = Layer::matmul("fc", 16, 256, 100);
    vec![a, b, c]
}

/// Every mapping is legal for its layer, and the derived hardware holds every layer's needs.
fn assert_design_ok(model: &dyn Exact, layers: &[Layer], s: &Scored, bounds: &HwBounds) {
    let arch = model.arch();
    let pe = s.hardware.pe_dim.round() as u64;
    for (l, m) in layers.iter().zip(&s.mappings) {
        check(arch, l, m, pe).unwrap_or_else(|e| panic!("illegal mapping {m}: {e}"));
        let need = round_hardware(arch, &model.min_hardware(l, m));
        assert!(
            baseline::fits(arch, &need, &s.hardware),
            "{} does not fit: {need:?} > {:?}",
            l.name,
            s.hardware
        );
    }
    assert!(
        within_bounds(arch, &s.hardware, bounds),
        "{:?} breaks {bounds:?}",
        s.hardware
    );
    assert!(s.latency.is_finite() && s.latency > 0.0 && s.energy.is_finite() && s.energy > 0.0);
}

#[test]
fn gemmini_default_runs_every_layer_on_shipped_hardware() {
    let arch = gemmini_arch();
    let model = AnalyticalModel::new(&arch);
    let layers = small_net();
    let s = baseline::gemmini_default(&model, &layers).unwrap();
    assert_eq!(s.hardware.pe_dim, 16.0);
    // Usable halves of 256 KiB and 64 KiB.
    assert_eq!(s.hardware.usable_bytes[2], 128.0 * 1024.0);
    assert_eq!(s.hardware.usable_bytes[1], 32.0 * 1024.0);
    assert!(s.latency > 0.0 && s.energy > 0.0);
    // The compute bound holds: no layer runs faster than its MACs over 256 PEs.
    for (l, c) in layers.iter().zip(&s.costs) {
        assert!(
            c.0 >= l.macs() / 256.0 - 1e-9,
            "{}: {} cycles < {}",
            l.name,
            c.0,
            l.macs() / 256.0
        );
    }
}

/// Gemmini's shipped sizes as bounds.
fn gemmini_bounds() -> HwBounds {
    HwBounds {
        pe_max: Some(16),
        sp_max_kib: Some(256.0),
        acc_max_kib: Some(64.0),
    }
}

/// A sampling baseline run twice with the same seed: the same design and curve, `evals`
/// evaluations, a legal bounded design, and a curve that never goes up and ends at the design.
fn assert_sampler_ok(
    run: impl Fn(&AnalyticalModel, &[Layer], &HwBounds) -> (Scored, u64, Vec<(u64, f64)>),
    evals: u64,
) {
    let arch = gemmini_arch();
    let model = AnalyticalModel::new(&arch);
    let layers = small_net();
    let bounds = gemmini_bounds();
    let (a, ea, ca) = run(&model, &layers, &bounds);
    let (b, _, cb) = run(&model, &layers, &bounds);
    assert_eq!(ea, evals);
    assert_eq!(a.mappings, b.mappings);
    assert_eq!(a.hardware, b.hardware);
    assert_eq!(ca, cb);
    assert_design_ok(&model, &layers, &a, &bounds);
    assert!(ca.windows(2).all(|w| w[1].1 <= w[0].1));
    assert!(ca.last().unwrap().1 <= a.edp() * (1.0 + 1e-12));
}

#[test]
fn random_search_is_legal_bounded_and_deterministic() {
    assert_sampler_ok(
        |m, l, b| baseline::random_search(m, l, b, Objective::Edp, 3, 20, 7),
        60,
    );
}

#[test]
fn bo_search_is_legal_bounded_and_deterministic() {
    assert_sampler_ok(
        |m, l, b| bo::bo_search(m, l, b, Objective::Edp, 8, 4, 7),
        32,
    );
}

/// No method beats the floor: the tutorial's network with its own bounds, and the small network
/// free and bounded to Gemmini's array, through the search, random, bo and gemmini-default, plus
/// the tutorial's hand-written mappings on the shipped hardware.
#[test]
fn every_method_lands_above_the_edp_floor() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/tutorial.dosa");
    let program = dosa::syntax::load_path(&path).unwrap();
    let arch = program.arch.clone();
    let tiny = program.networks[0].layers.clone();
    let gemmini_bounds = gemmini_bounds();
    let cases = [
        (tiny, program.search.bounds),
        (small_net(), HwBounds::default()),
        (small_net(), gemmini_bounds),
    ];
    for (layers, bounds) in cases {
        // The largest array any method here may use: the bound or the default range, and
        // Gemmini's shipped 16 for gemmini-default.
        let pe_cap = bounds.pe_max.unwrap_or(128).max(16);
        let f = floor::network_floor(&arch, &layers, pe_cap);
        assert!(f.latency > 0.0 && f.energy > 0.0);
        let spec = SearchSpec {
            starts: 1,
            steps: 60,
            round_every: 30,
            seed: 2,
            bounds,
            ..SearchSpec::default()
        };
        let engine = Engine::new(&arch, &layers, &spec).unwrap();
        let model = engine.exact();
        let mut designs = vec![
            (
                "search",
                one_loop::search(model, engine.relaxation(), &layers, &spec).best,
            ),
            (
                "random",
                baseline::random_search(model, &layers, &bounds, Objective::Edp, 3, 8, 2).0,
            ),
            (
                "bo",
                bo::bo_search(model, &layers, &bounds, Objective::Edp, 7, 3, 2).0,
            ),
            (
                "gemmini-default",
                baseline::gemmini_default(model, &layers).unwrap(),
            ),
        ];
        if layers.len() == 3 && layers[0].name == "conv1" {
            let mappings: Vec<_> = layers
                .iter()
                .map(|l| {
                    program
                        .mappings
                        .iter()
                        .find(|m| m.layer == l.name)
                        .map(|m| m.mapping.clone())
                })
                .collect();
            if mappings.iter().all(Option::is_some) {
                let m = mappings.into_iter().map(Option::unwrap).collect();
                designs.push((
                    "hand-written",
                    dosa::search::design::score(model, &layers, m),
                ));
            }
        }
        for (name, s) in designs {
            assert!(
                s.latency >= f.latency * (1.0 - 1e-12) && s.energy >= f.energy * (1.0 - 1e-12),
                "{name}: ({}, {}) below the floor ({}, {})",
                s.latency,
                s.energy,
                f.latency,
                f.energy
            );
            assert!(s.edp() >= f.edp() * (1.0 - 1e-12));
        }
    }
}

fn quick_spec(seed: u64, bounds: HwBounds) -> SearchSpec {
    SearchSpec {
        starts: 2,
        steps: 120,
        round_every: 40,
        seed,
        bounds,
        ..SearchSpec::default()
    }
}

#[test]
fn search_beats_its_own_start_and_is_deterministic() {
    let arch = gemmini_arch();
    let layers = small_net();
    let spec = quick_spec(3, HwBounds::default());
    let engine = Engine::new(&arch, &layers, &spec).unwrap();
    let a = one_loop::search(engine.exact(), engine.relaxation(), &layers, &spec);
    let b = one_loop::search(engine.exact(), engine.relaxation(), &layers, &spec);
    assert_eq!(a.best.mappings, b.best.mappings);
    assert_eq!(a.curve, b.curve);
    assert_design_ok(engine.exact(), &layers, &a.best, &spec.bounds);
    let first = a.curve.first().unwrap().1;
    assert!(
        a.best.edp() < first,
        "the descent improved nothing: {} vs start {first}",
        a.best.edp()
    );
}

/// The passes after the starts never make a design worse and keep it legal and bounded.
#[test]
fn polish_and_buffer_shrink_only_improve() {
    let arch = gemmini_arch();
    let layers = small_net();
    let bounds = gemmini_bounds();
    let model = AnalyticalModel::new(&arch);
    let start = baseline::random_search(&model, &layers, &bounds, Objective::Edp, 2, 20, 7).0;
    let (p, n) = one_loop::polish(&model, &layers, &start, Objective::Edp);
    assert!(n > 1, "polish evaluated nothing");
    assert!(
        p.edp() <= start.edp() * (1.0 + 1e-12),
        "{} > {}",
        p.edp(),
        start.edp()
    );
    assert_design_ok(&model, &layers, &p, &bounds);
    let (s, _) = one_loop::shrink_buffers(&model, &layers, &p, Objective::Edp);
    assert!(s.edp() <= p.edp());
    assert_design_ok(&model, &layers, &s, &bounds);
    // From random mappings there is room: the single-factor moves find some of it.
    assert!(s.edp() < start.edp(), "no improvement over a random design");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    /// Moves to tiles that need not divide (awkward sizes) give legal mappings that cover the
    /// layer, and the prime moves from such a mapping keep covering it.
    #[test]
    fn tile_moves_cover_the_layer(dims in proptest::array::uniform7(1u64..120), seed: u64, pe in 2u64..32) {
        let arch = gemmini_arch();
        let layer = Layer::conv("l", dims, 1, 1);
        let mut rng = dosa::util::Rng::new(seed);
        let m = dosa::passes::random::random_mapping(&arch, &layer, pe, &mut rng);
        for m2 in one_loop::tile_moves(&arch, &layer, &m, pe) {
            prop_assert!(check(&arch, &layer, &m2, pe).is_ok(), "{m2}");
            for m3 in one_loop::prime_moves(&arch, &layer, &m2, pe) {
                prop_assert!(check(&arch, &layer, &m3, pe).is_ok(), "{m2} -> {m3}");
            }
        }
    }

    /// Every single-prime move keeps the factors multiplying to the layer and stays legal.
    #[test]
    fn prime_moves_stay_legal(dims in proptest::array::uniform7(1u64..60), seed: u64, pe in 2u64..32) {
        let arch = gemmini_arch();
        let layer = Layer::conv("l", dims, 1, 1);
        let mut rng = dosa::util::Rng::new(seed);
        let m = dosa::passes::random::random_mapping(&arch, &layer, pe, &mut rng);
        let moves = one_loop::prime_moves(&arch, &layer, &m, pe);
        if dims.iter().any(|&d| d > 1) {
            prop_assert!(!moves.is_empty());
        }
        for m2 in moves {
            prop_assert!(check(&arch, &layer, &m2, pe).is_ok(), "{m2}");
            prop_assert_ne!(&m2, &m);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]
    #[test]
    fn every_search_result_is_legal(
        dims in proptest::collection::vec(proptest::array::uniform7(1u64..40), 1..3),
        seed in 0u64..1000,
        bounded: bool,
    ) {
        let arch = gemmini_arch();
        let layers: Vec<Layer> = dims.iter().enumerate().map(|(i, d)| Layer::conv(&format!("l{i}"), *d, 1, 1)).collect();
        let bounds = if bounded {
            HwBounds { pe_max: Some(8), sp_max_kib: Some(64.0), acc_max_kib: Some(16.0) }
        } else {
            HwBounds::default()
        };
        let spec = SearchSpec { starts: 1, steps: 30, round_every: 15, seed, bounds, ..SearchSpec::default() };
        let engine = Engine::new(&arch, &layers, &spec).unwrap();
        let r = one_loop::search(engine.exact(), engine.relaxation(), &layers, &spec);
        assert_design_ok(engine.exact(), &layers, &r.best, &bounds);
    }

}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]
    /// Under any legal mapping on the smallest hardware that runs it (and on a larger one), the
    /// exact cost of a layer is at least its floor: strides, dilations and loop orders included.
    #[test]
    fn exact_cost_is_at_least_the_layer_floor(
        dims in proptest::array::uniform7(1u64..24),
        strides in (1u64..4, 1u64..4),
        dilations in (1u64..3, 1u64..3),
        pe in 2u64..40,
        inner_max in 0u64..5,
        seed: u64,
    ) {
        let arch = gemmini_arch();
        let model = AnalyticalModel::new(&arch);
        let mut layer = Layer::conv("l", dims, strides.0, strides.1);
        layer.wdilation = dilations.0;
        layer.hdilation = dilations.1;
        let mut rng = dosa::util::Rng::new(seed);
        let mut m = dosa::passes::random::random_mapping(&arch, &layer, pe, &mut rng);
        if inner_max > 0 {
            // Small inner tiles: the DRAM-heavy mappings where the tensor terms of the floor bind.
            dosa::passes::random::shrink_until(&arch, &layer, &mut m, &mut rng, |m: &dosa::ir::Mapping| {
                m.levels[..3].iter().all(|l| l.temporal.iter().all(|&f| f <= inner_max))
            });
        }
        let hw = round_hardware(&arch, &model.min_hardware(&layer, &m));
        prop_assert!(hw.pe_dim <= pe as f64);
        let f = floor::layer_floor(&arch, &layer, pe);
        let mut big = hw.clone();
        big.usable_bytes.iter_mut().for_each(|b| *b *= 4.0);
        for h in [&hw, &big] {
            let (lat, en) = model.cost(&layer, &m, h);
            prop_assert!(lat >= f.latency * (1.0 - 1e-12), "latency {} < floor {} for {}", lat, f.latency, m);
            prop_assert!(en >= f.energy * (1.0 - 1e-12), "energy {} < floor {} for {}", en, f.energy, m);
        }
    }
}
