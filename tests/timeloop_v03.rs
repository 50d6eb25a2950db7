//! `dosa emit timeloop` (v0.3) against the shipped Timeloop: the files of searched designs run
//! as they are in `shared/timeloop/bin/timeloop-model` (the fork behind the reference data), and
//! give `dosa eval --timeloop`'s cycles exactly and its energy within 0.01 %.

use std::path::{Path, PathBuf};
use std::process::Command;

/// conv 7x7 stride 2, 3x3, 1x1 and a matmul: the kinds of layer the networks are made of.
const NET: &str = r#"
network small {
    conv stem R=7 S=7 P=56 Q=56 C=3 K=32 N=1 stride=2
    conv mid R=3 S=3 P=28 Q=28 C=32 K=64
    conv proj R=1 S=1 P=28 Q=28 C=64 K=128
    matmul fc M=64 K=256 N=128
}
"#;

fn dosa(args: &[&str], dir: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_dosa"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dosa {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn timeloop_model() -> Option<PathBuf> {
    let bin = dosa::util::shared_dir()?.join("timeloop/bin/timeloop-model");
    bin.is_file().then_some(bin)
}

/// Cycles and energy (uJ) from `timeloop-model.stats.txt`. The summary prints the energy to
/// 0.01 uJ, too coarse for small layers, so it is summed from the components' totals (pJ) when
/// that sum agrees with the summary.
fn parse_stats(text: &str) -> (u64, f64) {
    let summary = &text[text.find("Summary Stats").expect("Summary Stats")..];
    let value = |key: &str| -> &str {
        summary
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no `{key}` in the summary"))
            .trim()
    };
    let cycles: u64 = value("Cycles:").parse().unwrap();
    let energy: f64 = value("Energy:")
        .trim_end_matches("uJ")
        .trim()
        .parse()
        .unwrap();
    let parts: f64 = text
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            let k = k.trim();
            [
                "Energy (total)",
                "Temporal Reduction Energy (total)",
                "Address Generation Energy (total)",
                "Spatial Reduction Energy (total)",
            ]
            .contains(&k)
            .then(|| v.trim().trim_end_matches("pJ").trim().parse::<f64>().ok())?
        })
        .sum::<f64>()
        / 1e6;
    assert!(
        (parts - energy).abs() <= 0.0051 + 1e-6 * energy,
        "component energies {parts} uJ disagree with the summary's {energy} uJ"
    );
    (cycles, parts)
}

/// Emit `file` (in `dir`) as v0.3, run Timeloop in every layer folder, compare with eval.
fn check(dir: &Path, file: &str, bin: &Path) -> usize {
    let eval: serde_json::Value =
        serde_json::from_str(&dosa(&["eval", "--timeloop", "--json", file], dir)).unwrap();
    let tl = dir.join(format!("{file}.tl"));
    dosa(&["emit", "timeloop", file, "-o", tl.to_str().unwrap()], dir);
    let mut folders: Vec<PathBuf> = std::fs::read_dir(&tl)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    folders.sort();
    let layers = eval["layers"].as_array().unwrap();
    assert_eq!(folders.len(), layers.len());
    for (folder, l) in folders.iter().zip(layers) {
        let name = format!(
            "{}.{}",
            l["network"].as_str().unwrap(),
            l["layer"].as_str().unwrap()
        );
        assert!(folder.to_string_lossy().ends_with(&name), "{folder:?}");
        let (cycles, energy) = run_timeloop(bin, folder);
        let want_cycles = l["latency_cycles"].as_f64().unwrap();
        let want_energy = l["energy_uj"].as_f64().unwrap();
        assert_eq!(cycles as f64, want_cycles, "{file} {name}: cycles");
        let rel = (energy - want_energy).abs() / want_energy;
        assert!(
            rel <= 1e-4,
            "{file} {name}: energy {energy} uJ, dosa {want_energy} uJ ({:.5} %)",
            rel * 100.0
        );
    }
    folders.len()
}

