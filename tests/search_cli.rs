//! `dosa search` and `dosa baseline` through the binary: outputs, reproducibility, snapshots.

use std::path::Path;
use std::process::Command;

fn dosa(args: &[&str]) -> std::process::Output {
    dosa_env(args, &[])
}

fn dosa_env(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dosa"))
        .args(args)
        .envs(env.iter().copied())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs")
}

/// Run the binary with extra environment variables and insist it succeeded; its stdout.
fn dosa_ok(args: &[&str], env: &[(&str, &str)]) -> String {
    let out = dosa_env(args, env);
    assert!(
        out.status.success(),
        "dosa {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `dosa CMD` on the tutorial's `tiny` network, then `extra`.
fn tiny<'a>(cmd: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![cmd, "examples/tutorial.dosa", "--network", "tiny"];
    args.extend_from_slice(extra);
    args
}

const QUICK: [&str; 6] = ["--starts", "2", "--steps", "120", "--round-every", "40"];

/// A quick search of `tiny` (plus `extra`) with the rest of the arguments `more`.
fn quick_search<'a>(more: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = tiny("search", more);
    args.extend_from_slice(&QUICK);
    args.extend_from_slice(extra);
    args
}

/// An empty scratch folder for one test.
fn fresh_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("dosa-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// `dosa emit gemmini RESULT -o OUT`, insisting it succeeds.
fn emit_ok(result: &Path, out: &Path) {
    dosa_ok(
        &[
            "emit",
            "gemmini",
            result.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
        &[],
    );
}

fn search_json(extra: &[&str]) -> String {
    dosa_ok(&quick_search(&["--json", "--no-timing"], extra), &[])
}

/// `result.dosa` in `dir` passes `dosa check` (which rejects any mapping illegal on the derived
/// architecture), and `dosa eval` of it gives the network figures and PE array of `report.json`.
fn assert_result_reproduced(dir: &Path, method: &str) {
    let result = dir.join("result.dosa");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap();
    dosa_ok(&["check", result.to_str().unwrap()], &[]);
    let eval = dosa_ok(&["eval", result.to_str().unwrap(), "--json"], &[]);
    let e: serde_json::Value = serde_json::from_str(&eval).unwrap();
    let net = &e["networks"][0];
    for k in ["latency_cycles", "energy_uj", "edp"] {
        let a = net[k].as_f64().unwrap();
        let b = report["network"][k].as_f64().unwrap();
        assert!(
            (a - b).abs() <= 1e-9 * b.abs(),
            "{k}: eval {a} vs {method} {b}"
        );
    }
    assert_eq!(e["hardware"]["pe_dim"], report["hardware"]["pe_dim"]);
}

#[test]
fn same_seed_same_bytes_and_a_reviewed_snapshot() {
    let a = search_json(&["--seed", "5"]);
    let b = search_json(&["--seed", "5"]);
    assert_eq!(a, b, "same seed, different output");
    let v: serde_json::Value = serde_json::from_str(&a).unwrap();
    assert_eq!(v["method"], "search");
    assert_eq!(v["layers"].as_array().unwrap().len(), 3);
    insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!("search_tiny_seed5", a);
    });
}

