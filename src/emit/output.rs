//! Transactional output: every file a command writes appears at once or not at all.
//!
//! A folder output (`search -o DIR`, `emit ... -o DIR`, `--plot DIR`) is built in a temp folder
//! beside `DIR` (`.DIR.dosa-tmp.PID.XXXXXX`), every file and folder is `fsync`ed, and then the temp
//! folder takes `DIR`'s place in one step: a plain rename when `DIR` is missing or empty, else an
//! atomic exchange (Linux `renameat2(RENAME_EXCHANGE)`) after which the old set, now in the temp
//! folder, is removed. So whenever the process stops, `DIR` holds the complete old set or the
//! complete new set. (Where the exchange is not supported, `DIR` is first renamed aside: a kill in
//! the window between the two renames leaves no `DIR`, and both sets in hidden folders beside it.)
//!
//! A file output (`import -o`, `fit -o`, `fmt`) is a temp file beside it, `fsync`ed, renamed over
//! it. `fmt` with several files writes all the temp files first and renames them afterwards, in
//! argument order, so a full disk changes no file and a kill leaves each file old or new.
//!
//! Temps are removed on any error, on SIGINT, SIGTERM and SIGHUP (a handler thread removes them
//! and then lets the signal end the process as it would have), and, after a SIGKILL or a crash, by
//! the next command that writes beside them (temps whose process is gone are swept first).
//!
//! Test hook: `DOSA_FAULT=enospc@N` makes the N-th write step (0-based; each file written counts
//! one, the final rename one) fail as if the disk were full, and `DOSA_FAULT=kill@N` sends the
//! process SIGKILL there, so that nothing is cleaned up. Nothing else reads it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// The marker in every temp name, used to recognise stale temps.
const TMP_TAG: &str = ".dosa-tmp.";

/// Temp paths of this process that still exist: the signal handler removes them.
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Lock the live-temp list; a poisoned lock (a panic elsewhere) still gives the list.
fn live() -> MutexGuard<'static, Vec<PathBuf>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Install the SIGINT/SIGTERM/SIGHUP clean-up once, the first time a command writes. Before that
/// the signals keep their default action, as there is nothing to clean.
fn install_signal_cleanup() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        #[cfg(unix)]
        {
            use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
            if let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
            {
                let _ = std::thread::Builder::new()
                    .name("dosa-signals".into())
                    .spawn(move || {
                        if let Some(sig) = signals.forever().next() {
                            // Hold the lock to the end: the writer cannot start a new temp.
                            let guard = live();
                            for p in guard.iter() {
                                remove_path(p);
                            }
                            let _ = signal_hook::low_level::emulate_default_handler(sig);
                            std::process::exit(128 + sig);
                        }
                    });
            }
        }
    });
}

fn remove_path(p: &Path) {
    if p.is_dir() {
        let _ = std::fs::remove_dir_all(p);
    } else {
        let _ = std::fs::remove_file(p);
    }
}

/// One temp path of this process, removed when dropped unless it was committed.
struct Live(PathBuf);

impl Live {
    /// Track `p`, with the list already locked (so no signal falls between creating and tracking).
    fn track(list: &mut Vec<PathBuf>, p: PathBuf) -> Live {
        list.push(p.clone());
        Live(p)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let mut guard = live();
        remove_path(&self.0);
        guard.retain(|p| p != &self.0);
    }
}

/// Counts write steps for the `DOSA_FAULT` test hook.
static STEP: AtomicU64 = AtomicU64::new(0);

/// One write step: the point where `DOSA_FAULT` may inject a full disk or a crash.
fn step() -> std::io::Result<()> {
    let n = STEP.fetch_add(1, Ordering::Relaxed);
    let Ok(spec) = std::env::var("DOSA_FAULT") else {
        return Ok(());
    };
    let Some((kind, at)) = spec.split_once('@') else {
        return Ok(());
    };
    if at.parse::<u64>().ok() != Some(n) {
        return Ok(());
    }
    match kind {
        "enospc" => Err(std::io::Error::new(
            std::io::ErrorKind::StorageFull,
            "No space left on device (DOSA_FAULT)",
        )),
        "kill" => {
            #[cfg(unix)]
            let _ = signal_hook::low_level::raise(signal_hook::consts::SIGKILL);
            std::process::abort()
        }
        _ => Ok(()),
    }
}

/// The folder `path` is in (`.` for a bare name).
fn parent_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into())
}