#[test]
fn shipped_timeloop_runs_emitted_v03_and_agrees_with_eval() {
    let Some(bin) = timeloop_model() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "shared/timeloop/bin/timeloop-model is missing (CI=true)"
        );
        eprintln!("note: shared/timeloop/bin/timeloop-model not found; skipping");
        return;
    };
    let dir = std::env::temp_dir().join(format!("dosa-timeloop-v03-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("small.dosa"), NET).unwrap();
    let steps = ["--starts", "2", "--steps", "200", "--no-timing"];
    // Free hardware, and hardware bounded to Gemmini's (16x16 array and below).
    for (out, bounds) in [
        ("free", &[][..]),
        (
            "bounded",
            &[
                "--pe-max",
                "16",
                "--sp-max-kib",
                "256",
                "--acc-max-kib",
                "64",
            ][..],
        ),
    ] {
        let mut args = vec!["search", "small.dosa", "-o", out];
        args.extend(steps);
        args.extend(bounds);
        dosa(&args, &dir);
        let file = format!("{out}/result.dosa");
        assert_eq!(check(&dir, &file, &bin), 4);
    }
    // Hand-written mappings on the built-in Gemmini (fixed sizes).
    let tutorial = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/tutorial.dosa");
    let gemmini = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/gemmini.dosa");
    std::fs::copy(tutorial, dir.join("tutorial.dosa")).unwrap();
    std::fs::copy(gemmini, dir.join("gemmini.dosa")).unwrap();
    assert_eq!(check(&dir, "tutorial.dosa", &bin), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// One Timeloop run in an emitted layer `folder`: (cycles, energy uJ).
fn run_timeloop(bin: &Path, folder: &Path) -> (u64, f64) {
    let out = Command::new(bin)
        .args(["arch.yaml", "problem.yaml", "mapping.yaml", "ert.yaml"])
        .current_dir(folder)
        .output()
        .unwrap();
    let stats =
        std::fs::read_to_string(folder.join("timeloop-model.stats.txt")).unwrap_or_else(|_| {
            panic!(
                "{folder:?}: timeloop-model wrote no stats: {}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
    parse_stats(&stats)
}

/// Partial tiles have no Timeloop form, so `emit timeloop` writes the problem padded to whole
/// tiles: Timeloop's cost of it equals dosa's of the padded problem, and bounds dosa's cost of
/// the partial mapping (the sum of its pieces) from above.
#[test]
fn partial_tiles_emit_the_padded_problem_an_upper_bound() {
    let Some(bin) = timeloop_model() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "shared/timeloop/bin/timeloop-model is missing (CI=true)"
        );
        return;
    };
    let dir = std::env::temp_dir().join(format!("dosa-timeloop-partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let partial = r#"
network odd { conv head R=3 S=3 P=13 Q=13 C=3 K=101 }
map odd.head "L3[WIO] K7+ Q13 - L2[WI] N1 K16X - L1[O] S3 R3 P13 C3X - L0[W] N1"
"#;
    let padded = r#"
network odd { conv head R=3 S=3 P=13 Q=13 C=3 K=112 }
map odd.head "L3[WIO] K7 Q13 - L2[WI] N1 K16X - L1[O] S3 R3 P13 C3X - L0[W] N1"
"#;
    std::fs::write(dir.join("partial.dosa"), partial).unwrap();
    std::fs::write(dir.join("padded.dosa"), padded).unwrap();
    let eval = |f: &str| -> (f64, f64) {
        let v: serde_json::Value =
            serde_json::from_str(&dosa(&["eval", "--timeloop", "--json", f], &dir)).unwrap();
        let l = &v["layers"][0];
        (
            l["latency_cycles"].as_f64().unwrap(),
            l["energy_uj"].as_f64().unwrap(),
        )
    };
    let (pc, pe) = eval("partial.dosa");
    let (qc, qe) = eval("padded.dosa");
    dosa(&["emit", "timeloop", "partial.dosa", "-o", "tl"], &dir);
    let folder = std::fs::read_dir(dir.join("tl"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let problem = std::fs::read_to_string(folder.join("problem.yaml")).unwrap();
    assert!(
        problem.contains("padded to whole tiles (K 101 -> 112)"),
        "{problem}"
    );
    let (tc, te) = run_timeloop(&bin, &folder);
    assert_eq!(tc as f64, qc, "Timeloop's cycles of the padded problem");
    assert!((te - qe).abs() / qe <= 1e-4, "energy {te} vs dosa {qe}");
    assert!(
        pc <= tc as f64 && pe < te,
        "partial ({pc}, {pe}) above padded ({tc}, {te})"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
