//! Speed of the learned latency predictor: batch prediction (the `dosa predict` path), the
//! per-layer value-and-gradient call a search makes at each rounding, and the value-only call
//! that scores a rounded design. Run with `cargo bench --bench learn`.

use dosa::ir::Predictor;
use dosa::learn::analytical::{log_terms, Roofline};
use dosa::learn::{self, LatencyModel, LearnInput, N_VARS};
use std::path::Path;

fn main() {
    divan::main();
}

fn setup() -> (LatencyModel, Vec<learn::Sample>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let model = LatencyModel::load(&root.join("models/gemmini-rtl.json")).expect("shipped model");
    let data = dosa::util::shared_dir()
        .expect("shared data")
        .join("data/firesim/gemmini_rtl_train.csv");
    let samples = learn::load_csv(&data, true).expect("RTL data");
    (model, samples.into_iter().take(1000).collect())
}

/// Features, ensemble forward pass and (for `both`) the analytical model for 1,000 rows.
#[divan::bench(args = ["dnn", "both"])]
fn predict_1000_rows(bencher: divan::Bencher, which: &str) {
    let (model, samples) = setup();
    let roof = learn::analytical::default_roofline();
    let p = if which == "both" {
        Predictor::Both
    } else {
        Predictor::Dnn
    };
    let Some(l) = model
        .get(p)
        .filter(|_| p == Predictor::Dnn || roof.is_some())
    else {
        return;
    };
    let pts: Vec<_> = samples.iter().map(|s| (&s.layer, &s.mapping)).collect();
    bencher.bench_local(|| l.predict(divan::black_box(&pts), roof.as_deref()).unwrap());
}

/// One value-and-gradient call of a learned predictor at a relaxed point: what the search pays
/// per layer at each rounding (`both`: the correction; `dnn`: the log cycles).
#[divan::bench(args = ["dnn", "both"])]
fn value_and_grad_one_layer(bencher: divan::Bencher, which: &str) {
    let (model, samples) = setup();
    let s = &samples[0];
    let roof = learn::analytical::ModelRoofline::gemmini();
    let u = learn::log_factors(&s.mapping);
    let inp = LearnInput {
        layer: &s.layer,
        mapping: &s.mapping,
        log_factors: &u,
        log_terms: Some(log_terms(&roof.terms(&s.layer, &s.mapping).unwrap())),
    };
    let mut g = vec![0.0; N_VARS];
    if which == "both" {
        let l = model.get(Predictor::Both).expect("both");
        bencher.bench_local(|| {
            l.correction_and_grad(divan::black_box(&inp), &mut g)
                .unwrap()
        });
    } else {
        let l = model.get(Predictor::Dnn).expect("dnn");
        bencher.bench_local(|| {
            l.log_cycles_and_grad(divan::black_box(&inp), &mut g)
                .unwrap()
        });
    }
}

/// The `both` correction of one rounded mapping, value only (how the search scores designs).
#[divan::bench]
fn correction_value_one_layer(bencher: divan::Bencher) {
    let (model, samples) = setup();
    let s = &samples[0];
    let roof = learn::analytical::ModelRoofline::gemmini();
    let t = log_terms(&roof.terms(&s.layer, &s.mapping).unwrap());
    bencher.bench_local(|| {
        model
            .correction_value(divan::black_box(&s.layer), &s.mapping, Some(&t))
            .unwrap()
    });
}
