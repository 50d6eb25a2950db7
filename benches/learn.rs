//! Speed of the learned latency predictor: batch prediction (the `dosa predict` path) and the
//! per-point value-and-gradient call a search makes. Run with `cargo bench --bench learn`.

use dosa::ir::Predictor;
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

/// One value-and-gradient call at a relaxed point (what each search step pays per layer).
#[divan::bench]
fn log_cycles_and_grad_one_point(bencher: divan::Bencher) {
    let (model, samples) = setup();
    let s = &samples[0];
    let l = model.get(Predictor::Dnn).expect("dnn");
    let u = learn::log_factors(&s.mapping);
    let inp = LearnInput {
        layer: &s.layer,
        mapping: &s.mapping,
        log_factors: &u,
        log_terms: Some([10.0; 4]),
    };
    let mut g = vec![0.0; N_VARS];
    bencher.bench_local(|| {
        l.log_cycles_and_grad(divan::black_box(&inp), &mut g)
            .unwrap()
    });
}
