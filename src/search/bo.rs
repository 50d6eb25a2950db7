//! Bayesian optimisation over the hardware with the random mapper inside: the BO baseline of the
//! reference DOSA paper, so that the one-loop search is compared with the method it replaced.
//!
//! The hardware (PE side, usable scratchpad KiB, usable accumulator KiB) is searched in log space,
//! normalised to the unit cube of [`baseline::hardware_box`] (the random baseline's space). Each
//! hardware point is scored as the random baseline scores one ([`baseline::sample_on_hardware`]:
//! M random legal mappings per layer, the best per layer). A few random points start; then each
//! iteration fits a small Gaussian process (Matérn-5/2 kernel, Cholesky, hyperparameters by the
//! log marginal likelihood over a grid) to the standardised log objective and scores the point
//! of highest expected improvement among seeded random candidates.
//!
//! Iterations are sequential; the starting points run in parallel and every point samples its
//! layers in parallel, each on its own seeded stream, so the result does not depend on the thread
//! count. A hand-rolled GP keeps the dependency tree small (CI builds from scratch on 2 cores).

use super::baseline::{self, best_and_curve, hardware_at, sample_on_hardware, unit_of, Sampled};
use super::design::{Exact, Scored};
use crate::ir::{HwBounds, Layer, Objective};
use crate::util::Rng;
use rayon::prelude::*;

/// Hardware points `dosa baseline --kind bo` and `--compare` spend the budget on: more points and
/// fewer mappings per point than the random baseline's 10, since BO's value is in choosing them.
pub const HW_POINTS: u32 = 30;
/// Random hardware points before the first GP fit.
pub const INIT_POINTS: u32 = 5;
/// Uniform candidates over the cube per iteration, on which expected improvement is maximised.
const CANDIDATES: usize = 2048;
/// Extra candidates near the incumbent, so the maximiser can refine as well as explore.
const LOCAL_CANDIDATES: usize = 512;
/// Spread (in unit-cube coordinates) of the local candidates.
const LOCAL_SD: f64 = 0.05;
/// Exploration margin of expected improvement, in standardised units.
const XI: f64 = 0.01;
/// Added to the kernel's diagonal so that Cholesky succeeds on near-duplicate points.
const JITTER: f64 = 1e-9;
/// Length-scale grid (unit-cube units) searched by the marginal likelihood.
const LENGTH_SCALES: [f64; 8] = [0.05, 0.1, 0.15, 0.25, 0.4, 0.6, 1.0, 1.6];
/// Noise-variance grid (standardised units): the random mapper makes every score noisy.
const NOISES: [f64; 5] = [1e-6, 1e-4, 1e-2, 0.05, 0.2];
/// Stream salts: BO's hardware draws and its candidates are independent of the random baseline's.
const POINT_SALT: u64 = 0xB0B0_5EED_0000_0001;
const CANDIDATE_SALT: u64 = 0xB0B0_5EED_0000_0002;

/// Matérn-5/2 correlation at squared distance `r2` with length scale `ls` (unit signal variance):
/// twice differentiable, rough enough for a cost surface with rounding steps.
pub fn matern52(r2: f64, ls: f64) -> f64 {
    let r = r2.max(0.0).sqrt() / ls;
    let s = 5f64.sqrt() * r;
    (1.0 + s + 5.0 * r * r / 3.0) * (-s).exp()
}

fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// In-place lower Cholesky factor of the row-major `n x n` matrix `a`; `false` if not positive
/// definite.
fn cholesky(a: &mut [f64], n: usize) -> bool {
    for j in 0..n {
        let mut d = a[j * n + j];
        for k in 0..j {
            d -= a[j * n + k] * a[j * n + k];
        }
        if !(d > 0.0 && d.is_finite()) {
            return false;
        }
        let d = d.sqrt();
        a[j * n + j] = d;
        for i in j + 1..n {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = s / d;
        }
        for i in 0..j {
            a[i * n + j] = 0.0;
        }
    }
    true
}

