//! The differentiable model against the exact evaluator, dual numbers and finite differences.

use dosa::ir::{gemmini_arch, Dim, Hardware, Layer, LevelMapping, Mapping, Objective, TensorSet};
use dosa::model::algebra::Algebra;
use dosa::model::exact::{evaluate_layer, integer_nest, EvalOptions};
use dosa::model::expr::{EggOptions, Simplify};
use dosa::model::nest::Structure;
use dosa::model::relaxed::{
    compile_layer, hw_inputs, layer_outputs, Bounds, CompiledLayer, CostOptions, LatencyCorrection,
    NetworkCost,
};
use dosa::model::rules::HwIn;
use dosa::passes::legal::free_slots;
use dosa::util::Rng;
use num_dual::{Dual64, DualNum};
use proptest::prelude::*;
use std::sync::Arc;

/// Forward-mode dual numbers: the generic rules differentiated exactly, independently of the tape.
struct DualAlg;

impl Algebra for DualAlg {
    type S = Dual64;
    fn lit(&self, v: f64) -> Dual64 {
        Dual64::from(v)
    }
    fn add(&self, a: Dual64, b: Dual64) -> Dual64 {
        a + b
    }
    fn sub(&self, a: Dual64, b: Dual64) -> Dual64 {
        a - b
    }
    fn mul(&self, a: Dual64, b: Dual64) -> Dual64 {
        a * b
    }
    fn div(&self, a: Dual64, b: Dual64) -> Dual64 {
        a / b
    }
    fn min(&self, a: Dual64, b: Dual64) -> Dual64 {
        if a.re <= b.re {
            a
        } else {
            b
        }
    }
    fn max(&self, a: Dual64, b: Dual64) -> Dual64 {
        if a.re >= b.re {
            a
        } else {
            b
        }
    }
    fn exp(&self, a: Dual64) -> Dual64 {
        a.exp()
    }
    fn ln(&self, a: Dual64) -> Dual64 {
        a.ln()
    }
}

fn hw() -> Hardware {
    Hardware {
        pe_dim: 16.0,
        usable_bytes: vec![256.0, 64.0 * 1024.0, 256.0 * 1024.0, 0.0],
    }
}

/// A layer and an integer mapping in which every free slot and every DRAM factor is 2 or 3, with
/// random loop orders: the relaxed model's loop structure (every variable present) is then the
/// exact one.
fn full_mapping(rng: &mut Rng) -> (Layer, Mapping) {
    let arch = gemmini_arch();
    let mut levels: Vec<LevelMapping> = arch
        .levels
        .iter()
        .map(|l| LevelMapping::unit(l.keeps))
        .collect();
    let mut dims = [1u64; 7];
    for (l, d, sp) in free_slots(&arch) {
        let f = 2 + rng.below(2);
        if sp {
            levels[l].spatial[d.index()] = f;
        } else {
            levels[l].temporal[d.index()] = f;
        }
        dims[d.index()] *= f;
    }
    for d in Dim::ALL {
        let f = 2 + rng.below(2);
        levels[3].temporal[d.index()] = f;
        dims[d.index()] *= f;
    }
    for lm in &mut levels {
        let mut order = Dim::ALL.to_vec();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i as u64 + 1) as usize);
        }
        lm.order = order;
    }
    let stride = 1 + rng.below(2);
    let layer = Layer::conv("t", dims, stride, stride);
    let _ = TensorSet::default();
    (layer, Mapping::new(levels))
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / a.abs().max(b.abs()).max(1e-300)
}

#[test]
fn relaxed_equals_exact_at_integer_points_with_the_same_structure() {
    let arch = gemmini_arch();
    let mut rng = Rng::new(7);
    let (mut compared, mut total) = (0, 0);
    for _ in 0..40 {
        let (layer, m) = full_mapping(&mut rng);
        total += 1;
        let (nest, st, _) = integer_nest(&arch, &layer, &m);
        if st != Structure::structural(&nest) {
            continue; // an accidental equality of translations: a different structure
        }
        compared += 1;
        let orders: Vec<Vec<Dim>> = m.levels.iter().map(|l| l.order.clone()).collect();
        let c =
            compile_layer(&arch, &layer, &orders, Simplify::Egg(EggOptions::default())).unwrap();
        let x = c.vars_from_mapping(&m);
        let h = hw();
        let v = c.eval(&x, &hw_inputs(&arch, &h));
        let e = evaluate_layer(&arch, &layer, &m, &h, &EvalOptions::analytical(&arch)).unwrap();
        assert!(
            rel(v.latency, e.cycles) < 1e-10,
            "{} vs {}",
            v.latency,
            e.cycles
        );
        assert!(
            rel(v.energy_uj, e.energy_uj) < 1e-10,
            "{} vs {}",
            v.energy_uj,
            e.energy_uj
        );
        assert!(rel(v.req_pe, e.min_hw.pe_dim as f64) < 1e-12);
        for (a, b) in v.req_inst_bytes.iter().zip(&e.min_hw.inst_bytes) {
            assert_eq!(a.is_some(), b.is_some());
            if let (Some(a), Some(b)) = (a, b) {
                assert!(rel(*a, *b) < 1e-10);
            }
        }
    }
    assert!(
        compared * 2 >= total,
        "only {compared} of {total} mappings had the structural flags"
    );
}

