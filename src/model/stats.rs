//! Error statistics of a predictor against ground truth: absolute percentage errors, their mean,
//! median and 90th percentile, and Spearman's rank correlation. Shared by `dosa validate` and the
//! learned latency predictor, so both report the same figures the same way.

use serde::{Deserialize, Serialize};

/// Summary of how well `pred` follows `truth`; percentages as plain numbers (0.5 means 0.5%).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorStats {
    pub mape: f64,
    pub median_ape: f64,
    pub p90_ape: f64,
    pub spearman: f64,
}

/// Absolute percentage error of one prediction; 0 when both are 0, and a large finite number when
/// only the truth is 0 (so that no NaN or infinity reaches a report).
pub fn ape(pred: f64, truth: f64) -> f64 {
    if truth == 0.0 {
        return if pred == 0.0 { 0.0 } else { 1e9 };
    }
    crate::util::finite_or(((pred - truth) / truth).abs() * 100.0, 1e9)
}

/// Mean of the values (0 for none).
pub fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        0.0
    } else {
        xs.iter().sum::<f64>() / xs.len() as f64
    }
}

/// The `q`-th percentile (0..=100) with linear interpolation between order statistics (NumPy's
/// default), 0 for no values.
pub fn percentile(xs: &[f64], q: f64) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let mut v: Vec<f64> = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let pos = (q.clamp(0.0, 100.0) / 100.0) * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

/// Median (50th percentile).
pub fn median(xs: &[f64]) -> f64 {
    percentile(xs, 50.0)
}

/// Ranks 1..=n with ties given their average rank.
pub fn ranks(xs: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..xs.len()).collect();
    idx.sort_by(|&a, &b| xs[a].total_cmp(&xs[b]));
    let mut r = vec![0.0; xs.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && xs[idx[j + 1]] == xs[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            r[k] = avg;
        }
        i = j + 1;
    }
    r
}

/// Pearson correlation (0 when either side is constant or there are fewer than 2 points).
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    if n < 2 {
        return 0.0;
    }
    let (ma, mb) = (mean(&a[..n]), mean(&b[..n]));
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for i in 0..n {
        let (da, db) = (a[i] - ma, b[i] - mb);
        sab += da * db;
        saa += da * da;
        sbb += db * db;
    }
    if saa == 0.0 || sbb == 0.0 {
        return 0.0;
    }
    crate::util::finite_or(sab / (saa * sbb).sqrt(), 0.0)
}

/// Spearman's rank correlation: Pearson on average ranks (handles ties).
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    pearson(&ranks(a), &ranks(b))
}

/// All four statistics of `pred` against `truth` (paired by index).
pub fn error_stats(pred: &[f64], truth: &[f64]) -> ErrorStats {
    let apes: Vec<f64> = pred.iter().zip(truth).map(|(&p, &t)| ape(p, t)).collect();
    ErrorStats {
        mape: mean(&apes),
        median_ape: median(&apes),
        p90_ape: percentile(&apes, 90.0),
        spearman: spearman(pred, truth),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_like_numpy() {
        let xs = [4.0, 1.0, 3.0, 2.0];
        assert_eq!(median(&xs), 2.5);
        assert!((percentile(&xs, 90.0) - 3.7).abs() < 1e-12);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }

    #[test]
    fn spearman_handles_ties_and_order() {
        assert!((spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]) - 1.0).abs() < 1e-12);
        assert!((spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        assert_eq!(ranks(&[5.0, 1.0, 5.0]), vec![2.5, 1.0, 2.5]);
        // Monotone but non-linear: still a perfect rank correlation.
        assert!((spearman(&[1.0, 2.0, 3.0, 4.0], &[1.0, 8.0, 27.0, 64.0]) - 1.0).abs() < 1e-12);
        assert_eq!(spearman(&[1.0, 1.0], &[1.0, 2.0]), 0.0);
    }

    #[test]
    fn ape_is_finite() {
        assert_eq!(ape(1.1, 1.0), 10.000000000000009);
        assert_eq!(ape(0.0, 0.0), 0.0);
        assert!(ape(1.0, 0.0).is_finite());
        let s = error_stats(&[1.0, 2.0], &[1.0, 4.0]);
        assert_eq!(s.mape, 25.0);
    }
}