/// `fsync` a folder so that a rename in it survives a power loss (best effort: not every file
/// system supports it).
fn sync_dir(dir: &Path) {
    if let Ok(f) = std::fs::File::open(dir) {
        let _ = f.sync_all();
    }
}

/// Remove temps beside `name` in `dir` left by a process that no longer runs (a SIGKILL or a
/// crash). Only on systems with `/proc`; elsewhere they stay, hidden, until removed by hand.
fn sweep_stale(dir: &Path, name: &str) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let prefix = format!(".{name}{TMP_TAG}");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = n.strip_prefix(&prefix) else {
            continue;
        };
        let pid = rest.split('.').next().unwrap_or_default();
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            remove_path(&e.path());
        }
    }
}

fn tmp_prefix(name: &str) -> String {
    format!(".{name}{TMP_TAG}{}.", std::process::id())
}

/// Write `bytes` to a new file at `path` and `fsync` it.
fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    step()?;
    let mut f = std::fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Swap the folders `a` and `b` atomically, where the system can.
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{renameat_with, RenameFlags, CWD};
        renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE).map_err(std::io::Error::from)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (a, b);
        Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
    }
}

/// Check before any work that `dir` can be a command's output folder: it is missing, empty or
/// holds only entries `ours` recognises as this command's earlier output (so replacing it loses
/// nothing the user made), and its nearest existing ancestor is a writable folder.
pub fn check_dir(dir: &Path, ours: &dyn Fn(&str) -> bool) -> Result<(), String> {
    if dir.exists() && !dir.is_dir() {
        return Err(format!("cannot write into {}: not a folder", dir.display()));
    }
    // The temp folder is made beside `dir`, so it is `dir`'s parent that must be writable.
    crate::util::check_writable_dir(parent_of(dir))?;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    let mut foreign: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !ours(n))
        .collect();
    foreign.sort();
    match foreign.first() {
        None => Ok(()),
        Some(f) => Err(format!(
            "cannot write into {}: it holds `{f}`{}, which this command does not write; \
             give a new or empty folder (the output replaces the folder as a whole)",
            dir.display(),
            if foreign.len() > 1 {
                format!(" and {} more", foreign.len() - 1)
            } else {
                String::new()
            }
        )),
    }
}

/// Replace the folder `dir` by exactly `files` (paths relative to `dir`, `/`-separated), all at
/// once (see the module documentation). On error nothing changed and no temp is left.
pub fn commit_dir<P: AsRef<str>, B: AsRef<[u8]>>(
    dir: &Path,
    files: &[(P, B)],
) -> std::io::Result<()> {
    install_signal_cleanup();
    // Through a symlink, replace the folder it points to and keep the link.
    let target = match std::fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(dir)?,
        _ => dir.to_path_buf(),
    };
    let parent = parent_of(&target).to_path_buf();
    let name = file_name(&target);
    std::fs::create_dir_all(&parent)?;
    sweep_stale(&parent, &name);
    let tmp = {
        let mut g = live();
        let t = tempfile::Builder::new()
            .prefix(&tmp_prefix(&name))
            .tempdir_in(&parent)?
            .keep();
        Live::track(&mut g, t)
    };
    let mut dirs = vec![tmp.0.clone()];
    for (rel, bytes) in files {
        let path = tmp.0.join(rel.as_ref());
        let _g = live();
        if let Some(p) = path.parent() {
            if !p.is_dir() {
                std::fs::create_dir_all(p)?;
                dirs.push(p.to_path_buf());
            }
        }
        write_synced(&path, bytes.as_ref())?;
    }
    for d in dirs.iter().rev() {
        sync_dir(d);
    }
    step()?;
    // Declared after `tmp`: on an early return the lock is released before `tmp` is removed.
    let mut g = live();
    match std::fs::rename(&tmp.0, &target) {
        // `target` was missing or empty: the temp is now the target.
        Ok(()) => {
            g.retain(|p| p != &tmp.0);
            drop(g);
            std::mem::forget(tmp);
        }
        Err(_) if target.is_dir() => {
            if exchange(&tmp.0, &target).is_ok() {
                drop(g);
                // `tmp` now holds the old set; dropping it removes it.
                drop(tmp);
            } else {
                // No atomic exchange here: move the old set aside, then the new one in.
                let aside = parent.join(format!("{}old", tmp_prefix(&name)));
                std::fs::rename(&target, &aside)?;
                g.push(aside.clone());
                if let Err(e) = std::fs::rename(&tmp.0, &target) {
                    let _ = std::fs::rename(&aside, &target);
                    g.retain(|p| p != &aside);
                    return Err(e);
                }
                g.retain(|p| p != &tmp.0);
                std::mem::forget(tmp);
                remove_path(&aside);
                g.retain(|p| p != &aside);
            }
        }
        Err(e) => return Err(e),
    }
    sync_dir(&parent);
    Ok(())
}