fn resnet_like_layers() -> Vec<Layer> {
    vec![
        Layer::conv("c3", [3, 3, 28, 28, 128, 128, 1], 1, 1),
        Layer::conv("c1", [1, 1, 14, 14, 256, 1024, 1], 1, 1),
        Layer::conv("s2", [7, 7, 112, 112, 3, 64, 1], 2, 2),
    ]
}

fn orders_of(rng: &mut Rng) -> Vec<Vec<Dim>> {
    (0..4)
        .map(|_| {
            let mut o = Dim::ALL.to_vec();
            for i in (1..o.len()).rev() {
                o.swap(i, rng.below(i as u64 + 1) as usize);
            }
            o
        })
        .collect()
}

fn random_point(c: &CompiledLayer, rng: &mut Rng) -> Vec<f64> {
    c.slots
        .iter()
        .zip(&c.used)
        .map(|(&(_, d, _), &u)| {
            if u {
                rng.next_f64() * (c.layer.dim(d) as f64).ln() * 0.6
            } else {
                0.0
            }
        })
        .collect()
}

#[test]
fn tape_gradients_equal_dual_numbers_through_the_generic_rules() {
    let arch = gemmini_arch();
    let mut rng = Rng::new(11);
    for layer in resnet_like_layers() {
        let orders = orders_of(&mut rng);
        let c =
            compile_layer(&arch, &layer, &orders, Simplify::Egg(EggOptions::default())).unwrap();
        let x = random_point(&c, &mut rng);
        let hwv = hw_inputs(&arch, &hw());
        let n_out = c.tape.outputs.len();
        for j in 0..c.n_vars() {
            let xd: Vec<Dual64> = x
                .iter()
                .enumerate()
                .map(|(i, &v)| Dual64::new(v, if i == j { 1.0 } else { 0.0 }))
                .collect();
            let hwd = HwIn {
                pe_dim: Dual64::from(hwv[0]),
                energy_pj: hwv[1..].iter().map(|&e| Dual64::from(e)).collect(),
            };
            let (outs, _) = layer_outputs(
                &DualAlg, &arch, &layer, &orders, &c.slots, &c.used, &xd, &hwd,
            );
            for k in 0..n_out {
                let mut cot = vec![0.0; n_out];
                cot[k] = 1.0;
                let (gx, _) = c.vjp(&x, &hwv, &cot);
                let (a, b) = (gx[j], outs[k].eps);
                // Relative to the derivative, with a floor at round-off of the output's value.
                let tol = 1e-9 * a.abs().max(b.abs()) + 1e-12 * outs[k].re.abs().max(1.0);
                assert!(
                    (a - b).abs() <= tol,
                    "output {k} var {j}: tape {a} dual {b}"
                );
            }
        }
    }
}

/// exp(0.05 * sum x) times the analytical latency: a smooth stand-in for the learned correction.
struct ToyCorrection;

impl LatencyCorrection for ToyCorrection {
    fn apply(&self, _layer: usize, x: &[f64], analytical: f64, grad_x: &mut [f64]) -> (f64, f64) {
        let f = (0.05 * x.iter().sum::<f64>()).exp();
        for g in grad_x.iter_mut() {
            *g = analytical * f * 0.05;
        }
        (analytical * f, f)
    }
}

fn network(seed: u64, correction: bool, objective: Objective) -> (NetworkCost, Vec<f64>) {
    network_with(seed, correction, objective, None)
}

