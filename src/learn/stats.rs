//! Accuracy figures for latency predictors: MAPE, median APE and Spearman rank correlation.
//!
//! Written here because no shared statistics module exists yet; percentages are plain numbers
//! (0.5 means 0.5%).

use serde::Serialize;

/// The three figures `dosa predict` reports for one predictor.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Accuracy {
    /// Mean absolute percentage error, in percent.
    pub mape: f64,
    /// Median absolute percentage error, in percent.
    pub median_ape: f64,
    /// Spearman rank correlation (ties get average ranks); what a search needs right.
    pub spearman: f64,
}

impl Accuracy {
    /// Figures of `pred` against `meas` (same length, `meas` > 0). Non-finite results become 0
    /// or 100% so that no NaN reaches a report.
    pub fn of(pred: &[f64], meas: &[f64]) -> Accuracy {
        Accuracy {
            mape: crate::util::finite_or(mape(pred, meas), 0.0),
            median_ape: crate::util::finite_or(median_ape(pred, meas), 0.0),
            spearman: crate::util::finite_or(spearman(pred, meas), 0.0),
        }
    }
}

fn apes(pred: &[f64], meas: &[f64]) -> Vec<f64> {
    pred.iter()
        .zip(meas)
        .map(|(&p, &m)| 100.0 * ((p - m) / m).abs())
        .collect()
}

/// Mean absolute percentage error in percent; 0 for no rows.
pub fn mape(pred: &[f64], meas: &[f64]) -> f64 {
    let a = apes(pred, meas);
    if a.is_empty() {
        return 0.0;
    }
    a.iter().sum::<f64>() / a.len() as f64
}

/// Median absolute percentage error in percent (mean of the middle two for even counts).
pub fn median_ape(pred: &[f64], meas: &[f64]) -> f64 {
    let mut a = apes(pred, meas);
    if a.is_empty() {
        return 0.0;
    }
    a.sort_by(f64::total_cmp);
    let n = a.len();
    if n % 2 == 1 {
        a[n / 2]
    } else {
        0.5 * (a[n / 2 - 1] + a[n / 2])
    }
}

/// Ranks starting at 1, ties sharing the average of the ranks they span.
pub fn average_ranks(x: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&a, &b| x[a].total_cmp(&x[b]).then(a.cmp(&b)));
    let mut ranks = vec![0.0; x.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i + 1;
        while j < idx.len() && x[idx[j]] == x[idx[i]] {
            j += 1;
        }
        // Positions i..j (0-based) share rank mean(i+1..=j).
        let r = (i + 1 + j) as f64 / 2.0;
        for &k in &idx[i..j] {
            ranks[k] = r;
        }
        i = j;
    }
    ranks
}

/// Pearson correlation; 0 when either side is constant.
pub fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len().min(y.len());
    if n < 2 {
        return 0.0;
    }
    let mx = x[..n].iter().sum::<f64>() / n as f64;
    let my = y[..n].iter().sum::<f64>() / n as f64;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for i in 0..n {
        let (dx, dy) = (x[i] - mx, y[i] - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx <= 0.0 || syy <= 0.0 {
        return 0.0;
    }
    sxy / (sxx * syy).sqrt()
}

/// Spearman rank correlation: Pearson of the average ranks.
pub fn spearman(x: &[f64], y: &[f64]) -> f64 {
    pearson(&average_ranks(x), &average_ranks(y))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_get_average_ranks() {
        assert_eq!(
            average_ranks(&[10.0, 20.0, 10.0, 5.0]),
            vec![2.5, 4.0, 2.5, 1.0]
        );
    }

    #[test]
    fn spearman_matches_hand_computation_with_ties() {
        // x ranks: 1, 2.5, 2.5, 4; y ranks: 1, 2, 3, 4.
        // Pearson of those: cov = 4.5/... computed by hand below.
        let rx = [1.0, 2.5, 2.5, 4.0];
        let ry = [1.0, 2.0, 3.0, 4.0];
        let mx = 2.5;
        let num: f64 = rx.iter().zip(&ry).map(|(a, b)| (a - mx) * (b - mx)).sum();
        let dx: f64 = rx.iter().map(|a| (a - mx) * (a - mx)).sum();
        let dy: f64 = ry.iter().map(|b| (b - mx) * (b - mx)).sum();
        let want = num / (dx * dy).sqrt();
        let got = spearman(&[1.0, 7.0, 7.0, 9.0], &[3.0, 4.0, 5.0, 6.0]);
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        assert!((want - 0.9486832980505138).abs() < 1e-12);
        // Monotone transforms do not change it; reversal negates it.
        let y = [3.0, 1.0, 4.0, 1.5, 9.0, 2.6];
        let x: Vec<f64> = y.iter().map(|v: &f64| v.ln() * 3.0 + 1.0).collect();
        assert!((spearman(&x, &y) - 1.0).abs() < 1e-12);
        let neg: Vec<f64> = y.iter().map(|v| -v).collect();
        assert!((spearman(&neg, &y) + 1.0).abs() < 1e-12);
    }

    #[test]
    fn percentage_errors() {
        let meas = [100.0, 200.0, 50.0];
        let pred = [110.0, 150.0, 50.0];
        // 10%, 25%, 0%
        assert!((mape(&pred, &meas) - 35.0 / 3.0).abs() < 1e-12);
        assert!((median_ape(&pred, &meas) - 10.0).abs() < 1e-12);
        assert!((median_ape(&pred[..2], &meas[..2]) - 17.5).abs() < 1e-12);
        let a = Accuracy::of(&[], &[]);
        assert_eq!((a.mape, a.median_ape, a.spearman), (0.0, 0.0, 0.0));
    }
}
