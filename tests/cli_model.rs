//! `dosa validate` and `dosa eval` end to end.

use std::process::Command;

fn dosa(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dosa"))
        .args(args)
        .output()
        .expect("runs")
}

/// A scratch folder removed when the test ends, pass or fail.
fn tmp(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("dosa_cli_model_{name}_"))
        .tempdir()
        .unwrap()
}

/// The reference CSV's header and its first `n` data lines.
fn sample(n: usize) -> Option<String> {
    let shared = dosa::util::shared_dir()?;
    let text =
        std::fs::read_to_string(shared.join("data/timeloop/gemmini_timeloop_sample.csv")).ok()?;
    Some(text.lines().take(n + 1).collect::<Vec<_>>().join("\n") + "\n")
}

#[test]
fn validate_json_has_the_documented_shape_and_counts_bad_rows() {
    let Some(mut csv) = sample(40) else { return };
    // A row whose mapping does not multiply to the layer, and one with a broken mapping.
    let last = csv.lines().nth(1).unwrap().to_string();
    csv.push_str(&last.replacen("K8 S7", "K4 S7", 1));
    csv.push('\n');
    csv.push_str(&last.replacen("L3[WIO]", "L3[WIZ]", 1));
    csv.push('\n');
    let scratch = tmp("validate");
    let dir = scratch.path();
    let path = dir.join("rows.csv");
    std::fs::write(&path, csv).unwrap();
    let plots = dir.join("plots");
    let out = dosa(&[
        "validate",
        "--timeloop",
        path.to_str().unwrap(),
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
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["edp", "energy", "latency", "rows", "skipped"]);
    assert_eq!(v["rows"], 40);
    assert_eq!(v["skipped"], 2);
    for m in ["latency", "energy", "edp"] {
        let o = v[m].as_object().unwrap();
        let mut k: Vec<&String> = o.keys().collect();
        k.sort();
        assert_eq!(k, ["mape", "median_ape", "p90_ape", "spearman"]);
        assert!(o["mape"].as_f64().unwrap() < 0.01);
        assert!(o["spearman"].as_f64().unwrap() > 0.999);
    }
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("2 row(s) skipped") && err.contains("dim K"),
        "{err}"
    );
    for m in ["latency", "energy", "edp"] {
        let png = std::fs::read(plots.join(format!("validate_{m}.png"))).unwrap();
        assert!(png.starts_with(b"\x89PNG"));
    }
}

#[test]
fn validate_rejects_a_file_without_the_columns_and_writes_nothing() {
    let scratch = tmp("badcols");
    let dir = scratch.path();
    let path = dir.join("bad.csv");
    std::fs::write(&path, "a,b\n1,2\n").unwrap();
    let plots = dir.join("plots");
    let out = dosa(&[
        "validate",
        "--timeloop",
        path.to_str().unwrap(),
        "--plot",
        plots.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing column"));
    assert!(!plots.exists());
    let out = dosa(&[
        "validate",
        "--timeloop",
        dir.join("none.csv").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn eval_reports_count_weighted_totals() {
    let tut = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/tutorial.dosa");
    let out = dosa(&["eval", tut, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let net = &v["networks"][0];
    let (lat, en, edp) = (
        net["latency_cycles"].as_f64().unwrap(),
        net["energy_uj"].as_f64().unwrap(),
        net["edp"].as_f64().unwrap(),
    );
    assert!((edp - lat * en).abs() <= 1e-9 * edp);
    let layers = v["layers"].as_array().unwrap();
    let sum: f64 = layers
        .iter()
        .map(|l| l["count"].as_f64().unwrap() * l["latency_cycles"].as_f64().unwrap())
        .sum();
    assert!((sum - lat).abs() <= 1e-9 * lat);
    let text = dosa(&["eval", tut]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("network tiny"));
}

/// `examples/timeloop_rows.dosa` holds three reference rows on their hardware; `eval --timeloop`
/// must reproduce Timeloop's cycles exactly and its energy to the CSV's printed precision.
#[test]
fn eval_reproduces_timeloop_rows_from_the_example() {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/timeloop_rows.dosa");
    let out = dosa(&["eval", file, "--timeloop", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let want = [
        ("row0", 10436608.0, 4516.943239),
        ("row1", 1630720.0, 547.585464),
        ("row2", 3612672.0, 347.200561),
    ];
    let layers = v["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3);
    for (l, (name, cycles, uj)) in layers.iter().zip(want) {
        assert_eq!(l["layer"], name);
        assert_eq!(l["latency_cycles"].as_f64().unwrap(), cycles);
        let e = l["energy_uj"].as_f64().unwrap();
        assert!(
            (e - uj).abs() / uj < 1e-8,
            "{name}: {e} uJ vs Timeloop {uj}"
        );
    }
}

/// A mapping that does not fit the architecture's fixed buffers is an error, not a silent resize.
#[test]
fn eval_refuses_mappings_beyond_fixed_buffers() {
    let scratch = tmp("eval-overflow");
    let dir = scratch.path();
    let f = dir.join("big.dosa");
    std::fs::write(
        &f,
        "network n { conv c R=1 S=1 P=64 Q=64 C=16 K=16 }\n\
         map n.c \"L3[WIO] N1 - L2[WI] N1 K16X - L1[O] Q64 P4 C16X - L0[W] P16\"\n",
    )
    .unwrap();
    let out = dosa(&["eval", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Accumulator"));
}