fn network_with(
    seed: u64,
    correction: bool,
    objective: Objective,
    suite: Option<Arc<dosa::ir::SuiteObjective>>,
) -> (NetworkCost, Vec<f64>) {
    let arch = gemmini_arch();
    let mut rng = Rng::new(seed);
    let mut layers = Vec::new();
    let mut x = Vec::new();
    for (i, l) in resnet_like_layers().into_iter().enumerate() {
        let c = Arc::new(
            compile_layer(
                &arch,
                &l,
                &orders_of(&mut rng),
                Simplify::Egg(EggOptions::default()),
            )
            .unwrap(),
        );
        // Mostly legal, sometimes slightly negative (the factor penalty is active).
        let xi: Vec<f64> = random_point(&c, &mut rng)
            .into_iter()
            .map(|v| v - 0.05)
            .collect();
        x.extend(xi);
        layers.push((c, 1 + i as u64));
    }
    let mut o = CostOptions::new(objective);
    o.bounds = Bounds {
        pe_max: Some(8.0),
        physical_bytes_max: vec![None, Some(16.0 * 1024.0), Some(64.0 * 1024.0), None],
    };
    o.suite = suite;
    let mut nc = NetworkCost::new(&arch, layers, o);
    if correction {
        nc.set_correction(Some(Arc::new(ToyCorrection)));
    }
    (nc, x)
}

fn check_fd(nc: &mut NetworkCost, x: &[f64]) -> (usize, usize) {
    let mut g = vec![0.0; x.len()];
    let v = nc.value_grad(x, &mut g);
    assert!(v.is_finite());
    assert_eq!(v, nc.value(x));
    let (mut checked, mut total) = (0, 0);
    for i in 0..x.len() {
        total += 1;
        let mut fd = |h: f64| {
            let (mut a, mut b) = (x.to_vec(), x.to_vec());
            a[i] += h;
            b[i] -= h;
            (nc.value(&a) - nc.value(&b)) / (2.0 * h)
        };
        let (f1, f2) = (fd(1e-6), fd(2e-6));
        // Central differences of a value ~30 with h = 1e-6 carry ~1e-8 of round-off.
        let noise = 1e-15 * v.abs().max(1.0) / 1e-6;
        if (f1 - f2).abs() > 1e-6 * f1.abs() + 4.0 * noise {
            continue; // a kink (max/min switch) within reach: not smooth here
        }
        checked += 1;
        let tol = 1e-5 * g[i].abs().max(f1.abs()) + 4.0 * noise;
        assert!((g[i] - f1).abs() <= tol, "var {i}: grad {} fd {}", g[i], f1);
    }
    (checked, total)
}

#[test]
fn network_gradient_matches_finite_differences_with_correction_and_penalties() {
    for (seed, corr, obj) in [
        (1, false, Objective::Edp),
        (2, true, Objective::Edp),
        (3, true, Objective::Energy),
        (4, false, Objective::Latency),
    ] {
        let (mut nc, x) = network(seed, corr, obj);
        let (checked, total) = check_fd(&mut nc, &x);
        assert!(
            checked * 10 >= total * 8,
            "only {checked} of {total} coordinates were smooth"
        );
        let b = nc.breakdown(&x);
        assert!(
            b.penalty > 0.0,
            "the test point should activate some penalty"
        );
        assert!(b.edp > 0.0 && b.hardware.pe_dim >= 2.0);
    }
}

/// A suite's objective (the weighted geometric mean of per-network objectives): the gradient
/// through per-network totals matches finite differences, in log and plain form, and a suite of
/// one network is that network's objective.
#[test]
fn suite_objective_gradient_matches_finite_differences() {
    let n = resnet_like_layers().len();
    let split = [n / 2, n - n / 2];
    for (seed, obj, log) in [
        (5, Objective::Edp, true),
        (6, Objective::Energy, true),
        (7, Objective::Edp, false),
    ] {
        let suite = Arc::new(dosa::ir::SuiteObjective::new(&split, &[1, 3]));
        let (mut nc, x) = network_with(seed, false, obj, Some(suite));
        nc.options.log = log;
        let (checked, total) = check_fd(&mut nc, &x);
        assert!(
            checked * 10 >= total * 8,
            "only {checked} of {total} smooth"
        );
    }
    let (mut one, x) = network_with(8, false, Objective::Edp, None);
    let (mut as_suite, _) = network_with(
        8,
        false,
        Objective::Edp,
        Some(Arc::new(dosa::ir::SuiteObjective::new(&[n], &[2]))),
    );
    let (a, b) = (one.value(&x), as_suite.value(&x));
    assert!((a - b).abs() <= 1e-9 * a.abs(), "{a} vs {b}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn gradients_match_finite_differences_at_random_points(seed in 0u64..10_000) {
        let (mut nc, x) = network(seed, seed % 2 == 0, Objective::Edp);
        let (checked, total) = check_fd(&mut nc, &x);
        prop_assert!(checked * 10 >= total * 7);
    }

    #[test]
    fn egg_keeps_values_at_random_points(seed in 0u64..10_000) {
        let arch = gemmini_arch();
        let mut rng = Rng::new(seed);
        let layers = resnet_like_layers();
        let layer = &layers[(seed % 3) as usize];
        let orders = orders_of(&mut rng);
        let raw = compile_layer(&arch, layer, &orders, Simplify::None).unwrap();
        let fast = compile_layer(&arch, layer, &orders, Simplify::Egg(EggOptions::default())).unwrap();
        prop_assert!(fast.tape.len() < raw.tape.len());
        for _ in 0..8 {
            let x: Vec<f64> = (0..raw.n_vars()).map(|_| rng.normal()).collect();
            let h = Hardware { pe_dim: 2.0 + 60.0 * rng.next_f64(), usable_bytes: vec![1.0, 1e3 + 1e5 * rng.next_f64(), 1e3 + 1e6 * rng.next_f64(), 0.0] };
            let hv = hw_inputs(&arch, &h);
            let (a, b) = (raw.eval(&x, &hv), fast.eval(&x, &hv));
            prop_assert!(rel(a.latency, b.latency) < 1e-12);
            prop_assert!(rel(a.energy_uj, b.energy_uj) < 1e-12);
            prop_assert!(rel(a.req_pe, b.req_pe) < 1e-12);
        }
    }
}

