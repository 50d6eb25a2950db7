//! The objective of a suite search: one hardware for several networks, each with its own
//! mappings, judged by the weighted geometric mean of the networks' own objectives
//! (`prod_n f_n^(w_n / sum w)`, `f_n` e.g. network `n`'s EDP). It is the weighted product the
//! suite issue asks for, normalised so that a suite of one network has that network's value.
//! Each network counts by its weight whatever its size: 1 % off BERT's EDP is worth 1 % off
//! UNet's, where a sum of EDPs would be decided by the largest network alone.
//!
//! One home for the formula and its derivatives: the exact scoring
//! ([`crate::search::design::Scored::objective`]), the coordinate passes and the differentiable
//! cost ([`crate::model::relaxed`]) all ask this type.

use super::Objective;

/// Which network each layer of the suite's union belongs to, and the networks' weights.
#[derive(Clone, Debug, PartialEq)]
pub struct SuiteObjective {
    /// Per layer of the union, its network's index.
    pub network_of: Vec<usize>,
    /// Per network, its weight (at least 1).
    pub weights: Vec<f64>,
}

impl SuiteObjective {
    /// For networks of `sizes` layers each, laid out one after another, weighted by `weights`.
    pub fn new(sizes: &[usize], weights: &[u64]) -> SuiteObjective {
        SuiteObjective {
            network_of: sizes
                .iter()
                .enumerate()
                .flat_map(|(n, &k)| std::iter::repeat_n(n, k))
                .collect(),
            weights: weights.iter().map(|&w| w.max(1) as f64).collect(),
        }
    }

    /// Per network, its count-weighted `(cycles, uJ)`: `counts[i] * costs[i]` summed over its layers.
    pub fn totals(&self, counts: &[f64], costs: &[(f64, f64)]) -> Vec<(f64, f64)> {
        let mut t = vec![(0.0, 0.0); self.weights.len()];
        for ((&n, &w), c) in self.network_of.iter().zip(counts).zip(costs) {
            t[n].0 += w * c.0;
            t[n].1 += w * c.1;
        }
        t
    }

    /// The suite's value from the networks' totals.
    pub fn value(&self, o: Objective, totals: &[(f64, f64)]) -> f64 {
        self.ln_value(o, totals).0.exp()
    }

    /// `ln` of the value, and per network its derivatives with respect to the network's
    /// `(cycles, uJ)`: what the differentiable cost chains through each layer.
    pub fn ln_value(&self, o: Objective, totals: &[(f64, f64)]) -> (f64, Vec<(f64, f64)>) {
        let sum_w: f64 = self.weights.iter().sum();
        let mut v = 0.0;
        let mut d = Vec::with_capacity(totals.len());
        for (&(lat, en), &w) in totals.iter().zip(&self.weights) {
            let share = w / sum_w;
            let (lat, en) = (lat.max(1e-300), en.max(1e-300));
            v += share * o.of(lat, en).ln();
            d.push(match o {
                Objective::Edp => (share / lat, share / en),
                Objective::Energy => (0.0, share / en),
                Objective::Latency => (share / lat, 0.0),
            });
        }
        (v, d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_network_is_its_own_objective() {
        let s = SuiteObjective::new(&[2], &[3]);
        let t = s.totals(&[1.0, 2.0], &[(10.0, 1.0), (5.0, 2.0)]);
        assert_eq!(t, vec![(20.0, 5.0)]);
        assert!((s.value(Objective::Edp, &t) - 100.0).abs() < 1e-9);
    }

    #[test]
    fn weights_are_exponents_and_derivatives_match() {
        let s = SuiteObjective::new(&[1, 1], &[1, 3]);
        let t = vec![(4.0, 2.0), (100.0, 10.0)];
        let v = s.value(Objective::Edp, &t);
        let want = (8.0f64.powf(0.25)) * (1000.0f64.powf(0.75));
        assert!((v - want).abs() < 1e-9 * want, "{v} vs {want}");
        let (lv, d) = s.ln_value(Objective::Edp, &t);
        let h = 1e-6;
        let mut t2 = t.clone();
        t2[1].0 += h;
        let fd = (s.ln_value(Objective::Edp, &t2).0 - lv) / h;
        assert!((fd - d[1].0).abs() < 1e-6, "{fd} vs {}", d[1].0);
    }
}