/// Solve `L z = b` for lower-triangular `L`.
fn solve_lower(l: &[f64], n: usize, b: &[f64]) -> Vec<f64> {
    let mut z = b.to_vec();
    for i in 0..n {
        let mut s = z[i];
        for k in 0..i {
            s -= l[i * n + k] * z[k];
        }
        z[i] = s / l[i * n + i];
    }
    z
}

/// Solve `L^T z = b` for lower-triangular `L`.
fn solve_upper_t(l: &[f64], n: usize, b: &[f64]) -> Vec<f64> {
    let mut z = b.to_vec();
    for i in (0..n).rev() {
        let mut s = z[i];
        for k in i + 1..n {
            s -= l[k * n + i] * z[k];
        }
        z[i] = s / l[i * n + i];
    }
    z
}

/// A Gaussian process posterior with zero prior mean and unit signal variance: fit it to
/// standardised targets.
#[derive(Clone, Debug)]
pub struct Gp {
    x: Vec<Vec<f64>>,
    chol: Vec<f64>,
    alpha: Vec<f64>,
    /// Chosen length scale (unit-cube units).
    pub length_scale: f64,
    /// Chosen noise variance (standardised units).
    pub noise: f64,
    /// Log marginal likelihood of the targets under these hyperparameters.
    pub log_likelihood: f64,
}

impl Gp {
    /// The posterior for fixed hyperparameters; `None` if the kernel matrix is not positive
    /// definite or the inputs are empty or inconsistent.
    pub fn fit_with(x: &[Vec<f64>], y: &[f64], length_scale: f64, noise: f64) -> Option<Gp> {
        let n = x.len();
        let valid = length_scale > 0.0 && noise >= 0.0;
        if n == 0 || y.len() != n || !valid {
            return None;
        }
        let mut k = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..=i {
                let v = matern52(sq_dist(&x[i], &x[j]), length_scale);
                k[i * n + j] = v;
                k[j * n + i] = v;
            }
            k[i * n + i] += noise + JITTER;
        }
        if !cholesky(&mut k, n) {
            return None;
        }
        let alpha = solve_upper_t(&k, n, &solve_lower(&k, n, y));
        let fit: f64 = y.iter().zip(&alpha).map(|(a, b)| a * b).sum();
        let logdet: f64 = (0..n).map(|i| k[i * n + i].ln()).sum();
        let lml = -0.5 * fit - logdet - 0.5 * n as f64 * (2.0 * std::f64::consts::PI).ln();
        lml.is_finite().then(|| Gp {
            x: x.to_vec(),
            chol: k,
            alpha,
            length_scale,
            noise,
            log_likelihood: lml,
        })
    }

    /// The posterior whose hyperparameters maximise the log marginal likelihood over a small grid
    /// (the first on ties, so the choice is deterministic).
    pub fn fit(x: &[Vec<f64>], y: &[f64]) -> Option<Gp> {
        let mut best: Option<Gp> = None;
        for &ls in &LENGTH_SCALES {
            for &noise in &NOISES {
                if let Some(g) = Gp::fit_with(x, y, ls, noise) {
                    if best
                        .as_ref()
                        .is_none_or(|b| g.log_likelihood > b.log_likelihood)
                    {
                        best = Some(g);
                    }
                }
            }
        }
        best
    }

    /// Posterior mean and variance of the latent function at `x` (without the noise).
    pub fn predict(&self, x: &[f64]) -> (f64, f64) {
        let n = self.x.len();
        let ks: Vec<f64> = self
            .x
            .iter()
            .map(|xi| matern52(sq_dist(xi, x), self.length_scale))
            .collect();
        let mean = ks.iter().zip(&self.alpha).map(|(a, b)| a * b).sum();
        let v = solve_lower(&self.chol, n, &ks);
        let var = (1.0 - v.iter().map(|a| a * a).sum::<f64>()).max(0.0);
        (mean, var)
    }
}

/// Complementary error function (Numerical Recipes' Chebyshev fit, relative error < 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