#[test]
fn result_dosa_checks_and_eval_reproduces_the_report() {
    let dir = std::env::temp_dir().join(format!("dosa-search-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dosa_ok(&quick_search(&["-o", dir.to_str().unwrap()], &[]), &[]);
    for f in ["result.dosa", "report.json", "curve.csv", "curve.png"] {
        assert!(dir.join(f).is_file(), "missing {f}");
    }
    let png = std::fs::read(dir.join("curve.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    assert_result_reproduced(&dir, "search");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bounded_search_respects_the_bounds() {
    let a = search_json(&["--pe-max", "8", "--sp-max-kib", "64", "--acc-max-kib", "16"]);
    let v: serde_json::Value = serde_json::from_str(&a).unwrap();
    let h = &v["hardware"];
    assert!(h["pe_dim"].as_u64().unwrap() <= 8);
    assert!(h["scratchpad_kib"].as_f64().unwrap() <= 64.0);
    assert!(h["accumulator_kib"].as_f64().unwrap() <= 16.0);
}

#[test]
fn errors_exit_nonzero_and_write_nothing() {
    let dir = std::env::temp_dir().join(format!("dosa-search-bad-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let bad = Path::new("tests/bad/mapping-product.dosa");
    let out = dosa(&["search", bad.to_str().unwrap(), "-o", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!dir.exists(), "a failing search wrote {}", dir.display());
    let out = dosa(&["search", "examples/tutorial.dosa", "--network", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    let out = dosa(&["search", "examples/tutorial.dosa", "--lr", "-1"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn baselines_share_the_report_format() {
    for kind in ["random", "bo", "gemmini-default"] {
        let out = dosa_ok(
            &tiny("baseline", &["--kind", kind, "--samples", "40", "--json"]),
            &[],
        );
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        for k in [
            "method",
            "objective",
            "seed",
            "evaluations",
            "seconds",
            "hardware",
            "network",
            "layers",
        ] {
            assert!(v.get(k).is_some(), "{kind}: no `{k}`");
        }
        assert!(v["network"]["edp"].as_f64().unwrap() > 0.0);
    }
}

/// A small seeded bo run of `tiny`, then `extra`.
fn bo_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = tiny(
        "baseline",
        &["--kind", "bo", "--seed", "1", "--samples", "60"],
    );
    args.extend_from_slice(extra);
    args
}

fn bo_json(threads: &str) -> String {
    dosa_ok(
        &bo_args(&["--json", "--no-timing"]),
        &[("RAYON_NUM_THREADS", threads)],
    )
}

#[test]
fn bo_is_reproducible_across_runs_and_thread_counts() {
    let a = bo_json("2");
    assert_eq!(a, bo_json("2"), "same seed, different output");
    assert_eq!(a, bo_json("1"), "1 thread and 2 threads differ");
    let v: serde_json::Value = serde_json::from_str(&a).unwrap();
    assert_eq!(v["method"], "bo");
    // 60 samples over 30 hardware points: 2 mappings per layer on each.
    assert_eq!(v["evaluations"], 60);
    assert_eq!(v["layers"].as_array().unwrap().len(), 3);
}

#[test]
fn bo_mappings_are_legal_and_reproduced_by_eval() {
    let dir = std::env::temp_dir().join(format!("dosa-bo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dosa_ok(&bo_args(&["-o", dir.to_str().unwrap()]), &[]);
    assert_result_reproduced(&dir, "bo");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn compare_adds_bo_and_a_floor_no_method_beats() {
    let text = dosa_ok(&quick_search(&["--compare", "--no-timing"], &[]), &[]);
    let table = &text[text.find("method            evaluations").unwrap()..];
    let rows: Vec<&str> = table.lines().skip(1).collect();
    let names: Vec<&str> = rows
        .iter()
        .map(|r| r.split("  ").next().unwrap().trim())
        .collect();
    assert_eq!(
        names,
        ["search", "random", "bo", "gemmini-default", "floor (bound)"]
    );
    // Each method's network latency (the comparison on cycles), none for the EDP floor.
    for r in &rows[..4] {
        let cycles: f64 = r.split_whitespace().nth(2).unwrap().parse().unwrap();
        assert!(cycles.is_finite() && cycles > 0.0, "{r}");
    }
    assert_eq!(rows[4].split_whitespace().nth(3), Some("-"), "{}", rows[4]);
    for r in &rows {
        let vs_floor: f64 = r
            .split_whitespace()
            .last()
            .unwrap()
            .trim_end_matches('x')
            .parse()
            .unwrap();
        assert!(vs_floor >= 1.0, "below the floor: {r}");
    }
}

/// Every method's `-o` folder: `result.dosa` checks, `eval` reproduces the report (for
/// `gemmini-default` through `map ... auto`, Gemmini's own tiler piece by piece) and `emit
/// gemmini` accepts it, free and bounded to Gemmini's sizes.
#[test]
fn every_method_writes_a_result_that_emits() {
    let base = fresh_dir("methods");
    let bounded = [
        "--pe-max",
        "16",
        "--sp-max-kib",
        "256",
        "--acc-max-kib",
        "64",
    ];
    for (i, kind) in ["search", "random", "bo", "gemmini-default"]
        .into_iter()
        .enumerate()
    {
        for (j, extra) in [&[][..], &bounded[..]].into_iter().enumerate() {
            let dir = base.join(format!("{i}-{j}"));
            let d = dir.to_str().unwrap();
            let mut args = if kind == "search" {
                quick_search(&["-o", d], extra)
            } else {
                tiny("baseline", &["--kind", kind, "--samples", "40", "-o", d])
            };
            if kind != "search" {
                args.extend_from_slice(extra);
            }
            dosa_ok(&args, &[]);
            assert_result_reproduced(&dir, kind);
            let result = dir.join("result.dosa");
            if kind == "gemmini-default" {
                let text = std::fs::read_to_string(&result).unwrap();
                assert!(text.contains("map tiny.conv1 auto"), "{text}");
            }
            let c = dir.join("c");
            emit_ok(&result, &c);
        }
    }
    let _ = std::fs::remove_dir_all(&base);
}

/// `--hardware fixed` on a program whose arch fixes Gemmini's sizes (the tutorial imports
/// `gemmini.dosa`): the design keeps 16x16 and 256 / 64 KiB, `result.dosa` reproduces it and
/// emits; without the flag the tutorial's `max_*` bounds ask for a co-design.
#[test]
fn fixed_hardware_keeps_the_chip() {
    let dir = fresh_dir("fixed");
    let d = dir.to_str().unwrap();
    let out = dosa_ok(
        &quick_search(
            &["--json", "--no-timing", "-o", d],
            &["--hardware", "fixed"],
        ),
        &[],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["hardware"]["pe_dim"], 16);
    assert_eq!(v["hardware"]["scratchpad_kib"], 256.0);
    assert_eq!(v["hardware"]["accumulator_kib"], 64.0);
    assert_result_reproduced(&dir, "search");
    let c = dir.join("c");
    let result = dir.join("result.dosa");
    emit_ok(&result, &c);
    let free = search_json(&[]);
    let f: serde_json::Value = serde_json::from_str(&free).unwrap();
    assert_ne!(
        f["hardware"], v["hardware"],
        "the bounded co-design derives its own sizes"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--mapspace free` (Timeloop's mapspace) on fixed Gemmini, for a layer whose best free
/// mapping loops over K at the scratchpad: `result.dosa` records the mapspace, `eval`
/// reproduces the report and `check` warns that Gemmini cannot run it; the search block's
/// `mapspace free` gives the same bytes; `emit gemmini` refuses the result (Gemmini's C library
/// has one tile level), exits non-zero and writes nothing.
#[test]
fn free_mapspace_is_recorded_and_emit_gemmini_refuses_it() {
    let dir = fresh_dir("mapspace");
    std::fs::create_dir_all(&dir).unwrap();
    let gemmini = std::env::current_dir()
        .unwrap()
        .join("examples/gemmini.dosa");
    let net = "network n {\n    conv c R=1 S=1 P=28 Q=28 C=128 K=512\n}\n";
    let program = |search: &str| format!("import \"{}\"\n{net}{search}", gemmini.display());
    let flag = dir.join("flag.dosa");
    std::fs::write(&flag, program("")).unwrap();
    let block = dir.join("block.dosa");
    std::fs::write(&block, program("search {\n    mapspace free\n}\n")).unwrap();
    let out = dir.join("out");
    let run = |file: &Path, extra: &[&str], out: Option<&Path>| {
        let mut args = vec!["search", file.to_str().unwrap(), "--json", "--no-timing"];
        args.extend_from_slice(extra);
        if let Some(o) = out {
            args.extend_from_slice(&["-o", o.to_str().unwrap()]);
        }
        dosa_ok(&args, &[])
    };
    let free = run(&flag, &["--mapspace", "free"], Some(&out));
    assert_eq!(free, run(&block, &[], None), "flag and search block agree");
    let gemmini_rules = run(&flag, &[], None);
    let edp = |s: &str| {
        let v: serde_json::Value = serde_json::from_str(s).unwrap();
        v["network"]["edp"].as_f64().unwrap()
    };
    assert!(
        edp(&free) < edp(&gemmini_rules),
        "the free space holds more"
    );
    let result = std::fs::read_to_string(out.join("result.dosa")).unwrap();
    assert!(result.contains("mapspace free"), "{result}");
    assert_result_reproduced(&out, "search");
    let check = dosa(&["check", out.join("result.dosa").to_str().unwrap()]);
    assert!(check.status.success());
    let warned = String::from_utf8_lossy(&check.stderr);
    assert!(warned.contains("warning[gemmini-rules]"), "{warned}");
    let c = dir.join("c");
    let emit = dosa(&[
        "emit",
        "gemmini",
        out.join("result.dosa").to_str().unwrap(),
        "-o",
        c.to_str().unwrap(),
    ]);
    assert!(!emit.status.success());
    let err = String::from_utf8_lossy(&emit.stderr);
    assert!(err.contains("one tile level"), "{err}");
    assert!(!c.exists(), "nothing is written");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--compare --json` is one document with every method's full report and the floor (each
/// report carrying the floor too), byte-identical to `compare.json`; `-o` also writes each
/// baseline's `result.dosa` and `report.json` in its own folder, and those reproduce.
#[test]
fn compare_json_is_one_document_and_every_method_gets_a_folder() {
    let dir = fresh_dir("compare");
    let d = dir.to_str().unwrap();
    let out = dosa_ok(
        &quick_search(&["--compare", "--json", "--no-timing", "-o", d], &[]),
        &[],
    );
    assert_eq!(
        out,
        std::fs::read_to_string(dir.join("compare.json")).unwrap()
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let methods: Vec<&str> = v["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["method"].as_str().unwrap())
        .collect();
    assert_eq!(methods, ["search", "random", "bo", "gemmini-default"]);
    let floor = v["floor"]["edp"].as_f64().unwrap();
    assert!(floor > 0.0);
    for m in v["methods"].as_array().unwrap() {
        assert_eq!(m["floor"]["edp"].as_f64(), Some(floor));
        assert!(m["network"]["edp"].as_f64().unwrap() >= floor);
        assert!(!m["layers"].as_array().unwrap().is_empty());
    }
    for method in ["random", "bo", "gemmini-default"] {
        assert_result_reproduced(&dir.join(method), method);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
