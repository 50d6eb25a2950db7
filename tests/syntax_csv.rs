//! `dosa import csv`: every shared network imports, checks and reproduces every layer and count;
//! a network that is not in the repo does too; bad CSV is reported by line and writes nothing.

use dosa::ir::{LayerKind, Program};
use dosa::syntax::load_path;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One CSV row read independently of the importer: name, the 12 numbers.
fn rows(text: &str) -> Vec<(String, [u64; 12])> {
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let mut v = [0u64; 12];
            for (i, x) in v.iter_mut().enumerate() {
                *x = f[i + 1].trim().parse().unwrap();
            }
            (f[0].to_string(), v)
        })
        .collect()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dosa-syntax-csv-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn import(csv: &Path, out: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dosa"))
        .args(["import", "csv"])
        .arg(csv)
        .arg("-o")
        .arg(out)
        .output()
        .expect("dosa runs")
}

/// Every row is a layer with the same dims, strides, dilations and count, in order.
fn assert_reproduces(p: &Program, net: &str, csv_text: &str) {
    assert_eq!(p.networks.len(), 1);
    let n = &p.networks[0];
    assert_eq!(n.name, net);
    let rows = rows(csv_text);
    assert_eq!(n.layers.len(), rows.len(), "{net}");
    for (l, (name, v)) in n.layers.iter().zip(&rows) {
        assert_eq!(&l.name, name);
        assert_eq!(
            l.dims,
            [v[0], v[1], v[2], v[3], v[4], v[5], v[6]],
            "{net}.{name}"
        );
        assert_eq!(
            [l.wstride, l.hstride, l.wdilation, l.hdilation, l.count],
            [v[7], v[8], v[9], v[10], v[11]]
        );
        let matmul_shape =
            v[0] == 1 && v[1] == 1 && v[3] == 1 && v[6] == 1 && v[7..11].iter().all(|&x| x == 1);
        let expect_mm = name.starts_with("mm") && matmul_shape;
        assert_eq!(l.kind == LayerKind::Matmul, expect_mm, "{net}.{name}");
    }
}