fn norm_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

fn norm_pdf(z: f64) -> f64 {
    (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// Expected improvement below `best` (minimisation) of a Gaussian with `mean` and standard
/// deviation `sd`, with exploration margin `xi`: the acquisition BO maximises. Never negative.
pub fn expected_improvement(mean: f64, sd: f64, best: f64, xi: f64) -> f64 {
    let gain = best - mean - xi;
    let spread = sd > 1e-12;
    if !spread {
        return gain.max(0.0);
    }
    let z = gain / sd;
    (gain * norm_cdf(z) + sd * norm_pdf(z)).max(0.0)
}

/// The candidate of highest expected improvement under `gp` (the first on ties), from uniform
/// points of the cube and points near the incumbent `best_x`.
fn next_point(gp: Option<&Gp>, best_x: &[f64], y_best: f64, rng: &mut Rng) -> Vec<f64> {
    let dim = best_x.len();
    let mut cands: Vec<Vec<f64>> = Vec::with_capacity(CANDIDATES + LOCAL_CANDIDATES);
    for _ in 0..CANDIDATES {
        cands.push((0..dim).map(|_| rng.next_f64()).collect());
    }
    for _ in 0..LOCAL_CANDIDATES {
        cands.push(
            best_x
                .iter()
                .map(|&v| (v + LOCAL_SD * rng.normal()).clamp(0.0, 1.0))
                .collect(),
        );
    }
    let Some(gp) = gp else {
        return cands.swap_remove(0);
    };
    let ei: Vec<f64> = cands
        .par_iter()
        .map(|c| {
            let (m, v) = gp.predict(c);
            expected_improvement(m, v.sqrt(), y_best, XI)
        })
        .collect();
    let mut pick = 0;
    for (i, &e) in ei.iter().enumerate() {
        if e > ei[pick] {
            pick = i;
        }
    }
    cands.swap_remove(pick)
}

/// Bayesian optimisation: `hw_points` hardware points (the first [`INIT_POINTS`] random, then
/// each of highest expected improvement), `map_samples` random mappings per layer on each.
/// Returns the best design, the evaluation count (`hw_points * map_samples`) and the curve, in
/// the shape of [`baseline::random_search`].
pub fn bo_search(
    model: &dyn Exact,
    layers: &[Layer],
    bounds: &HwBounds,
    objective: Objective,
    hw_points: u32,
    map_samples: u32,
    seed: u64,
) -> Sampled {
    if model.fixed().is_some() {
        // Nothing to optimise over: every point is the one chip, so BO is the random mapper.
        return baseline::random_search(
            model,
            layers,
            bounds,
            objective,
            hw_points,
            map_samples,
            seed,
        );
    }
    let arch = model.arch();
    let total = hw_points.max(1);
    let init = INIT_POINTS.clamp(1, total);
    let point_rng = |h: u32| Rng::new(seed ^ POINT_SALT).fork(h as u64);
    // (unit-cube point, design, curve values) per hardware point, in order.
    let mut points: Vec<(Vec<f64>, Scored, Vec<f64>)> = (0..init)
        .into_par_iter()
        .map(|h| {
            let mut rng = point_rng(h);
            let hw = baseline::random_hardware(arch, bounds, &mut rng);
            let (s, v) = sample_on_hardware(model, layers, &hw, objective, map_samples, &mut rng);
            (unit_of(arch, bounds, &hw).to_vec(), s, v)
        })
        .collect();
    for h in init..total {
        let x: Vec<Vec<f64>> = points.iter().map(|p| p.0.clone()).collect();
        let raw: Vec<f64> = points
            .iter()
            .map(|p| p.1.objective(objective).max(1e-300).ln())
            .collect();
        let n = raw.len() as f64;
        let mean = raw.iter().sum::<f64>() / n;
        let sd = (raw.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt();
        let sd = if sd > 1e-12 { sd } else { 1.0 };
        let y: Vec<f64> = raw.iter().map(|v| (v - mean) / sd).collect();
        let mut ib = 0;
        for (i, &v) in y.iter().enumerate() {
            if v < y[ib] {
                ib = i;
            }
        }
        let gp = Gp::fit(&x, &y);
        let mut crng = Rng::new(seed ^ CANDIDATE_SALT).fork(h as u64);
        let u = next_point(gp.as_ref(), &x[ib], y[ib], &mut crng);
        let hw = hardware_at(arch, bounds, [u[0], u[1], u[2]]);
        let mut rng = point_rng(h);
        let (s, v) = sample_on_hardware(model, layers, &hw, objective, map_samples, &mut rng);
        points.push((unit_of(arch, bounds, &hw).to_vec(), s, v));
    }
    best_and_curve(
        points.into_iter().map(|(_, s, v)| (s, v)).collect(),
        objective,
    )
    .expect("at least one hardware point")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> (Vec<Vec<f64>>, Vec<f64>) {
        let x: Vec<Vec<f64>> = [0.1, 0.3, 0.5, 0.7, 0.9]
            .iter()
            .map(|&a| vec![a, 1.0 - a, 0.5])
            .collect();
        let y = vec![1.0, -0.5, 0.2, -1.2, 0.8];
        (x, y)
    }

    #[test]
    fn posterior_mean_interpolates_with_tiny_noise() {
        let (x, y) = toy();
        let gp = Gp::fit_with(&x, &y, 0.3, 1e-8).unwrap();
        for (xi, yi) in x.iter().zip(&y) {
            let (m, v) = gp.predict(xi);
            assert!(
                (m - yi).abs() < 1e-5,
                "mean {m} at a training point of {yi}"
            );
            assert!(v < 1e-5, "variance {v} at a training point");
        }
        // Away from the data the variance grows back toward the prior's.
        let (_, v) = gp.predict(&[0.0, 0.0, 0.0]);
        assert!(v > 0.1);
    }

    #[test]
    fn grid_fit_picks_the_most_likely_hyperparameters() {
        let (x, y) = toy();
        let gp = Gp::fit(&x, &y).unwrap();
        for &ls in &LENGTH_SCALES {
            for &noise in &NOISES {
                let g = Gp::fit_with(&x, &y, ls, noise).unwrap();
                assert!(g.log_likelihood <= gp.log_likelihood);
            }
        }
    }

    #[test]
    fn expected_improvement_is_nonnegative_and_prefers_lower_means() {
        for &best in &[-2.0, 0.0, 1.5] {
            for &sd in &[0.0, 1e-3, 0.1, 1.0, 3.0] {
                let mut prev = f64::INFINITY;
                for i in 0..81 {
                    let mean = -4.0 + 0.1 * i as f64;
                    let e = expected_improvement(mean, sd, best, XI);
                    assert!(e >= 0.0, "EI {e} < 0");
                    assert!(e <= prev + 1e-12, "EI rose with the mean at {mean}");
                    prev = e;
                }
                if sd > 0.0 {
                    let lo = expected_improvement(best - 1.0, sd, best, XI);
                    let hi = expected_improvement(best + 1.0, sd, best, XI);
                    assert!(lo > hi, "lower mean, same sd: {lo} vs {hi}");
                }
            }
        }
        // Exact values: a standard normal at the incumbent gains 1/sqrt(2 pi) without margin.
        let e = expected_improvement(0.0, 1.0, 0.0, 0.0);
        assert!((e - 0.398_942_280_4).abs() < 1e-6);
    }

    #[test]
    fn erfc_matches_known_values() {
        for (x, want) in [
            (0.0, 1.0),
            (0.5, 0.479_500_122_2),
            (1.0, 0.157_299_207_1),
            (-1.0, 1.842_700_792_9),
            (2.5, 0.000_406_952_0),
        ] {
            let got = erfc(x);
            assert!(
                (got - want).abs() <= 1.2e-7 * want.abs().max(1e-3),
                "erfc({x}) = {got}"
            );
        }
    }
}
