//! Speed of the differentiable model: value + gradient for one layer and for all of ResNet-50
//! (24 distinct layers, counts applied), with egg-simplified tapes and with the raw trace; and the
//! exact evaluator on one mapping. Run with `cargo bench --bench model`.

use divan::{black_box, Bencher};
use dosa::ir::{gemmini_arch, parse_compact, Dim, Hardware, Layer, Objective};
use dosa::model::exact::{evaluate_layer, EvalOptions};
use dosa::model::expr::{EggOptions, Simplify};
use dosa::model::relaxed::{compile_layer, CompiledLayer, CostOptions, NetworkCost};
use std::sync::Arc;

fn main() {
    divan::main();
}

fn resnet50() -> Vec<Layer> {
    let shared = dosa::util::shared_dir().expect("shared data (set DOSA_SHARED)");
    let text =
        std::fs::read_to_string(shared.join("data/workloads/resnet50.csv")).expect("resnet50.csv");
    dosa::syntax::csv::network_from_csv("resnet50", &text)
        .expect("a valid workload")
        .layers
}

/// Weight-stationary DRAM order, canonical inner orders.
fn orders() -> Vec<Vec<Dim>> {
    use Dim::*;
    vec![
        Dim::ALL.to_vec(),
        vec![K, C, P, Q, R, S, N],
        Dim::ALL.to_vec(),
        vec![K, C, R, S, N, P, Q],
    ]
}

fn network(layers: &[Layer], how: Simplify) -> (NetworkCost, Vec<f64>) {
    let arch = gemmini_arch();
    let compiled: Vec<(Arc<CompiledLayer>, u64)> = layers
        .iter()
        .map(|l| {
            (
                Arc::new(compile_layer(&arch, l, &orders(), how).expect("compiles")),
                l.count,
            )
        })
        .collect();
    // A point inside the feasible region: each used factor a small power of the dim.
    let x: Vec<f64> = compiled
        .iter()
        .flat_map(|(c, _)| {
            c.slots
                .iter()
                .zip(&c.used)
                .map(|(&(_, d, _), &u)| {
                    if u {
                        0.2 * (c.layer.dim(d) as f64).ln()
                    } else {
                        0.0
                    }
                })
                .collect::<Vec<f64>>()
        })
        .collect();
    let nc = NetworkCost::new(&arch, compiled, CostOptions::new(Objective::Edp));
    (nc, x)
}

fn bench_value_grad(b: Bencher, layers: &[Layer], how: Simplify) {
    let (mut nc, x) = network(layers, how);
    let mut g = vec![0.0; x.len()];
    b.bench_local(|| black_box(nc.value_grad(black_box(&x), &mut g)));
}

#[divan::bench]
fn value_grad_one_layer(b: Bencher) {
    let l = resnet50();
    bench_value_grad(b, &l[16..17], Simplify::Egg(EggOptions::default()));
}

#[divan::bench]
fn value_grad_resnet50_egg(b: Bencher) {
    bench_value_grad(b, &resnet50(), Simplify::Egg(EggOptions::default()));
}

#[divan::bench]
fn value_grad_resnet50_raw(b: Bencher) {
    bench_value_grad(b, &resnet50(), Simplify::None);
}

#[divan::bench]
fn value_only_resnet50_egg(b: Bencher) {
    let (mut nc, x) = network(&resnet50(), Simplify::Egg(EggOptions::default()));
    b.bench_local(|| black_box(nc.value(black_box(&x))));
}

#[divan::bench]
fn compile_one_layer_egg(b: Bencher) {
    let arch = gemmini_arch();
    let l = resnet50()[16].clone();
    b.bench_local(|| {
        black_box(
            compile_layer(&arch, &l, &orders(), Simplify::Egg(EggOptions::default()))
                .expect("compiles"),
        )
    });
}

#[divan::bench]
fn exact_evaluate_one_mapping(b: Bencher) {
    let arch = gemmini_arch();
    let layer = Layer::conv("conv1", [7, 7, 112, 112, 3, 64, 1], 2, 2);
    let m = parse_compact("L3[WIO] K8 Q28 - L2[WI] N1 K4X - L1[O] K2 S7 R7 Q4 P7 C3X - L0[W] P16")
        .expect("parses");
    let hw = Hardware {
        pe_dim: 16.0,
        usable_bytes: vec![256.0, 32768.0, 131072.0, 0.0],
    };
    let opts = EvalOptions::timeloop(&arch);
    b.bench_local(|| black_box(evaluate_layer(&arch, &layer, &m, &hw, &opts).expect("evaluates")));
}
