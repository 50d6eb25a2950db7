//! The Gemmini C and Timeloop emitters and the `tile`/`emit` commands on a small program built
//! in Rust: snapshots of every emitted file, a C syntax check of the program against the
//! stand-in header in `tests/c`, and the all-or-nothing rule for output files.

use dosa::cli::emit::{emit_gemmini, emit_timeloop, ApiArg};
use dosa::emit::timeloop;
use dosa::gemmini::c::{self, Api, Options};
use dosa::ir::{gemmini_arch, parse_compact, Layer, LayerMapping, Network, Program, SearchSpec};
use std::path::{Path, PathBuf};
use std::process::Command;

fn tiny() -> Program {
    let layers = vec![
        Layer::conv("conv3x3", [3, 3, 8, 8, 16, 32, 1], 1, 1),
        Layer::matmul("fc", 64, 128, 32),
    ];
    let maps = [
        (
            "conv3x3",
            "L3[WIO] K2 - L2[WI] K16X - L1[O] S3 R3 Q8 P8 C16X - L0[W] N1",
        ),
        (
            "fc",
            "L3[WIO] C2 P2 - L2[WI] K16X - L1[O] K2 P32 C4 C16X - L0[W] N1",
        ),
    ];
    Program {
        arch: gemmini_arch(),
        networks: vec![Network {
            name: "tiny".into(),
            layers,
        }],
        mappings: maps
            .iter()
            .map(|(l, m)| LayerMapping {
                network: "tiny".into(),
                layer: l.to_string(),
                mapping: parse_compact(m).unwrap(),
            })
            .collect(),
        search: SearchSpec::default(),
    }
}

fn opts(api: Api) -> Options {
    Options {
        api,
        name: "dosa_tiny".into(),
        source: "tiny.dosa".into(),
    }
}

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dosa_test_{tag}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

macro_rules! snap {
    ($name:expr, $value:expr) => {
        insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
            insta::assert_snapshot!($name, $value);
        });
    };
}

#[test]
fn gemmini_c_snapshots() {
    let files = c::emit(&tiny(), &opts(Api::Upstream)).unwrap();
    assert_eq!(files[0].path, "dosa_tiny.c");
    assert_eq!(files[1].path, "dosa_tiny_params.h");
    snap!("gemmini_c_upstream_program", files[0].contents.clone());
    snap!("gemmini_c_params_header", files[1].contents.clone());
    let dosa = c::emit(&tiny(), &opts(Api::Dosa)).unwrap();
    snap!("gemmini_c_dosa_program", dosa[0].contents.clone());
    // The header does not depend on the API.
    assert_eq!(dosa[1], files[1]);
}

#[test]
fn timeloop_snapshots() {
    let files = timeloop::emit(&tiny()).unwrap();
    let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "00_tiny.conv3x3/arch.yaml",
            "00_tiny.conv3x3/problem.yaml",
            "00_tiny.conv3x3/mapping.yaml",
            "01_tiny.fc/arch.yaml",
            "01_tiny.fc/problem.yaml",
            "01_tiny.fc/mapping.yaml",
        ]
    );
    snap!("timeloop_conv_arch", files[0].contents.clone());
    snap!("timeloop_conv_problem", files[1].contents.clone());
    snap!("timeloop_conv_mapping", files[2].contents.clone());
    snap!("timeloop_matmul_mapping", files[5].contents.clone());
}

