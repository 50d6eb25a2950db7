//! Emitted programs run on Spike with Gemmini's functional model (shared/gemmini/run.sh): small
//! hand-written layers must compute exactly what the plain C reference computes, with the
//! mapping's tiles and with Gemmini's own, for both APIs; corrupted programs must be caught.
//! Each program takes about a second on Spike.

#[path = "support/gemmini_c.rs"]
mod gemmini_c;

use gemmini_c::{scratch, spike, verify_lines, Gemmini, Tree};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// Small layers covering what tiled_conv and tiled_matmul handle differently: a 3x3 with
/// padding, a stride-2 3x3, a 1x1 whose C is split at the DRAM level (C innermost), channels and
/// tiles that are not multiples of DIM, kernel rows split at the DRAM level, a matmul whose
/// tiles do not divide its sizes, and a matmul whose reduction is split at the DRAM level. Every
/// DRAM order here keeps the reduction loops innermost, so the DOSA branch runs them too.
const SMALL: &str = r#"
network t {
  conv c3 R=3 S=3 P=8 Q=8 C=16 K=32
  conv s2 R=3 S=3 P=4 Q=4 C=16 K=16 stride=2
  conv pw R=1 S=1 P=8 Q=8 C=32 K=16
  conv odd R=3 S=3 P=6 Q=6 C=24 K=20
  conv ks R=3 S=3 P=8 Q=8 C=16 K=32
  matmul fc M=40 K=48 N=24
  matmul mc M=32 K=64 N=32
}
map t.c3 "L3[WIO] K2 - L2[WI] K16X - L1[O] S3 R3 Q8 P8 C16X - L0[W] N1"
map t.s2 "L3[WIO] Q2 - L2[WI] K16X - L1[O] S3 R3 Q2 P4 C16X - L0[W] N1"
map t.pw "L3[WIO] P2 C2 - L2[WI] K16X - L1[O] Q8 P4 C16X - L0[W] N1"
map t.odd "L3[WIO] K2 C2 - L2[WI] K10X - L1[O] S3 R3 Q6 P6 C12X - L0[W] N1"
map t.ks "L3[WIO] K2 S3 - L2[WI] K16X - L1[O] R3 Q8 P8 C16X - L0[W] N1"
map t.fc "L3[WIO] P2 K2 - L2[WI] K12X - L1[O] P20 C3 C16X - L0[W] N1"
map t.mc "L3[WIO] P2 C2 - L2[WI] K16X - L1[O] K2 P16 C2 C16X - L0[W] N1"
"#;

const LAYERS: [&str; 7] = ["t.c3", "t.s2", "t.pw", "t.odd", "t.ks", "t.fc", "t.mc"];

/// Prime and awkward sizes whose tiles do not divide them: the last tile of a dim is partial
/// (`K2+`), at DRAM and at the tile level, for a conv, a strided conv and a matmul.
const PRIME: &str = r#"
network t {
  conv pc R=3 S=3 P=7 Q=7 C=19 K=23
  conv pp R=1 S=1 P=11 Q=11 C=5 K=37
  conv ps R=3 S=3 P=5 Q=5 C=7 K=3 stride=2
  matmul pm M=41 K=29 N=17
}
map t.pc "L3[WIO] K2+ C2+ - L2[WI] K16X - L1[O] S3 R3 Q7 P7 C16X - L0[W] N1"
map t.pp "L3[WIO] K3+ P2+ - L2[WI] K16X - L1[O] Q11 P7 C5X - L0[W] N1"
map t.ps "L3[WIO] Q2+ - L2[WI] K3X - L1[O] S3 R3 Q3 P5 C7X - L0[W] N1"
map t.pm "L3[WIO] P3+ K2+ - L2[WI] K16X - L1[O] P16 C2+ C16X - L0[W] N1"
"#;

const PRIME_LAYERS: [&str; 4] = ["t.pc", "t.pp", "t.ps", "t.pm"];