#[test]
fn every_shared_network_round_trips_through_import_csv() {
    let Some(shared) = dosa::util::shared_dir() else {
        println!("note: shared data not found (set DOSA_SHARED); skipping");
        return;
    };
    let dir = scratch("shared");
    let mut seen = 0;
    let mut entries: Vec<PathBuf> = std::fs::read_dir(shared.join("data/workloads"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    entries.sort();
    for csv in entries {
        let net = csv.file_stem().unwrap().to_string_lossy().into_owned();
        let out = dir.join(format!("{net}.dosa"));
        let r = import(&csv, &out);
        assert_eq!(
            r.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&r.stderr)
        );
        let check = Command::new(env!("CARGO_BIN_EXE_dosa"))
            .arg("check")
            .arg(&out)
            .output()
            .unwrap();
        assert_eq!(
            check.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&check.stderr)
        );
        let p = load_path(&out).unwrap();
        assert_reproduces(&p, &net, &std::fs::read_to_string(&csv).unwrap());
        // The committed example is exactly what the importer writes.
        let committed = Path::new("examples").join(format!("{net}.dosa"));
        if committed.exists() {
            assert_eq!(
                std::fs::read_to_string(&committed).unwrap(),
                std::fs::read_to_string(&out).unwrap(),
                "{} is stale: regenerate it with `dosa import csv`",
                committed.display()
            );
        }
        seen += 1;
    }
    assert!(seen >= 5, "only {seen} shared networks");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_network_not_in_the_repo_imports_and_checks() {
    // Awkward on purpose: names that need quoting (dots, leading digits, a keyword, a comma and
    // a quote inside a quoted CSV field), batch > 1, unequal strides, dilation 2, a `mm` row that
    // is not matmul-shaped, and a blank line.
    let text = "name,R,S,P,Q,C,K,N,Wstride,Hstride,Wdilation,Hdilation,count\n\
                stem.conv,3,3,150,150,3,32,4,2,1,1,1,1\n\
                1_dw,3,3,75,75,32,32,1,1,1,2,2,3\n\
                model,1,1,1,1,1280,1000,1,1,1,1,1,1\n\
                \"odd, \"\"name\"\"\",1,1,7,7,320,1280,1,1,1,1,1,1\n\
                \n\
                mm_q,1,1,64,1,512,512,1,1,1,1,1,12\n\
                mm_conv,3,3,8,8,16,16,1,1,1,1,1,1\n";
    let dir = scratch("unseen");
    let csv = dir.join("mobile-ish.csv");
    std::fs::write(&csv, text).unwrap();
    let out = dir.join("mobile.dosa");
    let r = import(&csv, &out);
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let p = load_path(&out).unwrap_or_else(|e| panic!("{e}"));
    let n = &p.networks[0];
    assert_eq!(n.name, "mobile-ish");
    let names: Vec<&str> = n.layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "stem.conv",
            "1_dw",
            "model",
            "odd, \"name\"",
            "mm_q",
            "mm_conv"
        ]
    );
    assert_eq!(n.layers[0].dims, [3, 3, 150, 150, 3, 32, 4]);
    assert_eq!((n.layers[0].wstride, n.layers[0].hstride), (2, 1));
    assert_eq!((n.layers[1].wdilation, n.layers[1].count), (2, 3));
    assert_eq!(n.layers[4].kind, LayerKind::Matmul);
    assert_eq!(n.layers[5].kind, LayerKind::Conv);
    // Without -o the same text goes to stdout.
    let r = Command::new(env!("CARGO_BIN_EXE_dosa"))
        .args(["import", "csv"])
        .arg(&csv)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(r.stdout).unwrap(),
        std::fs::read_to_string(&out).unwrap()
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_csv_reports_lines_exits_1_and_writes_nothing() {
    let dir = scratch("bad");
    let cases = [
        ("empty.csv", "", "error[csv]: the file is empty"),
        ("header.csv", "name,R,S\nx,1,1\n", "error[csv]: the header"),
        (
            "rows.csv",
            "name,R,S,P,Q,C,K,N,Wstride,Hstride,Wdilation,Hdilation,count\n\
             a,1,1,1,1,1,1,1,1,1,1,1,1\n\
             b,1,1,1,1,x,1,1,1,1,1,1,1\n\
             c,1,1,1\n\
             a,1,1,1,1,1,1,1,1,1,1,1,1\n\
             d,1,1,1,1,0,1,1,1,1,1,1,1\n\
             e,1,1,1,1,99999999999999999999,1,1,1,1,1,1,1\n\
             f,1,1,1,1,4294967296,4294967296,2,1,1,1,1,1\n",
            "error[csv]: column `C`",
        ),
    ];
    for (file, text, expect) in cases {
        let csv = dir.join(file);
        std::fs::write(&csv, text).unwrap();
        let out = dir.join(format!("{file}.dosa"));
        let r = import(&csv, &out);
        let stderr = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(1), "{file}: {stderr}");
        assert!(stderr.contains(expect), "{file}: {stderr}");
        // Errors are codespan diagnostics pointing at their line.
        if file != "rows.csv" {
            assert!(stderr.contains("┌─ "), "{stderr}");
            assert!(stderr.contains(&format!("{file}:1:")), "{stderr}");
        }
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!out.exists(), "{file}: wrote a file despite errors");
        if file == "rows.csv" {
            for line in [
                "rows.csv:3:",
                "rows.csv:4:",
                "rows.csv:5:",
                "rows.csv:6:",
                "rows.csv:7:",
                "rows.csv:8:",
            ] {
                assert!(stderr.contains(line), "missing {line} in {stderr}");
            }
        }
    }
    // Not UTF-8.
    let csv = dir.join("latin1.csv");
    std::fs::write(&csv, b"name,R\n\xe9,1\n").unwrap();
    let r = import(&csv, &dir.join("latin1.dosa"));
    assert_eq!(r.status.code(), Some(1));
    // A missing input is a usage error.
    let r = import(&dir.join("nope.csv"), &dir.join("nope.dosa"));
    assert_eq!(r.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).ok();
}
