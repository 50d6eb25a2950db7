//! Small shared helpers: atomic file output, output checks and finite-number guards.

use std::path::Path;

/// Write `bytes` to `path` atomically (a synced temp file beside it, then a rename; see
/// [`crate::emit::output`]), so a failing or killed command never leaves a partial file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    crate::emit::output::commit_file(path, bytes)
}

/// Replace NaN or infinity by `fallback` so that no non-finite number reaches an output.
pub fn finite_or(x: f64, fallback: f64) -> f64 {
    if x.is_finite() {
        x
    } else {
        fallback
    }
}

/// Where the reference data (`shared/`) lives: `$DOSA_SHARED`, else beside the checkout
/// (`../shared`, as CI lays it out), else two levels up (worktrees under a parent folder).
pub fn shared_dir() -> Option<std::path::PathBuf> {
    if let Ok(p) = std::env::var("DOSA_SHARED") {
        let p = std::path::PathBuf::from(p);
        if p.is_dir() {
            return Some(p);
        }
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    [manifest.join("../shared"), manifest.join("../../shared")]
        .into_iter()
        .find(|p| p.join("data").is_dir())
}

/// The seeded generator behind every `--seed`: rand_xoshiro's SplitMix64, whose stream is fixed
/// by its 64-bit state on every platform and thread count. The draws built on it (uniform,
/// below, normal, fork) are this project's own, so a seed's results stay what they were.
#[derive(Clone, Debug)]
pub struct Rng(rand_xoshiro::SplitMix64);

impl Rng {
    /// A generator whose whole stream is fixed by `seed`.
    pub fn new(seed: u64) -> Rng {
        use rand_xoshiro::rand_core::SeedableRng;
        Rng(rand_xoshiro::SplitMix64::seed_from_u64(
            seed ^ 0x5DEE_CE66_D1CE_4E5B,
        ))
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        use rand_xoshiro::rand_core::Rng as _;
        self.0.next_u64()
    }
    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// Standard normal (Box-Muller), for weight initialisation and noise.
    pub fn normal(&mut self) -> f64 {
        let u = self.next_f64().max(1e-300);
        let v = self.next_f64();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
    /// An independent stream, e.g. one per search start, so results do not depend on threads.
    pub fn fork(&mut self, stream: u64) -> Rng {
        Rng::new(self.next_u64() ^ stream.wrapping_mul(0xA24B_AED4_963E_E407))
    }
}

/// The largest input file any command reads (`.dosa`, CSV, model JSON): 64 MiB. Larger inputs
/// (or endless ones such as `/dev/zero`) are refused instead of filling memory.
pub const MAX_INPUT_BYTES: u64 = 64 << 20;

/// Read everything from `r`, at most [`MAX_INPUT_BYTES`]; more is an `InvalidData` error.
pub fn read_capped(r: impl std::io::Read) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    r.take(MAX_INPUT_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "larger than {} MiB, the most dosa reads",
                MAX_INPUT_BYTES >> 20
            ),
        ));
    }
    Ok(bytes)
}

/// Read the file at `path`, at most [`MAX_INPUT_BYTES`] (see [`read_capped`]).
pub fn read_file_capped(path: &Path) -> std::io::Result<Vec<u8>> {
    read_capped(std::fs::File::open(path)?)
}

/// Check before any work that files can be written into folder `dir` (created if missing, as
/// the commands do): the nearest existing ancestor must be a folder we can create a file in.
pub fn check_writable_dir(dir: &Path) -> Result<(), String> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let mut probe = dir;
    loop {
        match std::fs::metadata(probe) {
            Ok(m) if m.is_dir() => break,
            Ok(_) => {
                return Err(format!(
                    "cannot write into {}: {} is not a folder",
                    dir.display(),
                    probe.display()
                ))
            }
            Err(_) => match probe.parent() {
                Some(p) if !p.as_os_str().is_empty() => probe = p,
                _ => {
                    probe = Path::new(".");
                    break;
                }
            },
        }
    }
    // Ask the system rather than creating a probe file, which a kill would leave behind.
    #[cfg(unix)]
    let writable = rustix::fs::access(
        probe,
        rustix::fs::Access::WRITE_OK | rustix::fs::Access::EXEC_OK,
    )
    .map_err(std::io::Error::from);
    #[cfg(not(unix))]
    let writable = match std::fs::metadata(probe) {
        Ok(m) if m.permissions().readonly() => {
            Err(std::io::Error::from(std::io::ErrorKind::PermissionDenied))
        }
        Ok(_) => Ok(()),
        Err(e) => Err(e),
    };
    writable.map_err(|e| {
        format!(
            "cannot write into {}: {}",
            dir.display(),
            e.to_string().split(" (os error").next().unwrap_or_default()
        )
    })
}

/// Check before any work that the file `path` can be written (atomically, beside it): it is not
/// a folder and its folder exists and is writable.
pub fn check_writable_file(path: &Path) -> Result<(), String> {
    if path.is_dir() {
        return Err(format!("cannot write {}: it is a folder", path.display()));
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return Err(format!(
            "cannot write {}: no folder {}",
            path.display(),
            dir.display()
        ));
    }
    check_writable_dir(dir).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::Rng;

    /// The stream of seed 0 as it was when the generator was written by hand (SplitMix64 over
    /// `seed ^ 0x5DEE_CE66_D1CE_4E5B`): every seeded result, snapshot and shipped model depends
    /// on it staying the same.
    #[test]
    fn seed_zero_stream_is_pinned() {
        let mut r = Rng::new(0);
        let got: Vec<u64> = (0..3).map(|_| r.next_u64()).collect();
        assert_eq!(
            got,
            [
                10_786_525_211_432_574_597,
                6_740_194_258_388_256_784,
                11_207_529_336_503_023_463
            ]
        );
    }
}