/// `dosa emit gemmini` through the binary; returns the folder.
fn emit(tag: &str, tree: Tree, extra: &[&str]) -> std::path::PathBuf {
    emit_program(tag, SMALL, tree, extra)
}

/// [`emit`] of any program.
fn emit_program(tag: &str, program: &str, tree: Tree, extra: &[&str]) -> std::path::PathBuf {
    let dir = scratch(tag);
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("small.dosa");
    std::fs::write(&src, program).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dosa"))
        .args(["emit", "gemmini"])
        .arg(&src)
        .arg("-o")
        .arg(dir.join("out"))
        .args(["--api", tree.api()])
        .args(extra)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// Run on Spike, print the time taken (the test log is where the figure is reported).
fn run(g: &Gemmini, tree: Tree, dir: &Path, what: &str) -> (Option<i32>, String) {
    let t = Instant::now();
    let out = g.run(tree, dir);
    eprintln!(
        "spike {what} ({}): {:.2} s",
        tree.api(),
        t.elapsed().as_secs_f64()
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    (
        out.status.code(),
        format!("{stdout}\n--- stderr:\n{stderr}"),
    )
}

/// Both runs of every layer compared, none differing; the cycle lines still parse.
fn assert_all_verified(log: &str) {
    assert_verified(log, &LAYERS)
}

/// [`assert_all_verified`] for the given layers.
fn assert_verified(log: &str, layers: &[&str]) {
    let lines = verify_lines(log);
    let mut expected = Vec::new();
    for &l in layers {
        for r in ["mapped", "auto"] {
            expected.push((l.to_string(), r.to_string(), 0));
        }
    }
    assert_eq!(lines, expected, "{log}");
    let cycles = dosa::gemmini::c::parse_cycle_lines(log);
    let names: Vec<&str> = cycles.iter().map(|c| c.layer.as_str()).collect();
    assert_eq!(names, layers, "{log}");
    assert!(log.contains("dosa total mapped_cycles="), "{log}");
}

#[test]
fn small_layers_compute_the_reference_result_upstream() {
    let Some(g) = spike() else { return };
    let dir = emit("spike_up", Tree::Dev, &[]);
    let (code, log) = run(&g, Tree::Dev, &dir.join("out"), "7 small layers");
    assert_eq!(code, Some(0), "{log}");
    assert_all_verified(&log);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Tiles that do not divide prime sizes: Gemmini's loops run the last tile partial, on both
/// APIs, and the result is exactly the reference's.
#[test]
fn prime_sizes_with_partial_tiles_compute_the_reference_result() {
    let Some(g) = spike() else { return };
    for tree in [Tree::Dev, Tree::Dosa] {
        let dir = emit_program(&format!("spike_prime_{}", tree.api()), PRIME, tree, &[]);
        let (code, log) = run(&g, tree, &dir.join("out"), "4 prime layers");
        assert_eq!(code, Some(0), "{log}");
        assert_verified(&log, &PRIME_LAYERS);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn small_layers_compute_the_reference_result_on_the_dosa_branch() {
    let Some(g) = spike() else { return };
    let dir = emit("spike_dosa", Tree::Dosa, &[]);
    let params = std::fs::read_to_string(dir.join("out/dosa_small_params.h")).unwrap();
    // The layers whose reduction is split at the DRAM level, run with it innermost.
    for order in [
        "L2_LOOP_ORDER \"CPRSKQN\"",
        "L4_LOOP_ORDER \"SKCRPQN\"",
        "L6_LOOP_ORDER \"CPRSKQN\"",
    ] {
        assert!(params.contains(order), "{order}\n{params}");
    }
    let (code, log) = run(&g, Tree::Dosa, &dir.join("out"), "7 small layers");
    assert_eq!(code, Some(0), "{log}");
    assert_all_verified(&log);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_timing_only_program_runs_without_checking() {
    let Some(g) = spike() else { return };
    let dir = emit("spike_noverify", Tree::Dev, &["--no-verify"]);
    let c = std::fs::read_to_string(dir.join("out/dosa_small.c")).unwrap();
    assert!(!c.contains("dosa_reference_conv"), "{c}");
    let (code, log) = run(
        &g,
        Tree::Dev,
        &dir.join("out"),
        "7 small layers, --no-verify",
    );
    assert_eq!(code, Some(0), "{log}");
    assert!(verify_lines(&log).is_empty(), "{log}");
    assert_eq!(
        dosa::gemmini::c::parse_cycle_lines(&log).len(),
        LAYERS.len(),
        "{log}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Replace `from` by `to` in `path` (exactly once).
fn corrupt(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert_eq!(
        text.matches(from).count(),
        1,
        "{from} in {}",
        path.display()
    );
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn a_wrong_loop_order_on_the_dosa_branch_is_caught() {
    // The orders `dosa_order_problem` refuses, forced into the parameter header: the partial sums
    // of the split reduction are overwritten and the mapped run computes wrong results.
    let Some(g) = spike() else { return };
    let dir = emit("spike_bad_order", Tree::Dosa, &[]);
    let params = dir.join("out/dosa_small_params.h");
    corrupt(
        &params,
        "L2_LOOP_ORDER \"CPRSKQN\"",
        "L2_LOOP_ORDER \"PCRSKQN\"",
    ); // pw: P in C
    corrupt(
        &params,
        "L4_LOOP_ORDER \"SKCRPQN\"",
        "L4_LOOP_ORDER \"KSCRPQN\"",
    ); // ks: K in S
    corrupt(
        &params,
        "L6_LOOP_ORDER \"CPRSKQN\"",
        "L6_LOOP_ORDER \"PCRSKQN\"",
    ); // mc: P in C
    let (code, log) = run(&g, Tree::Dosa, &dir.join("out"), "corrupted loop orders");
    assert_eq!(code, Some(1), "{log}");
    for (layer, r, bad) in verify_lines(&log) {
        let broken = r == "mapped" && ["t.pw", "t.ks", "t.mc"].contains(&layer.as_str());
        assert_eq!(bad > 0, broken, "{layer} {r}: {bad}\n{log}");
    }
    assert!(log.contains("dosa mismatch layer=t.pw run=mapped"), "{log}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_wrong_reference_is_caught() {
    // The comparison itself: a reference that subtracts instead of adding disagrees with both
    // Gemmini runs of every layer.
    let Some(g) = spike() else { return };
    let dir = emit("spike_bad_ref", Tree::Dev, &[]);
    let c = dir.join("out/dosa_small.c");
    corrupt(
        &c,
        "acc += (int32_t)x[kch] * (int32_t)y[(size_t)kch * out_ch];",
        "acc -= (int32_t)x[kch] * (int32_t)y[(size_t)kch * out_ch];",
    );
    let (code, log) = run(&g, Tree::Dev, &dir.join("out"), "corrupted reference");
    assert_eq!(code, Some(1), "{log}");
    for (layer, r, bad) in verify_lines(&log) {
        let conv = !["t.fc", "t.mc"].contains(&layer.as_str());
        assert_eq!(bad > 0, conv, "{layer} {r}: {bad}\n{log}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_tile_beyond_the_accumulator_is_not_run_silently() {
    // A tile macro raised past what the mapping allows (80 output channels of 16x16 pixels need
    // 1280 accumulator rows): the library refuses at run time, and the program fails.
    let Some(g) = spike() else { return };
    let dir = scratch("spike_bad_tile");
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("wide.dosa");
    std::fs::write(
        &src,
        "network n {\n  conv wide R=1 S=1 P=16 Q=16 C=16 K=80\n}\nmap n.wide \"L3[WIO] K5 - L2[WI] K16X - L1[O] Q16 P16 C16X - L0[W] N1\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dosa"))
        .args(["emit", "gemmini"])
        .arg(&src)
        .arg("-o")
        .arg(dir.join("out"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let (code, log) = run(&g, Tree::Dev, &dir.join("out"), "1x1 layer");
    assert_eq!(code, Some(0), "{log}");
    corrupt(
        &dir.join("out/dosa_wide_params.h"),
        "#define L0_POCHS 16",
        "#define L0_POCHS 80",
    );
    let (code, log) = run(&g, Tree::Dev, &dir.join("out"), "corrupted tile");
    assert_ne!(code, Some(0), "{log}");
    assert!(log.contains("not enough accumulator space"), "{log}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The user's flow end to end: a small network searched with the hardware bounded to Gemmini's
/// sizes, its `result.dosa` emitted, built against the real headers and run on Spike, for both
/// APIs: every layer's mapped and `_auto` runs match the reference. Then the `gemmini-default`
/// baseline's `result.dosa` (every layer `auto`) the same way.
/// `dosa ARGS` through the binary, which must succeed.
fn dosa_ok(args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_dosa"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dosa {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Bounded to Gemmini's sizes, search `net` (and, with `auto`, run the `gemmini-default`
/// baseline), emit every result for both APIs and run it on Spike: every layer's runs must
/// match the reference. Returns the searched `result.dosa`'s text.
fn search_emit_and_run(g: &Gemmini, tag: &str, net: &str, layers: usize, auto: bool) -> String {
    let dir = scratch(tag);
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("net.dosa");
    std::fs::write(&src, net).unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let (d, b) = (dir.join("d"), dir.join("b"));
    let (src, d_s, b_s) = (s(&src), s(&d), s(&b));
    dosa_ok(&[
        "search",
        &src,
        "--pe-max",
        "16",
        "--sp-max-kib",
        "256",
        "--acc-max-kib",
        "64",
        "--starts",
        "2",
        "--steps",
        "200",
        "--round-every",
        "100",
        "-o",
        &d_s,
    ]);
    let mut results = vec![(d.join("result.dosa"), "searched")];
    if auto {
        dosa_ok(&["baseline", &src, "--kind", "gemmini-default", "-o", &b_s]);
        results.push((b.join("result.dosa"), "auto"));
    }
    for (result, what) in results {
        for tree in [Tree::Dev, Tree::Dosa] {
            let out = dir.join(format!("c_{what}_{}", tree.api()));
            dosa_ok(&[
                "emit",
                "gemmini",
                &s(&result),
                "-o",
                &s(&out),
                "--api",
                tree.api(),
            ]);
            let (code, log) = run(g, tree, &out, what);
            assert_eq!(code, Some(0), "{log}");
            let lines = verify_lines(&log);
            assert_eq!(lines.len(), 2 * layers, "{log}");
            assert!(lines.iter().all(|(_, _, n)| *n == 0), "{log}");
        }
    }
    let text = std::fs::read_to_string(d.join("result.dosa")).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    text
}

#[test]
fn a_searched_design_runs_correctly_on_spike() {
    let Some(g) = spike() else { return };
    search_emit_and_run(
        &g,
        "spike_searched",
        "network s {\n  conv a R=3 S=3 P=8 Q=8 C=16 K=32\n  conv b R=1 S=1 P=8 Q=8 C=32 K=48 stride=1\n  \
         conv c R=3 S=3 P=4 Q=4 C=48 K=16 stride=2\n  matmul m M=24 K=96 N=40\n}\n",
        4,
        true,
    );
}

/// A design searched for prime sizes uses partial tiles (`K2+`), and runs correctly on Spike
/// on both APIs.
#[test]
fn a_searched_design_with_partial_tiles_runs_correctly_on_spike() {
    let Some(g) = spike() else { return };
    let result = search_emit_and_run(
        &g,
        "spike_searched_prime",
        "network s {\n  conv a R=3 S=3 P=11 Q=11 C=19 K=23\n  conv b R=1 S=1 P=13 Q=13 C=17 K=41\n  \
         matmul m M=37 K=53 N=29\n}\n",
        3,
        false,
    );
    assert!(result.matches("+ ").count() >= 3, "{result}");
}
