//! The examples: they check, their IR is snapshotted, they are formatted, they print back, and
//! `examples/gemmini.dosa` is exactly the built-in architecture.

use dosa::ir::{gemmini_arch, parse_compact, Dim};
use dosa::syntax::{check_path, format_source, load_path, load_text, program_to_source, Formatted};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The examples this front end owns (other stages may add their own to `examples/`).
const OURS: [&str; 7] = [
    "gemmini",
    "tutorial",
    "resnet50",
    "bert",
    "unet",
    "retinanet",
    "alexnet",
];

fn examples() -> Vec<PathBuf> {
    OURS.iter()
        .map(|s| Path::new("examples").join(format!("{s}.dosa")))
        .collect()
}

#[test]
fn every_dosa_file_in_examples_checks() {
    for e in std::fs::read_dir("examples").expect("examples/ exists") {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|e| e == "dosa") {
            let o = check_path(&path);
            assert_eq!(o.error_count(), 0, "{}:\n{}", path.display(), o.render());
        }
    }
}

#[test]
fn every_example_checks_and_its_ir_is_snapshotted() {
    let all = examples();
    assert!(
        all.len() >= 7,
        "expected gemmini, tutorial and five networks, found {all:?}"
    );
    for path in all {
        let o = check_path(&path);
        assert_eq!(o.error_count(), 0, "{}:\n{}", path.display(), o.render());
        let p = o.program.expect("clean program");
        let json = serde_json::to_string_pretty(&p).expect("IR serialises");
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
            insta::assert_snapshot!(format!("example_{stem}"), json);
        });
    }
}

#[test]
fn gemmini_example_is_exactly_the_builtin() {
    let p = load_path(Path::new("examples/gemmini.dosa")).unwrap();
    assert_eq!(p.arch, gemmini_arch());
    // A file with no arch gets the same.
    let q = load_text("x.dosa", "network n {\n    conv a C=3 K=8\n}\n").unwrap();
    assert_eq!(q.arch, gemmini_arch());
}

#[test]
fn examples_are_formatted_and_print_back_to_the_same_program() {
    for path in examples() {
        let text = std::fs::read_to_string(&path).unwrap();
        match format_source(&path.display().to_string(), &text) {
            Formatted::Ok(f) => assert_eq!(f, text, "{} is not formatted", path.display()),
            Formatted::Err(e) => panic!("{e}"),
        }
        let p = load_path(&path).unwrap();
        let printed = program_to_source(&p);
        let back = load_text("printed.dosa", &printed).unwrap_or_else(|e| panic!("{printed}\n{e}"));
        assert_eq!(back, p, "{}", path.display());
    }
}

#[test]
fn tutorial_mapping_reads_as_written() {
    let p = load_path(Path::new("examples/tutorial.dosa")).unwrap();
    let m = &p.mappings[0];
    assert_eq!((m.network.as_str(), m.layer.as_str()), ("tiny", "conv1"));
    let expected =
        parse_compact("L3[WIO] K4 Q28 - L2[WI] N1 K16X - L1[O] S7 R7 Q4 P7 C3X - L0[W] P16")
            .unwrap();
    assert_eq!(m.mapping, expected);
    let layer = p.layer("tiny", "conv1").unwrap();
    assert_eq!(layer.dims, [7, 7, 112, 112, 3, 64, 1]);
    assert_eq!((layer.wstride, layer.hstride), (2, 2));
    for d in Dim::ALL {
        assert_eq!(m.mapping.dim_product(d), layer.dim(d) as u128);
    }
    // The unqualified `map fc` resolved to the only network holding `fc`.
    assert_eq!(p.mappings[1].network, "tiny");
    assert_eq!(p.search.bounds.sp_max_kib, Some(512.0));
    assert_eq!(p.search.bounds.pe_max, Some(32));
}

#[test]
fn capacities_in_any_unit_and_scope_lower_to_bytes_per_instance() {
    let arch = |cap: &str, inst: &str| {
        format!(
            "arch a {{\n pe 16x16\n mac_energy 1 pJ\n level B {{ keeps O word 32 bits capacity {cap} instances {inst} energy sram }}\n level D {{ keeps W, I, O word 8 bits energy dram backing }}\n}}\n"
        )
    };
    let cap = |cap: &str, inst: &str| {
        load_text("a.dosa", &arch(cap, inst)).unwrap().arch.levels[0].capacity
    };
    use dosa::ir::Bound::*;
    assert_eq!(cap("64 KiB total", "per_column"), Fixed(4096));
    assert_eq!(cap("4 KiB each", "per_column"), Fixed(4096));
    assert_eq!(cap("256 B total", "per_pe"), Fixed(1));
    assert_eq!(cap("1.5 KiB", "single"), Fixed(1536));
    assert_eq!(cap("<= 1 MiB", "single"), AtMost(1 << 20));
    assert_eq!(cap("free", "per_column"), Free);
}

#[test]
fn fmt_command_rewrites_in_place_checks_and_prints() {
    let bin = env!("CARGO_BIN_EXE_dosa");
    let dir = std::env::temp_dir().join(format!("dosa-syntax-fmt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let messy = "# a network\nnetwork   n{conv a   C=3 K=8 # first\n\n\n   matmul \"mm\" M=4 K=4 N=4}\nmap n.a \"L3[WIO] C3 K8 - L2[WI] N1 - L1[O] N1 - L0[W] N1\"\n";
    let tidy = "# a network\nnetwork n {\n    conv a C=3 K=8 # first\n\n    matmul mm M=4 K=4 N=4\n}\n\nmap n.a \"L3[WIO] C3 K8 - L2[WI] N1 - L1[O] N1 - L0[W] N1\"\n";
    let file = dir.join("messy.dosa");
    std::fs::write(&file, messy).unwrap();
    let run = |args: &[&str]| Command::new(bin).args(args).arg(&file).output().unwrap();
    // --check: exit 1, file untouched.
    let out = run(&["fmt", "--check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not formatted"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), messy);
    // --stdout: prints, file untouched.
    let out = run(&["fmt", "--stdout"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), tidy);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), messy);
    // Default: rewrite in place; then --check passes and nothing else is left behind.
    assert_eq!(run(&["fmt"]).status.code(), Some(0));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), tidy);
    assert_eq!(run(&["fmt", "--check"]).status.code(), Some(0));
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(left.len(), 1, "temporary files left behind");
    std::fs::remove_dir_all(&dir).ok();
}