fn cc_available() -> bool {
    Command::new("cc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn syntax_check(dir: &Path, c_file: &str) {
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c");
    let out = Command::new("cc")
        .args([
            "-fsyntax-only",
            "-std=gnu11",
            "-Wall",
            "-Wextra",
            "-Wno-unused-parameter",
            "-Werror",
        ])
        .arg("-DBAREMETAL")
        .arg("-I")
        .arg(&include)
        .arg(dir.join(c_file))
        .output()
        .expect("cc runs");
    assert!(
        out.status.success(),
        "cc rejected {c_file}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn emitted_c_compiles_against_the_stand_in_header() {
    if !cc_available() {
        eprintln!("note: no `cc` on this machine; the C syntax check is skipped");
        return;
    }
    for (api, tag) in [(ApiArg::Upstream, "up"), (ApiArg::Dosa, "dosa")] {
        let dir = scratch(&format!("cc_{tag}"));
        emit_gemmini(&tiny(), "tiny.dosa", &dir, api, "dosa_tiny").unwrap();
        syntax_check(&dir, "dosa_tiny.c");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn stand_in_header_catches_a_wrong_call() {
    // The check is only worth something if a wrong argument list fails it.
    if !cc_available() {
        eprintln!("note: no `cc` on this machine; the C syntax check is skipped");
        return;
    }
    let dir = scratch("cc_wrong");
    emit_gemmini(&tiny(), "tiny.dosa", &dir, ApiArg::Upstream, "dosa_tiny").unwrap();
    let path = dir.join("dosa_tiny.c");
    let text = std::fs::read_to_string(&path).unwrap();
    // Call the upstream API with the research variant's extra argument.
    let broken = text.replacen("0, 0, 0, WS);", "0, 0, 0, WS, \"CRSKPQN\");", 1);
    assert_ne!(broken, text);
    std::fs::write(&path, broken).unwrap();
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c");
    let out = Command::new("cc")
        .args(["-fsyntax-only", "-std=gnu11", "-DBAREMETAL", "-I"])
        .arg(&include)
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn emit_commands_write_all_files_and_note_the_loop_order() {
    let dir = scratch("emit_ok");
    let msg = emit_gemmini(&tiny(), "tiny.dosa", &dir, ApiArg::Upstream, "dosa_tiny").unwrap();
    assert!(dir.join("dosa_tiny.c").is_file() && dir.join("dosa_tiny_params.h").is_file());
    // fc's DRAM order (P inside C) is not Gemmini's (C innermost).
    assert!(msg.contains("note: 1 mapping(s)"), "{msg}");
    let msg = emit_gemmini(&tiny(), "tiny.dosa", &dir, ApiArg::Dosa, "dosa_tiny").unwrap();
    assert!(!msg.contains("note"), "{msg}");
    let params = std::fs::read_to_string(dir.join("dosa_tiny_params.h")).unwrap();
    assert!(
        params.contains("#define L1_LOOP_ORDER \"PCRSKQN\""),
        "{params}"
    );
    emit_timeloop(&tiny(), &dir.join("tl")).unwrap();
    assert!(dir.join("tl/01_tiny.fc/mapping.yaml").is_file());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_failing_emit_writes_nothing() {
    let mut p = tiny();
    // An output tile of 8x8 rows of 1024 channels needs 64*64 accumulator rows.
    p.networks[0]
        .layers
        .push(Layer::conv("wide", [1, 1, 8, 8, 16, 1024, 1], 1, 1));
    p.mappings.push(LayerMapping {
        network: "tiny".into(),
        layer: "wide".into(),
        mapping: parse_compact("L3[WIO] N1 - L2[WI] K16X - L1[O] K64 Q8 P8 C16X - L0[W] N1")
            .unwrap(),
    });
    let dir = scratch("emit_fail");
    let err = emit_gemmini(&p, "tiny.dosa", &dir, ApiArg::Upstream, "dosa_tiny").unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("tiny.wide") && msg.contains("accumulator overflow"),
        "{msg}"
    );
    assert!(
        msg.contains("needs 4096 rows") && msg.contains("over by 3584"),
        "{msg}"
    );
    assert!(!dir.exists(), "nothing may be written");
}

#[test]
fn tile_report_snapshots() {
    let mut p = tiny();
    p.networks.push(Network {
        name: "ref".into(),
        layers: vec![
            Layer::conv("conv1", [7, 7, 112, 112, 3, 64, 1], 2, 2),
            Layer::conv("fc1000", [1, 1, 1, 1, 2048, 1000, 1], 1, 1),
            Layer::matmul("mm_5", 128, 3072, 768),
        ],
    });
    snap!("tile_gemmini_text", dosa::cli::tile::render(&p, false));
    let json = dosa::cli::tile::render(&p, true);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let conv1 = &v[2];
    assert_eq!(conv1["name"], "conv1");
    assert_eq!(conv1["kind"], "conv");
    assert_eq!(
        conv1["tiles"],
        serde_json::json!({"batches": 1, "porows": 22, "pocols": 23, "pochs": 16, "krows": 7, "kcols": 7, "kchs": 3})
    );
    assert_eq!(
        conv1["dims"],
        serde_json::json!({"R": 7, "S": 7, "P": 23, "Q": 22, "C": 3, "K": 16, "N": 1})
    );
    let fc = &v[3];
    assert_eq!(fc["kind"], "matmul");
    assert_eq!(
        fc["tiles"],
        serde_json::json!({"tile_I": 1, "tile_J": 8, "tile_K": 56})
    );
    assert_eq!(
        fc["dims"],
        serde_json::json!({"R": 1, "S": 1, "P": 16, "Q": 1, "C": 896, "K": 128, "N": 1})
    );
    snap!("tile_gemmini_json", json);
}

#[test]
fn the_binary_reports_unreadable_input_and_writes_nothing() {
    let dir = scratch("bin");
    let out = Command::new(env!("CARGO_BIN_EXE_dosa"))
        .args(["emit", "gemmini", "no_such_file.dosa", "-o"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!dir.exists());
    let out = Command::new(env!("CARGO_BIN_EXE_dosa"))
        .args(["emit", "gemmini", "x.dosa", "-o", "d", "--api", "bogus"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(env!("CARGO_BIN_EXE_dosa"))
        .args(["tile", "gemmini", "no_such_file.dosa", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
}

#[test]
fn the_binary_runs_on_the_example_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(env!("CARGO_BIN_EXE_dosa"))
        .args(["tile", "gemmini", "--json"])
        .arg(root.join("examples/resnet50.dosa"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 24);
    let conv1 = rows
        .iter()
        .find(|r| r["name"] == "_outputs_input.2")
        .unwrap();
    assert_eq!(
        conv1["tiles"],
        serde_json::json!({"batches": 1, "porows": 22, "pocols": 23, "pochs": 16, "krows": 7, "kcols": 7, "kchs": 3})
    );
    let fc = rows.iter().find(|r| r["name"] == "_outputs_3356").unwrap();
    assert_eq!(
        fc["tiles"],
        serde_json::json!({"tile_I": 1, "tile_J": 8, "tile_K": 56})
    );

    let dir = scratch("bin_examples");
    let out = Command::new(env!("CARGO_BIN_EXE_dosa"))
        .args(["emit", "gemmini"])
        .arg(root.join("examples/tutorial.dosa"))
        .arg("-o")
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.join("dosa_tutorial_params.h").is_file());
    if cc_available() {
        syntax_check(&dir, "dosa_tutorial.c");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_dosa"))
        .args(["emit", "timeloop"])
        .arg(root.join("examples/tutorial.dosa"))
        .arg("-o")
        .arg(dir.join("tl"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.join("tl/00_tiny.conv1/mapping.yaml").is_file());
    std::fs::remove_dir_all(&dir).unwrap();
}
