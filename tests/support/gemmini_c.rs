//! Building and running emitted Gemmini C against the real Gemmini software in
//! `shared/gemmini` (headers of gemmini-rocc-tests `dev` and `dosa`, Spike with Gemmini's
//! functional model), shared by the emitter and Spike tests.
//!
//! Without the bare-metal cross compiler (or without shared/), a test that needs it fails when
//! `CI` is set and is skipped with a note elsewhere: CI installs the compiler itself (.ci/run),
//! so a missing one there is a broken set-up, not a reason to pass.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const CC: &str = "riscv64-unknown-elf-gcc";

/// Which Gemmini software tree (and Spike extension) a program is built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tree {
    Dev,
    Dosa,
}

impl Tree {
    fn dir(self) -> &'static str {
        match self {
            Tree::Dev => "dev",
            Tree::Dosa => "dosa",
        }
    }

    /// run.sh's `--api` value.
    pub fn api(self) -> &'static str {
        match self {
            Tree::Dev => "upstream",
            Tree::Dosa => "dosa",
        }
    }
}

/// What is needed to build and run the programs.
pub struct Gemmini {
    /// `shared/gemmini`.
    pub root: PathBuf,
    /// The compiler command (with `--specs=picolibc.specs` when its headers need it).
    cc: Vec<String>,
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

fn works(cmd: &[String]) -> bool {
    use std::io::Write;
    let Ok(mut child) = Command::new(&cmd[0])
        .args(&cmd[1..])
        .args(["-E", "-x", "c", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    else {
        return false;
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(b"#include <stdint.h>\n");
    }
    child.wait().is_ok_and(|s| s.success())
}

/// The toolchain and shared/gemmini, or `None` (after a note) outside CI when either is missing;
/// in CI a missing piece fails the test.
pub fn gemmini() -> Option<Gemmini> {
    let missing = |what: String| -> Option<Gemmini> {
        assert!(
            !in_ci(),
            "{what}: CI must have it (.ci/run installs the cross compiler)"
        );
        eprintln!("note: {what}; skipping the Gemmini build/run check (it fails in CI)");
        None
    };
    let root = match dosa::util::shared_dir() {
        Some(s) if s.join("gemmini/run.sh").is_file() => s.join("gemmini"),
        _ => return missing("shared/gemmini not found (set DOSA_SHARED)".into()),
    };
    let plain = vec![CC.to_string()];
    let specs = vec![CC.to_string(), "--specs=picolibc.specs".to_string()];
    let cc = if works(&plain) {
        plain
    } else if works(&specs) {
        specs
    } else {
        return missing(format!(
            "no working {CC} (apt-get install gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf)"
        ));
    };
    Some(Gemmini { root, cc })
}

/// [`gemmini`] plus what Spike needs to start: it runs `dtc` to build its device tree.
pub fn spike() -> Option<Gemmini> {
    let g = gemmini()?;
    let dtc = Command::new("dtc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !dtc {
        assert!(
            !in_ci(),
            "no dtc: Spike needs it (.ci/run installs device-tree-compiler)"
        );
        eprintln!("note: no dtc (apt-get install device-tree-compiler); skipping the Spike run");
        return None;
    }
    Some(g)
}

impl Gemmini {
    /// Compile and link `c_file` for bare metal exactly as run.sh does (gemmini-rocc-tests'
    /// bareMetalC flags), plus errors for the mistakes a C compiler only warns about (a pointer
    /// of the wrong type, an integer for a pointer, an undeclared function). Returns the
    /// compiler's output on failure.
    pub fn build(&self, tree: Tree, c_file: &Path) -> Result<(), String> {
        let t = self.root.join("trees").join(tree.dir());
        let common = t.join("riscv-tests/benchmarks/common");
        let elf = std::env::temp_dir().join(format!(
            "dosa_elf_{}_{}",
            std::process::id(),
            c_file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        ));
        let mut cmd = Command::new(&self.cc[0]);
        cmd.args(&self.cc[1..]);
        cmd.args([
            "-DPREALLOCATE=1",
            "-DMULTITHREAD=1",
            "-mcmodel=medany",
            "-std=gnu99",
            "-O2",
            "-ffast-math",
            "-fno-common",
            "-fno-builtin-printf",
            "-fno-tree-loop-distribute-patterns",
            "-march=rv64gc",
            "-Wa,-march=rv64gc",
            "-Werror=incompatible-pointer-types",
            "-Werror=int-conversion",
            "-Werror=implicit-function-declaration",
        ]);
        let inc = |p: &Path| format!("-I{}", p.display());
        cmd.arg(inc(&t.join("riscv-tests")))
            .arg(inc(&t.join("riscv-tests/env")))
            .arg(inc(&t))
            .arg(inc(&common))
            .arg(inc(c_file.parent().unwrap_or(Path::new("."))));
        cmd.args([
            "-DID_STRING=",
            "-DPRINT_TILE=0",
            "-nostdlib",
            "-nostartfiles",
            "-static",
            "-DBAREMETAL=1",
        ]);
        cmd.arg("-T").arg(common.join("test.ld"));
        cmd.arg(c_file);
        let mut support: Vec<PathBuf> = std::fs::read_dir(&common)
            .map_err(|e| format!("{}: {e}", common.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "c" || x == "S"))
            .collect();
        support.sort();
        cmd.args(&support);
        cmd.args(["-lm", "-lgcc", "-o"]).arg(&elf);
        let out = cmd
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.cc[0]))?;
        let _ = std::fs::remove_file(&elf);
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Build and run an emitted folder on Spike with run.sh.
    pub fn run(&self, tree: Tree, dir: &Path) -> Output {
        Command::new("bash")
            .arg(self.root.join("run.sh"))
            .args(["--api", tree.api(), "--timeout", "120"])
            .arg(dir)
            .output()
            .expect("bash runs run.sh")
    }
}

/// The `mismatches=` of each `dosa verify` line, as `(layer, run, mismatches)`.
pub fn verify_lines(stdout: &str) -> Vec<(String, String, u64)> {
    stdout
        .lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("dosa verify ")?;
            let mut layer = None;
            let mut run = None;
            let mut bad = None;
            for w in rest.split_whitespace() {
                match w.split_once('=') {
                    Some(("layer", v)) => layer = Some(v.to_string()),
                    Some(("run", v)) => run = Some(v.to_string()),
                    Some(("mismatches", v)) => bad = v.parse().ok(),
                    _ => {}
                }
            }
            Some((layer?, run?, bad?))
        })
        .collect()
}

/// A fresh scratch folder for one test.
pub fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dosa_test_{tag}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}