/// Replace each file of `files` (full paths) with its bytes: all temp files are written and
/// synced first, then renamed in order (see the module documentation). On a write error no file
/// changed and no temp is left.
pub fn commit_files<B: AsRef<[u8]>>(files: &[(PathBuf, B)]) -> std::io::Result<()> {
    install_signal_cleanup();
    let mut temps: Vec<(Live, &Path)> = Vec::new();
    for (path, bytes) in files {
        let parent = parent_of(path);
        let name = file_name(path);
        sweep_stale(parent, &name);
        let tmp = {
            let mut g = live();
            let t = tempfile::Builder::new()
                .prefix(&tmp_prefix(&name))
                .tempfile_in(parent)?;
            let (_, tpath) = t.keep().map_err(|e| e.error)?;
            Live::track(&mut g, tpath)
        };
        {
            // Declared after `tmp`, so an error drops the lock before `tmp` removes the file.
            let _g = live();
            // `File::create` truncates the empty file tempfile made.
            write_synced(&tmp.0, bytes.as_ref())?;
        }
        temps.push((tmp, path));
    }
    step()?;
    for (tmp, path) in temps {
        let mut guard = live();
        std::fs::rename(&tmp.0, path)?;
        guard.retain(|p| p != &tmp.0);
        drop(guard);
        std::mem::forget(tmp);
        sync_dir(parent_of(path));
    }
    Ok(())
}

/// Replace the file `path` with `bytes` at once (see [`commit_files`]).
pub fn commit_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    commit_files(&[(path.to_path_buf(), bytes)])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let rel = p.strip_prefix(dir).unwrap().display().to_string();
                    out.push((rel, std::fs::read(&p).unwrap()));
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn a_folder_is_replaced_whole_and_no_temp_is_left() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("out");
        commit_dir(&dir, &[("a.txt", "1"), ("sub/b.txt", "2")]).unwrap();
        assert_eq!(tree(&dir).len(), 2);
        // The second set has no `sub/`: nothing of the first set may survive.
        commit_dir(&dir, &[("a.txt", "3"), ("c.txt", "4")]).unwrap();
        assert_eq!(
            tree(&dir),
            vec![
                ("a.txt".into(), b"3".to_vec()),
                ("c.txt".into(), b"4".to_vec())
            ]
        );
        let names: Vec<_> = std::fs::read_dir(base.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "a temp is left: {names:?}");
        // A path the set cannot hold fails and changes nothing.
        assert!(commit_dir(&dir, &[("x", "1"), ("x/y", "2")]).is_err());
        assert_eq!(tree(&dir).len(), 2);
        let names: Vec<_> = std::fs::read_dir(base.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "a temp is left: {names:?}");
    }

    #[test]
    fn files_are_replaced_and_stale_temps_of_dead_processes_swept() {
        let base = tempfile::tempdir().unwrap();
        let f = base.path().join("f.dosa");
        // A temp of a process that no longer exists (pid 0 is never a user process).
        let stale = base.path().join(format!(".f.dosa{TMP_TAG}4294967295.abc"));
        std::fs::write(&stale, "x").unwrap();
        commit_file(&f, b"new").unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"new");
        if Path::new("/proc/self").exists() {
            assert!(!stale.exists());
        }
    }

    #[test]
    fn only_folders_of_earlier_output_are_replaced() {
        let base = tempfile::tempdir().unwrap();
        let ours = |n: &str| n == "report.json";
        let dir = base.path().join("out");
        assert!(check_dir(&dir, &ours).is_ok());
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("report.json"), "{}").unwrap();
        assert!(check_dir(&dir, &ours).is_ok());
        std::fs::write(dir.join("notes.txt"), "mine").unwrap();
        let e = check_dir(&dir, &ours).unwrap_err();
        assert!(e.contains("`notes.txt`"), "{e}");
    }
}
