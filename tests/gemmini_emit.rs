//! The Gemmini C and Timeloop emitters and the `tile`/`emit` commands on a small program built
//! in Rust: snapshots of every emitted file, a build of every emitted program against the real
//! Gemmini headers (shared/gemmini, both branches) with the bare-metal cross compiler, the
//! DOSA branch's refusals, and the all-or-nothing rule for output files. Running the programs
//! on Spike is `tests/gemmini_spike.rs`.

#[path = "support/gemmini_c.rs"]
mod gemmini_c;

use dosa::cli::emit::{emit_gemmini, emit_timeloop, ApiArg};
use dosa::emit::timeloop;
use dosa::gemmini::c::{self, Api, Options};
use dosa::ir::{gemmini_arch, parse_compact, Layer, LayerMapping, Network, Program, SearchSpec};
use gemmini_c::{gemmini, scratch, Tree};
use std::path::Path;
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
                auto: false,
            })
            .collect(),
        search: SearchSpec::default(),
    }
}

/// `tiny()` with fc's DRAM loops reordered so that its split reduction (C) is innermost, which
/// the DOSA branch needs.
fn tiny_dosa() -> Program {
    let mut p = tiny();
    p.mappings[1].mapping =
        parse_compact("L3[WIO] P2 C2 - L2[WI] K16X - L1[O] K2 P32 C4 C16X - L0[W] N1").unwrap();
    p
}

fn opts(api: Api) -> Options {
    Options {
        api,
        name: "dosa_tiny".into(),
        source: "tiny.dosa".into(),
        verify: true,
    }
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
    let dosa = c::emit(&tiny_dosa(), &opts(Api::Dosa)).unwrap();
    snap!("gemmini_c_dosa_program", dosa[0].contents.clone());
    // The header does not depend on the API.
    let up = c::emit(&tiny_dosa(), &opts(Api::Upstream)).unwrap();
    assert_eq!(dosa[1], up[1]);
    // Nor does the timing-only program's header; its program is the checking one without the
    // data, the reference and the comparison.
    let timing = c::emit(
        &tiny(),
        &Options {
            verify: false,
            ..opts(Api::Upstream)
        },
    )
    .unwrap();
    assert_eq!(timing[1], files[1]);
    for gone in [
        "dosa_fill",
        "dosa_reference_",
        "dosa_compare",
        "dosa_ref",
        "dosa verify",
    ] {
        assert!(!timing[0].contents.contains(gone), "{gone}");
        assert!(files[0].contents.contains(gone), "{gone}");
    }
    for kept in [
        "tiled_conv(",
        "tiled_conv_auto(",
        "tiled_matmul(",
        "tiled_matmul_auto(",
        "dosa total",
    ] {
        assert!(timing[0].contents.contains(kept), "{kept}");
    }
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

/// Emit `program` into a fresh folder and build it against `tree`'s real headers.
fn build(g: &gemmini_c::Gemmini, program: &Program, api: ApiArg, verify: bool, tag: &str) {
    let dir = scratch(tag);
    emit_gemmini(program, "tiny.dosa", &dir, api, "dosa_tiny", verify).unwrap();
    let tree = match api {
        ApiArg::Upstream => Tree::Dev,
        ApiArg::Dosa => Tree::Dosa,
    };
    if let Err(e) = g.build(tree, &dir.join("dosa_tiny.c")) {
        panic!("{tag}: the emitted program does not build against the real headers:\n{e}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn emitted_c_builds_against_the_real_headers() {
    let Some(g) = gemmini() else { return };
    for verify in [true, false] {
        build(
            &g,
            &tiny(),
            ApiArg::Upstream,
            verify,
            &format!("cc_up_{verify}"),
        );
        build(
            &g,
            &tiny_dosa(),
            ApiArg::Dosa,
            verify,
            &format!("cc_dosa_{verify}"),
        );
    }
}

#[test]
fn the_real_headers_catch_a_call_of_the_other_branch() {
    // The build is only worth something if a wrong argument list fails it: each branch's
    // program against the other branch's header.
    let Some(g) = gemmini() else { return };
    for (api, other) in [(ApiArg::Upstream, Tree::Dosa), (ApiArg::Dosa, Tree::Dev)] {
        let dir = scratch(&format!("cc_wrong_{}", other.api()));
        emit_gemmini(&tiny_dosa(), "tiny.dosa", &dir, api, "dosa_tiny", true).unwrap();
        let err = g
            .build(other, &dir.join("dosa_tiny.c"))
            .expect_err("a call with the other branch's arguments must not build");
        assert!(err.contains("tiled_"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn the_dosa_branch_refuses_what_it_would_run_wrongly() {
    // tiny's fc runs its split C loop outside its split P loop.
    let errs = c::emit(&tiny(), &opts(Api::Dosa)).unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].contains("tiny.fc") && errs[0].contains("P2 inside C2"),
        "{}",
        errs[0]
    );
    // Its tiled_conv takes one square size.
    let mut p = tiny_dosa();
    p.networks[0]
        .layers
        .push(Layer::conv("wide", [3, 3, 16, 8, 16, 16, 1], 1, 1));
    p.mappings.push(LayerMapping {
        network: "tiny".into(),
        layer: "wide".into(),
        mapping: parse_compact("L3[WIO] N1 - L2[WI] K16X - L1[O] S3 R3 Q8 P16 C16X - L0[W] N1")
            .unwrap(),
        auto: false,
    });
    let errs = c::emit(&p, &opts(Api::Dosa)).unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].contains("tiny.wide") && errs[0].contains("square"),
        "{}",
        errs[0]
    );
    // Upstream runs both.
    assert!(c::emit(&p, &opts(Api::Upstream)).is_ok());
    assert!(c::emit(&tiny(), &opts(Api::Upstream)).is_ok());
}

#[test]
fn emit_commands_write_all_files_and_note_the_loop_order() {
    let dir = scratch("emit_ok");
    let msg = emit_gemmini(
        &tiny(),
        "tiny.dosa",
        &dir,
        ApiArg::Upstream,
        "dosa_tiny",
        true,
    )
    .unwrap();
    assert!(dir.join("dosa_tiny.c").is_file() && dir.join("dosa_tiny_params.h").is_file());
    // fc's DRAM order (P inside C) is not Gemmini's (C innermost).
    assert!(msg.contains("note: 1 mapping(s)"), "{msg}");
    let msg = emit_gemmini(
        &tiny_dosa(),
        "tiny.dosa",
        &dir,
        ApiArg::Dosa,
        "dosa_tiny",
        true,
    )
    .unwrap();
    assert!(!msg.contains("note"), "{msg}");
    let params = std::fs::read_to_string(dir.join("dosa_tiny_params.h")).unwrap();
    assert!(
        params.contains("#define L1_LOOP_ORDER \"CPRSKQN\""),
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
        auto: false,
    });
    let dir = scratch("emit_fail");
    let err = emit_gemmini(&p, "tiny.dosa", &dir, ApiArg::Upstream, "dosa_tiny", true).unwrap_err();
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
    assert_eq!(out.status.code(), Some(2));
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
    assert_eq!(out.status.code(), Some(2));
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
    if let Some(g) = gemmini() {
        if let Err(e) = g.build(Tree::Dev, &dir.join("dosa_tutorial.c")) {
            panic!("the tutorial's program does not build against the real headers:\n{e}");
        }
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
