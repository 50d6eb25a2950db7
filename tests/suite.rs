//! `dosa search A.dosa B.dosa ...`: the suite search through the binary (one hardware for
//! several networks, each with its own mappings), its report, `result.dosa`, `emit gemmini`, and
//! its refusals.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn dosa(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dosa"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs")
}

fn dosa_ok(args: &[&str]) -> String {
    let out = dosa(args);
    assert!(
        out.status.success(),
        "dosa {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A scratch folder holding two one-network files, `a.dosa` (convolutions) and `b.dosa` (matrix
/// multiplies), on the built-in Gemmini.
fn files(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dosa-suite-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("a.dosa"),
        "network a {\n  conv c1 R=3 S=3 P=28 Q=28 C=32 K=64\n  conv c2 R=1 S=1 P=14 Q=14 C=64 K=128 count=2\n}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("b.dosa"),
        "network b {\n  matmul m1 M=128 K=256 N=512\n  matmul m2 M=64 K=512 N=256\n}\n",
    )
    .unwrap();
    dir
}

fn p(dir: &Path, f: &str) -> String {
    dir.join(f).to_str().unwrap().to_string()
}

const QUICK: [&str; 8] = [
    "--starts",
    "2",
    "--steps",
    "120",
    "--round-every",
    "40",
    "--no-timing",
    "--pe-max",
];

/// A quick bounded suite search of `a.dosa b.dosa` with `extra`.
fn suite(dir: &Path, extra: &[&str]) -> Output {
    let (a, b) = (p(dir, "a.dosa"), p(dir, "b.dosa"));
    let mut args = vec!["search", a.as_str(), b.as_str()];
    args.extend_from_slice(&QUICK);
    args.extend_from_slice(&["16", "--sp-max-kib", "256", "--acc-max-kib", "64"]);
    args.extend_from_slice(extra);
    dosa(&args)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1e-300)
}

