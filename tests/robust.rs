//! Issue 12: the binary on hostile or odd input and output. A closed standard output, numbers
//! that overflow the model, bounds no design meets, byte-order marks and CR line endings,
//! oversized inputs, unwritable `-o`, DOSA's 1-D convolution rows, and a corpus of
//! odd-but-valid files (`tests/odd/`).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_dosa");

fn dosa(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs")
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dosa-robust-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Run with standard output a pipe whose reader goes away: after `read` bytes (0: before the
/// command writes anything). Returns the exit status and stderr.
fn with_closed_stdout(args: &[&str], read: usize) -> (std::process::ExitStatus, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut out = child.stdout.take().unwrap();
    if read > 0 {
        let mut buf = vec![0u8; read];
        let _ = out.read_exact(&mut buf);
    }
    drop(out);
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (child.wait().unwrap(), err)
}

fn assert_quiet_on_closed_pipe(args: &[&str]) {
    for read in [0, 1] {
        let (status, err) = with_closed_stdout(args, read);
        assert!(!err.contains("panicked"), "dosa {args:?}: {err}");
        assert!(!err.contains("Broken pipe"), "dosa {args:?}: {err}");
        assert_ne!(status.code(), Some(101), "dosa {args:?}: {err}");
        // 0, or the usual SIGPIPE death (141 in a shell); never an error exit.
        assert!(
            status.success() || status.code().is_none(),
            "dosa {args:?}: {status}: {err}"
        );
    }
}

const QUICK: [&str; 6] = ["--starts", "1", "--steps", "40", "--round-every", "20"];

#[test]
fn every_printing_command_ends_quietly_on_a_closed_stdout() {
    let dir = scratch("pipe");
    let csv = dir.join("net.csv");
    std::fs::write(
        &csv,
        "name,R,S,P,Q,C,K,N,Wstride,Hstride,Wdilation,Hdilation,count\na,3,3,8,8,4,4,1,1,1,1,1,1\n",
    )
    .unwrap();
    let tiny = ["examples/tutorial.dosa", "--network", "tiny"];
    let mut search = vec!["search"];
    search.extend(tiny);
    search.extend(QUICK);
    let mut search_json = search.clone();
    search_json.push("--json");
    let mut baseline = vec!["baseline", "--kind", "gemmini-default"];
    baseline.extend(tiny);
    let cases: Vec<Vec<&str>> = vec![
        vec!["check", "examples/resnet50.dosa"],
        vec!["check", "--emit", "ir", "examples/resnet50.dosa"],
        vec!["eval", "examples/tutorial.dosa"],
        vec!["eval", "--json", "examples/tutorial.dosa"],
        vec!["fmt", "--stdout", "examples/resnet50.dosa"],
        vec!["tile", "gemmini", "examples/resnet50.dosa"],
        vec!["import", "csv", csv.to_str().unwrap()],
        search,
        search_json,
        baseline,
        vec!["--help"],
    ];
    for args in &cases {
        assert_quiet_on_closed_pipe(args);
    }
    // With -o the files are still written.
    let out = dir.join("out");
    let mut args = vec!["search"];
    args.extend(tiny);
    args.extend(QUICK);
    args.extend(["-o", out.to_str().unwrap()]);
    assert_quiet_on_closed_pipe(&args);
    for f in ["result.dosa", "report.json", "curve.csv", "curve.png"] {
        assert!(out.join(f).is_file(), "{f} not written");
    }
    let dosa_out = dir.join("net.dosa");
    assert_quiet_on_closed_pipe(&[
        "import",
        "csv",
        csv.to_str().unwrap(),
        "-o",
        dosa_out.to_str().unwrap(),
    ]);
    assert!(dosa_out.is_file());
    std::fs::remove_dir_all(&dir).ok();
}

const ARCH: &str = "arch a {
    pe 16x16
    mac_energy MAC pJ
    level Registers { keeps W word 8 bits capacity 1 B each instances per_pe energy sram }
    level Acc { keeps O word 32 bits capacity 4 KiB each instances per_column energy sram spatial C }
    level SP { keeps W, I word 8 bits capacity 256 KiB double_buffered energy sram spatial K }
    level DRAM { keeps W, I, O word 8 bits energy dram BW backing }
}
network n { conv c R=3 S=3 P=8 Q=8 C=16 K=16 }
";

const MAP: &str = "map c \"L3[WIO] K16 C16 P8 Q8 S3 R3 - L2[WI] N1 - L1[O] N1 - L0[W] N1\"\n";

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn energies_that_overflow_are_errors_never_inf_null_or_zero() {
    let dir = scratch("finite");
    // Too large to multiply: rejected by check, at the number.
    let huge = ARCH.replace("MAC", "1e308").replace("BW", "");
    let f = write(&dir, "huge.dosa", &huge);
    let o = dosa(&["check", &f]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(
        e.contains("error[overflow]") && e.contains("1e308 pJ"),
        "{e}"
    );
    assert!(e.contains("huge.dosa:3:16"), "{e}");
    let f = write(&dir, "huge_map.dosa", &format!("{huge}{MAP}"));
    for cmd in [vec!["eval", &f], vec!["eval", "--json", &f], {
        let mut v = vec!["search", &f];
        v.extend(QUICK);
        v
    }] {
        let o = dosa(&cmd);
        assert_eq!(o.status.code(), Some(1), "{cmd:?}: {}", stderr(&o));
        assert!(o.stdout.is_empty(), "{cmd:?} printed a report");
    }
    // Accepted numbers whose products still overflow (a bandwidth of 1e-300 words per cycle):
    // the model's guard names the layer.
    let slow = ARCH
        .replace("MAC", "1e90")
        .replace("BW", "bandwidth 1e-300");
    let f = write(&dir, "slow.dosa", &format!("{slow}{MAP}"));
    for json in [false, true] {
        let mut args = vec!["eval", f.as_str()];
        if json {
            args.push("--json");
        }
        let o = dosa(&args);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{e}");
        assert!(
            e.contains("layer `n.c`") && e.contains("not a finite number"),
            "{e}"
        );
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(!out.contains("inf") && !out.contains("null"), "{out}");
    }
    let mut args = vec!["search", f.as_str()];
    args.extend(QUICK);
    let o = dosa(&args);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(
        e.contains("`n.c`") && e.contains("not a finite number"),
        "{e}"
    );
    assert!(!String::from_utf8_lossy(&o.stdout).contains("0.0000e0"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bounds_no_design_meets_are_errors_before_the_search() {
    let dir = scratch("bounds");
    let net = "network n { conv c R=3 S=3 P=8 Q=8 C=16 K=16 }\n";
    for (line, code_at) in [
        ("max_pe 1", "max_pe 1"),
        ("max_scratchpad 1 B", "max_scratchpad 1 B"),
        ("max_scratchpad 1 KiB", "max_scratchpad 1 KiB"),
        ("max_accumulator 100 B", "max_accumulator 100 B"),
    ] {
        let f = write(&dir, "b.dosa", &format!("{net}search {{\n    {line}\n}}\n"));
        let o = dosa(&["check", &f]);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{line}: {e}");
        assert!(e.contains("error[unmeetable-bound]"), "{e}");
        assert!(e.contains(&format!("`{code_at}` cannot be met")), "{e}");
        assert!(e.contains("b.dosa:3:"), "{e}");
        let mut args = vec!["search", f.as_str()];
        args.extend(QUICK);
        assert_eq!(dosa(&args).status.code(), Some(1));
    }
    // The least meetable values are accepted: pe_min 2, one KiB doubled (the built-in
    // scratchpad is double-buffered), one 64-byte row per column of a 2-wide array, doubled.
    let f = write(
        &dir,
        "least.dosa",
        &format!("{net}search {{\n    max_pe 2\n    max_scratchpad 2 KiB\n    max_accumulator 256 B\n}}\n"),
    );
    let o = dosa(&["check", &f]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let mut args = vec!["search", f.as_str(), "--json"];
    args.extend(QUICK);
    let o = dosa(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["hardware"]["pe_dim"], 2);
    assert!(r["hardware"]["scratchpad_kib"].as_f64().unwrap() <= 2.0);
    // The same on the command line: a usage error naming the flag, before any work.
    let f = write(&dir, "plain.dosa", net);
    for (flag, value) in [
        ("--pe-max", "1"),
        ("--sp-max-kib", "0.5"),
        ("--acc-max-kib", "0.1"),
    ] {
        let mut args = vec!["search", f.as_str(), flag, value];
        args.extend(QUICK);
        let o = dosa(&args);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{flag}: {e}");
        assert!(e.contains(&format!("{flag} {value} cannot be met")), "{e}");
        let o = dosa(&["baseline", "--kind", "random", &f, flag, value]);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn round_every_zero_is_rejected_alike_in_a_file_and_on_the_command_line() {
    let dir = scratch("round");
    let net = "network n { conv c R=3 S=3 P=8 Q=8 C=16 K=16 }\n";
    let f = write(
        &dir,
        "r.dosa",
        &format!("{net}search {{ round_every 0 }}\n"),
    );
    let file = stderr(&dosa(&["check", &f]));
    let f = write(&dir, "ok.dosa", net);
    let o = dosa(&["search", &f, "--round-every", "0"]);
    assert_eq!(o.status.code(), Some(2));
    let flag = stderr(&o);
    let msg = "`round_every` must be at least 1";
    assert!(file.contains(msg), "{file}");
    assert!(flag.contains(msg), "{flag}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn an_unwritable_output_is_refused_before_the_work() {
    let dir = scratch("unwritable");
    let blocker = dir.join("file");
    std::fs::write(&blocker, "x").unwrap();
    // A folder under a regular file can never be created.
    let bad = blocker.join("out");
    let bad = bad.to_str().unwrap();
    let csv = write(
        &dir,
        "n.csv",
        "name,R,S,P,Q,C,K,N,Wstride,Hstride,Wdilation,Hdilation,count\na,1,1,1,1,1,1,1,1,1,1,1,1\n",
    );
    let cases: Vec<Vec<&str>> = vec![
        // A search that would take long: refused at once.
        vec![
            "search",
            "examples/resnet50.dosa",
            "--steps",
            "100000",
            "-o",
            bad,
        ],
        vec![
            "baseline",
            "--kind",
            "random",
            "examples/resnet50.dosa",
            "-o",
            bad,
        ],
        vec!["import", "csv", &csv, "-o", bad],
        vec!["emit", "timeloop", "examples/tutorial.dosa", "-o", bad],
    ];
    for args in cases {
        let t = std::time::Instant::now();
        let o = dosa(&args);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {e}");
        assert!(e.contains("cannot write"), "{e}");
        assert!(t.elapsed().as_secs() < 20, "{args:?} did the work first");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn inputs_are_capped_at_64_mib() {
    let zero = Path::new("/dev/zero");
    if !zero.exists() {
        return;
    }
    for args in [
        vec!["check", "/dev/zero"],
        vec!["fmt", "--stdout", "/dev/zero"],
        vec!["import", "csv", "/dev/zero"],
        vec!["eval", "/dev/zero"],
    ] {
        let o = dosa(&args);
        let e = stderr(&o);
        assert!(matches!(o.status.code(), Some(1 | 2)), "{args:?}: {e}");
        assert!(
            e.contains("64 MiB") || e.contains("no such file"),
            "{args:?}: {e}"
        );
    }
    let o = dosa(&["check", "/dev/zero"]);
    assert!(stderr(&o).contains("64 MiB"), "{}", stderr(&o));
    // An import of it is caught the same way.
    let dir = scratch("cap");
    let f = write(&dir, "i.dosa", "import \"/dev/zero\"\n");
    let o = dosa(&["check", &f]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("64 MiB"), "{}", stderr(&o));
    // Just over the cap, from a real file.
    let big = dir.join("big.dosa");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(dosa::util::MAX_INPUT_BYTES + 1).unwrap();
    let o = dosa(&["check", big.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("64 MiB"), "{}", stderr(&o));
    std::fs::remove_dir_all(&dir).ok();
}

const HEADER: &str = "name,R,S,P,Q,C,K,N,Wstride,Hstride,Wdilation,Hdilation,count";

#[test]
fn csv_errors_are_diagnostics_with_right_lines_for_every_line_ending() {
    let dir = scratch("csv-lines");
    let rows = [
        HEADER,
        "a,1,1,1,1,1,1,1,1,1,1,1,1",
        "b,1,1,1,1,x,1,1,1,1,1,1,1",
    ];
    for (name, ending, bom) in [
        ("lf", "\n", ""),
        ("crlf", "\r\n", ""),
        ("cr", "\r", ""),
        ("bom", "\r\n", "\u{FEFF}"),
    ] {
        let text = format!("{bom}{}{ending}", rows.join(ending));
        let f = write(&dir, &format!("{name}.csv"), &text);
        let o = dosa(&["import", "csv", &f]);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{name}: {e}");
        assert!(e.contains("error[csv]: column `C`"), "{name}: {e}");
        assert!(e.contains(&format!("{name}.csv:3:11")), "{name}: {e}");
        // Without the bad row it imports, BOM and all.
        let text = format!("{bom}{}{ending}", rows[..2].join(ending));
        let f = write(&dir, &format!("{name}_ok.csv"), &text);
        let o = dosa(&["import", "csv", &f]);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", stderr(&o));
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn dosa_1d_convolutions_import_with_their_unobservable_stride_as_1() {
    let dir = scratch("conv1d");
    // DOSA's workload files write Wstride=0 when the output is one wide.
    let f = write(
        &dir,
        "c1d.csv",
        &format!("{HEADER}\nconv1d,3,1,1,100,16,32,1,0,2,1,0,1\n"),
    );
    let o = dosa(&["import", "csv", &f]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{e}");
    assert!(e.contains("note: column `Wstride` is 0"), "{e}");
    assert!(e.contains("note: column `Hdilation` is 0"), "{e}");
    let out = String::from_utf8(o.stdout).unwrap();
    let p = dosa::syntax::load_text("c1d.dosa", &out).unwrap();
    let l = &p.networks[0].layers[0];
    assert_eq!(
        (l.wstride, l.hstride, l.wdilation, l.hdilation),
        (1, 2, 1, 1)
    );
    // A zero stride or dilation that matters is still an error.
    let f = write(
        &dir,
        "bad.csv",
        &format!("{HEADER}\nconv1d,3,1,4,100,16,32,1,0,1,0,1,1\n"),
    );
    let o = dosa(&["import", "csv", &f]);
    assert_eq!(o.status.code(), Some(1));
    for col in ["Wstride", "Wdilation"] {
        let want = format!("column `{col}` must be at least 1");
        assert!(stderr(&o).contains(&want), "{}", stderr(&o));
    }
    std::fs::remove_dir_all(&dir).ok();
}

fn odd_corpus() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir("tests/odd")
        .expect("tests/odd exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "dosa"))
        .collect();
    v.sort();
    v
}

#[test]
fn odd_but_valid_inputs_are_accepted() {
    let files = odd_corpus();
    assert!(files.len() >= 5, "{files:?}");
    let mut programs = Vec::new();
    for f in &files {
        let o = dosa(&["check", f.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(0), "{}: {}", f.display(), stderr(&o));
        programs.push((f, dosa::syntax::load_path(f).unwrap()));
        // fmt reads them too, and its output is a fixpoint that loads the same.
        let text = std::fs::read(f).unwrap();
        let dosa::syntax::Formatted::Ok(once) = dosa::syntax::format_bytes("x.dosa", text.clone())
        else {
            panic!("{} does not format", f.display());
        };
        let dosa::syntax::Formatted::Ok(twice) = dosa::syntax::format_source("x.dosa", &once)
        else {
            panic!()
        };
        assert_eq!(once, twice, "{}", f.display());
    }
    // The line-ending variants of one program are the same program.
    let same: Vec<_> = programs
        .iter()
        .filter(|(f, _)| f.to_string_lossy().contains("endings"))
        .map(|(_, p)| p)
        .collect();
    assert!(same.len() >= 3);
    assert!(same.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn errors_in_cr_and_crlf_files_are_on_their_own_lines() {
    let text = "network n {\n    conv a R=3\n    conv b R=0\n}\n";
    for (name, ending) in [("lf", "\n"), ("crlf", "\r\n"), ("cr", "\r")] {
        for bom in ["", "\u{FEFF}"] {
            let t = format!("{bom}{}", text.replace('\n', ending));
            let o = dosa::syntax::check_text("t.dosa", &t);
            let r = o.render();
            assert!(
                r.contains("t.dosa:3:14"),
                "{name} bom={}: {r}",
                !bom.is_empty()
            );
            assert!(r.contains("3 │     conv b R=0\n"), "{name}: {r}");
            assert!(!r.contains('\r'), "{name}: {r}");
        }
    }
}
