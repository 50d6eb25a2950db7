//! The corpus of bad inputs under `tests/bad/`: one file per kind of error, named
//! `<code>.dosa` or `<code>__<variant>.dosa`. Each must report its code with a span, through the
//! library (snapshotted) and through the binary (exit 1, no panic).

use dosa::syntax::{check_path, check_text, format_source, Formatted};
use std::path::{Path, PathBuf};
use std::process::Command;

fn corpus() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir("tests/bad")
        .expect("tests/bad exists")
        .map(|e| e.expect("readable dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "dosa"))
        .collect();
    v.sort();
    v
}

fn code_of(path: &Path) -> String {
    let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
    stem.split("__").next().unwrap().to_string()
}

#[test]
fn corpus_is_large_and_covers_many_kinds() {
    let files = corpus();
    assert!(files.len() >= 20, "{} bad inputs", files.len());
    let mut kinds: Vec<String> = files.iter().map(|p| code_of(p)).collect();
    kinds.dedup();
    assert!(kinds.len() >= 20, "{kinds:?}");
}

#[test]
fn every_bad_input_reports_its_kind_with_a_span() {
    for path in corpus() {
        let o = check_path(&path);
        let code = code_of(&path);
        assert!(o.program.is_none(), "{} loaded", path.display());
        assert!(o.error_count() > 0, "{}", path.display());
        assert!(
            o.codes().contains(&code),
            "{}: expected error[{code}], got {:?}",
            path.display(),
            o.codes()
        );
        for d in &o.diagnostics {
            assert!(
                !d.labels.is_empty(),
                "{}: `{}` has no span",
                path.display(),
                d.message
            );
        }
        let rendered = o.render();
        assert!(rendered.contains("┌─"), "{rendered}");
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
            insta::assert_snapshot!(format!("bad_{stem}"), rendered);
        });
    }
}

#[test]
fn the_binary_exits_1_with_spanned_diagnostics_and_never_panics() {
    let bin = env!("CARGO_BIN_EXE_dosa");
    for path in corpus() {
        let out = Command::new(bin)
            .arg("check")
            .arg(&path)
            .output()
            .expect("dosa runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}:\n{stderr}", path.display());
        assert!(
            stderr.contains("┌─") || stderr.contains("-->"),
            "{}:\n{stderr}",
            path.display()
        );
        assert!(
            !stderr.contains("panicked"),
            "{}:\n{stderr}",
            path.display()
        );
        assert!(
            out.stdout.is_empty(),
            "{}: printed to stdout",
            path.display()
        );
        // Reading the same file from standard input gives the same verdict.
        let text = std::fs::read(&path).unwrap();
        let mut child = Command::new(bin)
            .args(["check", "-"])
            .current_dir(path.parent().unwrap())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&text).unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "stdin {}:\n{stderr}",
            path.display()
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn fmt_refuses_files_that_do_not_parse() {
    let bin = env!("CARGO_BIN_EXE_dosa");
    for path in corpus() {
        let code = code_of(&path);
        if code != "syntax" && code != "lex" {
            continue;
        }
        let before = std::fs::read(&path).unwrap();
        let out = Command::new(bin).arg("fmt").arg(&path).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", path.display());
        assert!(String::from_utf8_lossy(&out.stderr).contains("┌─"));
        assert_eq!(
            std::fs::read(&path).unwrap(),
            before,
            "fmt wrote a file that does not parse"
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    let bin = env!("CARGO_BIN_EXE_dosa");
    let out = Command::new(bin)
        .args(["check", "tests/bad/does_not_exist.dosa"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(bin).args(["check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(bin)
        .args(["check", "--emit", "nonsense", "examples/bert.dosa"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn check_exit_codes_and_ir_output() {
    let bin = env!("CARGO_BIN_EXE_dosa");
    let out = Command::new(bin)
        .args(["check", "examples/bert.dosa", "examples/tutorial.dosa"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(bin)
        .args(["check", "--emit", "ir", "examples/bert.dosa"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let p: dosa::ir::Program =
        serde_json::from_slice(&out.stdout).expect("--emit ir prints the IR as JSON");
    assert_eq!(p.networks[0].name, "bert");
    // A clean file and a bad one: exit 1, the clean one still reported.
    let out = Command::new(bin)
        .args(["check", "examples/bert.dosa", "tests/bad/pe-square.dosa"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("examples/bert.dosa: ok"));
}

/// Truncations and byte-level corruptions of real inputs must produce diagnostics, not panics.
#[test]
fn truncated_and_corrupted_inputs_never_panic() {
    let mut inputs: Vec<(String, String)> = Vec::new();
    for dir in ["examples", "tests/bad"] {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if let Ok(t) = std::fs::read_to_string(&p) {
                inputs.push((p.display().to_string(), t));
            }
        }
    }
    inputs.sort();
    let mut rng = dosa::util::Rng::new(7);
    for (name, text) in &inputs {
        let cuts: Vec<usize> = (0..=text.len())
            .filter(|&i| text.is_char_boundary(i))
            .step_by(5)
            .collect();
        for cut in cuts {
            let t = &text[..cut];
            let o = check_text(name, t);
            if o.error_count() > 0 {
                assert!(
                    o.diagnostics.iter().all(|d| !d.labels.is_empty()),
                    "{name}[..{cut}]"
                );
            }
            let _ = o.render();
            let _ = format_source(name, t);
        }
        for _ in 0..40 {
            let mut bytes = text.clone().into_bytes();
            for _ in 0..1 + rng.below(4) {
                if bytes.is_empty() {
                    break;
                }
                let i = rng.below(bytes.len() as u64) as usize;
                match rng.below(3) {
                    0 => {
                        bytes[i] =
                            b"{}=,.*+/<\"#xX0123456789LKCPQRSNWIO- \n\\"[rng.below(38) as usize]
                    }
                    1 => {
                        bytes.remove(i);
                    }
                    _ => bytes.insert(i, bytes[rng.below(bytes.len() as u64) as usize]),
                }
            }
            let t = String::from_utf8_lossy(&bytes);
            let o = check_text(name, &t);
            let _ = o.render();
            if let Formatted::Ok(f) = format_source(name, &t) {
                // Whatever parses formats to something that parses to the same tree.
                assert_eq!(
                    dosa::syntax::parse_tree(&f),
                    dosa::syntax::parse_tree(&t),
                    "{name}: {t}"
                );
            }
        }
    }
}