/// Mappings with partial tiles (`K64+`) of layers with prime sizes: the relaxed model at their
/// variables stands for the fractional tile count (`size / inner`), so it is smooth there and
/// its gradient matches finite differences; and it stays close to the exact sum of the pieces.
#[test]
fn gradients_match_finite_differences_with_remainders() {
    let arch = gemmini_arch();
    let cases = [
        (
            Layer::conv("head", [1, 1, 97, 97, 3, 1009, 1], 1, 1),
            "L3[WIO] K64+ P10+ Q97 - L2[WI] N1 K16X - L1[O] P10 C3X - L0[W] N1",
        ),
        (
            Layer::conv("c", [3, 3, 13, 13, 19, 23, 1], 1, 1),
            "L3[WIO] K2+ C2+ Q13 - L2[WI] N1 K16X - L1[O] S3 R3 P5+ C16X - L0[W] P3",
        ),
    ];
    let mut layers = Vec::new();
    let mut x = Vec::new();
    for (layer, text) in &cases {
        let m = dosa::ir::parse_compact(text).unwrap();
        dosa::model::pieces::check_cover(layer, &m).unwrap();
        let orders: Vec<Vec<Dim>> = m.levels.iter().map(|l| l.order.clone()).collect();
        let c = compile_layer(&arch, layer, &orders, Simplify::Egg(EggOptions::default())).unwrap();
        let xi = c.vars_from_mapping(&m);
        let h = hw();
        let v = c.eval(&xi, &hw_inputs(&arch, &h));
        let e = evaluate_layer(&arch, layer, &m, &h, &EvalOptions::analytical(&arch)).unwrap();
        let (rl, re) = (v.latency / e.cycles, v.energy_uj / e.energy_uj);
        // The same ratio on the padded problem, where the factors divide.
        let padded = dosa::model::pieces::covering_layer(layer, &m);
        let mut pm = m.clone();
        pm.partial = [false; 7];
        let cp = compile_layer(
            &arch,
            &padded,
            &orders,
            Simplify::Egg(EggOptions::default()),
        )
        .unwrap();
        let vp = cp.eval(&cp.vars_from_mapping(&pm), &hw_inputs(&arch, &h));
        let ep = evaluate_layer(&arch, &padded, &pm, &h, &EvalOptions::analytical(&arch)).unwrap();
        let (pl, pe) = (vp.latency / ep.cycles, vp.energy_uj / ep.energy_uj);
        eprintln!("{}: relaxed / exact pieces: latency {rl:.4}, energy {re:.4}; padded problem: {pl:.4}, {pe:.4}", layer.name);
        // Where the relaxed model's loop structure is the exact one (every slot used), the
        // remainder adds nothing to its gap to the exact model: the gap is that of the padded
        // problem, whose factors divide.
        if layer.name == "head" {
            assert!((rl / pl - 1.0).abs() < 0.02 && (re / pe - 1.0).abs() < 0.02);
        }
        // Integer points sit on the penalties' kinks (a factor at its cap): check the gradient
        // a little off them, still between whole tile counts.
        let mut rng = Rng::new(xi.len() as u64);
        let xi: Vec<f64> = xi
            .iter()
            .map(|v| v + 0.01 + 0.02 * rng.next_f64())
            .collect();
        x.extend(xi);
        layers.push((Arc::new(c), 1));
    }
    let mut nc = NetworkCost::new(&arch, layers, CostOptions::new(Objective::Edp));
    let (checked, total) = check_fd(&mut nc, &x);
    assert!(
        checked * 10 >= total * 8,
        "only {checked} of {total} smooth"
    );
}
