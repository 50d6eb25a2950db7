//! The learned RTL-latency predictor end to end: determinism of `fit`, the search-facing
//! gradient, the model file, the shipped model, and the `fit` / `predict` commands.

use dosa::ir::Predictor;
use dosa::learn::mlp::TrainConfig;
use dosa::learn::predictor::ModelFile;
use dosa::learn::{self, FitOptions, LatencyModel, LearnInput, N_FACTOR_VARS, N_VARS};
use std::path::{Path, PathBuf};
use std::process::Command;

fn rtl_csv() -> PathBuf {
    let shared = dosa::util::shared_dir()
        .expect("the reference data (shared/) must be beside the checkout or in $DOSA_SHARED");
    shared.join("data/firesim/gemmini_rtl_train.csv")
}

fn samples() -> Vec<learn::Sample> {
    learn::load_csv(&rtl_csv(), true).expect("the RTL data loads")
}

fn tmp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dosa-learn-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A small, fast configuration: enough to exercise every code path.
fn small_opts(seed: u64) -> FitOptions {
    FitOptions {
        predictors: vec![Predictor::Dnn],
        seed,
        ensemble: 2,
        evaluate: true,
        config: TrainConfig {
            hidden: vec![8, 8],
            max_epochs: 25,
            patience: 10,
            ..Default::default()
        },
        ..Default::default()
    }
}

fn subset(n: usize) -> Vec<learn::Sample> {
    // Every 5th row keeps many layers in a small set.
    samples().into_iter().step_by(5).take(n).collect()
}

#[test]
fn fit_is_byte_identical_for_a_seed() {
    let s = subset(200);
    let a = learn::fit(&s, None, &small_opts(7), &|| ())
        .unwrap()
        .to_json();
    let b = learn::fit(&s, None, &small_opts(7), &|| ())
        .unwrap()
        .to_json();
    assert!(a == b, "two fits with the same seed differ");
    let c = learn::fit(&s, None, &small_opts(8), &|| ())
        .unwrap()
        .to_json();
    assert!(a != c, "the seed has no effect");
    assert!(a.len() < 5 << 20);
}

#[test]
fn model_file_round_trips_and_rejects_other_versions() {
    let s = subset(120);
    let mut o = small_opts(1);
    o.evaluate = false;
    let m = learn::fit(&s, None, &o, &|| ()).unwrap();
    let bytes = m.to_json();
    let file: ModelFile = serde_json::from_slice(&bytes).unwrap();
    let back = LatencyModel::from_file(file.clone()).unwrap();
    // serde_json's default float parser may be off by an ulp, so compare predictions closely
    // rather than bytes.
    let pts: Vec<_> = s.iter().map(|x| (&x.layer, &x.mapping)).collect();
    let (p0, p1) = (
        m.get(Predictor::Dnn).unwrap().predict(&pts, None).unwrap(),
        back.get(Predictor::Dnn)
            .unwrap()
            .predict(&pts, None)
            .unwrap(),
    );
    for (a, b) in p0.iter().zip(&p1) {
        assert!((a - b).abs() <= 1e-12 * a.abs(), "{a} vs {b}");
    }
    assert!(back.file.training == m.file.training);
    let mut v2 = file.clone();
    v2.version += 1;
    assert!(LatencyModel::from_file(v2).unwrap_err().contains("version"));
    let mut renamed = file.clone();
    renamed.predictors[0].features[3] = "something.else".into();
    assert!(LatencyModel::from_file(renamed)
        .unwrap_err()
        .contains("features"));
    let mut wrong_default = file;
    wrong_default.default = Predictor::Both;
    assert!(LatencyModel::from_file(wrong_default).is_err());
}