#[test]
fn one_hardware_per_network_figures_reproduce_and_output_is_deterministic() {
    let dir = files("ok");
    let out = p(&dir, "out");
    let first = suite(&dir, &["--weights", "1,3", "--json", "-o", &out]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let again = suite(&dir, &["--weights", "1,3", "--json"]);
    assert_eq!(first.stdout, again.stdout, "same seed, different output");
    let written = std::fs::read(dir.join("out/report.json")).unwrap();
    assert_eq!(written, first.stdout, "report.json is what --json prints");
    let r: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(r["method"], "suite");
    let nets = r["networks"].as_array().unwrap();
    assert_eq!(nets.len(), 2);
    assert_eq!(
        (nets[0]["name"].as_str(), nets[1]["name"].as_str()),
        (Some("a"), Some("b"))
    );
    assert_eq!(
        (nets[0]["weight"].as_u64(), nets[1]["weight"].as_u64()),
        (Some(1), Some(3))
    );
    // The shared hardware obeys the bounds.
    let h = &r["hardware"];
    assert!(h["pe_dim"].as_u64().unwrap() <= 16);
    assert!(h["scratchpad_kib"].as_f64().unwrap() <= 256.0);
    assert!(h["accumulator_kib"].as_f64().unwrap() <= 64.0);
    // The total is the weighted sum of the networks' totals, and its EDP their product.
    for k in ["latency_cycles", "energy_uj"] {
        let sum: f64 = nets
            .iter()
            .map(|n| n["weight"].as_f64().unwrap() * n["shared"][k].as_f64().unwrap())
            .sum();
        assert!(close(r["total"][k].as_f64().unwrap(), sum), "{k}");
    }
    let t = &r["total"];
    assert!(close(
        t["edp"].as_f64().unwrap(),
        t["latency_cycles"].as_f64().unwrap() * t["energy_uj"].as_f64().unwrap()
    ));
    for n in nets {
        let (s, a, g) = (
            n["shared"]["edp"].as_f64().unwrap(),
            n["alone"]["edp"].as_f64().unwrap(),
            n["gemmini_default"]["edp"].as_f64().unwrap(),
        );
        assert!(s > 0.0 && a > 0.0 && g > 0.0);
        assert!(close(n["loss_vs_alone"].as_f64().unwrap(), s / a));
        assert!(close(n["gain_vs_gemmini_default"].as_f64().unwrap(), g / s));
    }
    // result.dosa: one architecture, both networks; `eval` gives each network's reported figures.
    let result = p(&dir, "out/result.dosa");
    let check = dosa_ok(&["check", &result]);
    assert!(check.contains("2 networks"), "{check}");
    let e: serde_json::Value =
        serde_json::from_str(&dosa_ok(&["eval", &result, "--json"])).unwrap();
    assert_eq!(e["hardware"]["pe_dim"], r["hardware"]["pe_dim"]);
    for (en, n) in e["networks"].as_array().unwrap().iter().zip(nets) {
        for k in ["latency_cycles", "energy_uj", "edp"] {
            let (x, y) = (en[k].as_f64().unwrap(), n["shared"][k].as_f64().unwrap());
            assert!(close(x, y), "{} {k}: eval {x} vs report {y}", n["name"]);
        }
    }
    // Each network's own design, as `eval` scores it, is the one the report compares with.
    for (i, n) in nets.iter().enumerate() {
        let f = p(
            &dir,
            &format!("out/alone/{}_{}.dosa", i + 1, n["name"].as_str().unwrap()),
        );
        let e: serde_json::Value = serde_json::from_str(&dosa_ok(&["eval", &f, "--json"])).unwrap();
        let (x, y) = (
            e["networks"][0]["edp"].as_f64().unwrap(),
            n["alone"]["edp"].as_f64().unwrap(),
        );
        assert!(close(x, y), "{} alone: eval {x} vs report {y}", n["name"]);
    }
    // `emit gemmini`: one program per network, for the same configuration.
    let em = p(&dir, "emit");
    dosa_ok(&["emit", "gemmini", &result, "-o", &em]);
    let mut names: Vec<String> = std::fs::read_dir(&em)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "dosa_result_a.c",
            "dosa_result_a_params.h",
            "dosa_result_b.c",
            "dosa_result_b_params.h"
        ]
    );
    let a = std::fs::read_to_string(dir.join("emit/dosa_result_a.c")).unwrap();
    assert!(
        a.contains("a.c1") && !a.contains("b.m1"),
        "a's program runs a's layers only"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The weights reach the search, under both suite objectives. `product` (the default): the
/// reported score is the weighted geometric mean of the networks' EDPs, and the design searched
/// with weights 1,1000 scores no worse under them than the one searched with 1,1. `totals`: the
/// same with the EDP of the weighted totals.
#[test]
fn weights_change_what_is_optimised() {
    let dir = files("weights");
    let json = |w: &str, how: &str| -> serde_json::Value {
        let o = suite(&dir, &["--weights", w, "--suite-objective", how, "--json"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let shared = |r: &serde_json::Value, i: usize, k: &str| -> f64 {
        r["networks"][i]["shared"][k].as_f64().unwrap()
    };
    // product
    let (even, heavy) = (json("1,1", "product"), json("1,1000", "product"));
    let geo = |r: &serde_json::Value, w: [f64; 2]| {
        (0..2)
            .map(|i| shared(r, i, "edp").powf(w[i] / (w[0] + w[1])))
            .product::<f64>()
    };
    let h = heavy["score"]["shared"].as_f64().unwrap();
    assert!(
        close(h, geo(&heavy, [1.0, 1000.0])),
        "{h} vs {}",
        geo(&heavy, [1.0, 1000.0])
    );
    assert!(
        h <= geo(&even, [1.0, 1000.0]) * (1.0 + 1e-9),
        "the design for weights 1,1000 loses to the one for 1,1 under 1,1000"
    );
    assert!(close(
        even["score"]["shared"].as_f64().unwrap(),
        geo(&even, [1.0, 1.0])
    ));
    // totals
    let (even, heavy) = (json("1,1", "totals"), json("1,1000", "totals"));
    let weighted_edp = |r: &serde_json::Value, w: [f64; 2]| {
        let t = |k: &str| -> f64 { (0..2).map(|i| w[i] * shared(r, i, k)).sum() };
        t("latency_cycles") * t("energy_uj")
    };
    let h = heavy["total"]["edp"].as_f64().unwrap();
    assert!(close(h, weighted_edp(&heavy, [1.0, 1000.0])));
    assert!(close(heavy["score"]["shared"].as_f64().unwrap(), h));
    assert!(
        h <= weighted_edp(&even, [1.0, 1000.0]),
        "the design for weights 1,1000 loses to the one for 1,1 under 1,1000"
    );
    let e = even["total"]["edp"].as_f64().unwrap();
    assert!(close(e, weighted_edp(&even, [1.0, 1.0])));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every refusal exits non-zero with a clear message and writes nothing.
#[test]
fn bad_suites_are_refused_and_write_nothing() {
    let dir = files("bad");
    std::fs::write(
        dir.join("a2.dosa"),
        "network a {\n  matmul m M=16 K=16 N=16\n}\n",
    )
    .unwrap();
    let other = std::fs::read_to_string("examples/gemmini.dosa")
        .unwrap()
        .replace("pe 16x16", "pe 8x8");
    assert!(other.contains("pe 8x8"));
    std::fs::write(
        dir.join("c.dosa"),
        format!("{other}\nnetwork c {{\n  matmul m M=16 K=16 N=16\n}}\n"),
    )
    .unwrap();
    let out = p(&dir, "out");
    let (a, a2, b, c) = (
        p(&dir, "a.dosa"),
        p(&dir, "a2.dosa"),
        p(&dir, "b.dosa"),
        p(&dir, "c.dosa"),
    );
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (vec![&a, &a2], 1, "named `a`"),
        (vec![&a, &c], 1, "different architectures"),
        (vec![&a, &b, "--weights", "1"], 2, "1 values for 2 networks"),
        (vec![&a, &b, "--weights", "1,0"], 2, "at least 1"),
        (vec![&a, "--weights", "2"], 2, "several files"),
        (vec![&a, &b, "--compare"], 2, "--compare"),
        (vec![&a, &b, "--network", "a"], 2, "--network"),
        (vec![&a, "nope.dosa"], 2, "no such file"),
    ];
    for (args, code, msg) in cases {
        let mut full = vec!["search"];
        full.extend(args.iter().copied());
        full.extend(["--starts", "1", "--steps", "2", "-o", &out]);
        let o = dosa(&full);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(code), "{full:?}: {err}");
        assert!(err.contains(msg), "{full:?}: {err}");
        assert!(o.stdout.is_empty(), "{full:?}");
        assert!(!Path::new(&out).exists(), "{full:?} wrote {out}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