/// The gradient the search uses matches finite differences of the model's own output.
#[test]
fn output_gradient_matches_finite_differences() {
    let s = subset(150);
    let mut o = small_opts(3);
    o.evaluate = false;
    o.config.max_epochs = 40;
    let m = learn::fit(&s, None, &o, &|| ()).unwrap();
    let dnn = m.get(Predictor::Dnn).unwrap();
    for sample in s.iter().step_by(37) {
        let mut u = learn::log_factors(&sample.mapping);
        // Off the integer point, as during descent.
        for (i, x) in u.iter_mut().enumerate() {
            *x += 0.02 * (((i * 5) % 7) as f64 - 3.0) / 3.0;
        }
        let out = |u: &[f64; N_FACTOR_VARS]| {
            let inp = LearnInput {
                layer: &sample.layer,
                mapping: &sample.mapping,
                log_factors: u,
                log_terms: None,
            };
            let mut g = vec![0.0; N_VARS];
            let y = dnn.log_cycles_and_grad(&inp, &mut g).unwrap();
            (y, g)
        };
        let (y0, g) = out(&u);
        assert!(y0.is_finite());
        // At the integer point the output is the log of what `predict` returns.
        let at_int = learn::log_factors(&sample.mapping);
        let p = dnn
            .predict(&[(&sample.layer, &sample.mapping)], None)
            .unwrap()[0];
        assert!((out(&at_int).0 - p.ln()).abs() < 1e-9);
        let h = 1e-5;
        let mut nonzero = 0;
        for v in 0..N_FACTOR_VARS {
            let (mut a, mut b) = (u, u);
            a[v] += h;
            b[v] -= h;
            let fd = (out(&a).0 - out(&b).0) / (2.0 * h);
            assert!(
                (fd - g[v]).abs() < 1e-6 * (1.0 + fd.abs()),
                "var {v}: fd {fd} vs {}",
                g[v]
            );
            if g[v].abs() > 1e-9 {
                nonzero += 1;
            }
        }
        assert!(nonzero > 5, "the gradient is nearly all zero");
        assert!(
            g[N_FACTOR_VARS..].iter().all(|&x| x == 0.0),
            "dnn does not see roofline terms"
        );
    }
}

#[test]
fn shipped_model_loads_and_fits_the_data() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/gemmini-rtl.json");
    let m = LatencyModel::load(&path)
        .expect("models/gemmini-rtl.json is current; regenerate it as the README says");
    assert!(std::fs::metadata(&path).unwrap().len() < 5 << 20);
    let s = samples();
    let pts: Vec<_> = s.iter().map(|x| (&x.layer, &x.mapping)).collect();
    let meas: Vec<f64> = s.iter().map(|x| x.cycles.unwrap()).collect();
    let dnn = m.get(Predictor::Dnn).expect("the shipped model has dnn");
    let a = dosa::model::stats::error_stats(&dnn.predict(&pts, None).unwrap(), &meas);
    // On its own training data; held-out figures are in the file and the README.
    assert!(a.spearman > 0.95, "{a:?}");
    assert_eq!(m.file.training.held_out.len(), 2);
}

fn dosa(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dosa"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn fit_and_predict_commands() {
    let dir = tmp_dir("cli");
    // A small CSV: header plus every 10th row.
    let text = std::fs::read_to_string(rtl_csv()).unwrap();
    let mut lines = text.lines();
    let mut small = String::from(lines.next().unwrap());
    small.push('\n');
    for l in lines.step_by(10) {
        small.push_str(l);
        small.push('\n');
    }
    let csv = dir.join("small.csv");
    std::fs::write(&csv, &small).unwrap();
    let model = dir.join("m.json");
    let (c, m) = (csv.to_str().unwrap(), model.to_str().unwrap());
    let out = dosa(&[
        "fit",
        "--rtl",
        c,
        "-o",
        m,
        "--predictor",
        "dnn",
        "--epochs",
        "20",
        "--hidden",
        "8",
        "--ensemble",
        "1",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("held out by layer") && stdout.contains("held out by row"),
        "{stdout}"
    );
    let plots = dir.join("plots");
    let out = dosa(&[
        "predict",
        "--rtl",
        c,
        "--model",
        m,
        "--json",
        "--plot",
        plots.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["rows"], 128);
    for k in ["mape", "median_ape", "spearman"] {
        assert!(v["dnn"][k].as_f64().unwrap().is_finite(), "{v}");
    }
    let png = std::fs::read(plots.join("dnn.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");

    // Failing commands write nothing.
    let bad = dir.join("bad.csv");
    std::fs::write(&bad, small.replacen("L3[WIO]", "L3[WIO] K3", 1)).unwrap();
    let none = dir.join("none.json");
    let out = dosa(&[
        "fit",
        "--rtl",
        bad.to_str().unwrap(),
        "-o",
        none.to_str().unwrap(),
        "--predictor",
        "dnn",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.csv:2"));
    assert!(!none.exists());
    let out = dosa(&["predict", "--rtl", c, "--model", csv.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a model file"));
    let out = dosa(&[
        "fit",
        "--rtl",
        c,
        "-o",
        none.to_str().unwrap(),
        "--predictor",
        "analytical",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!none.exists());
    let _ = std::fs::remove_dir_all(&dir);
}
