//! Rounding: continuous tile factors back to a legal integer mapping (MODEL.md section 8, step 4).
//!
//! Per dim, from the innermost level outward, each factor becomes the divisor of what remains of
//! the dim that is nearest in log space (and within its spatial cap); the backing level takes the
//! rest. The result therefore always multiplies out to the layer and respects the architecture.

use super::legal::spatial_cap;
use crate::ir::{Arch, Dim, Layer, LevelMapping, Mapping};

/// Continuous factors, innermost level first, as the search holds them between steps.
#[derive(Clone, Debug, PartialEq)]
pub struct Relaxed {
    pub temporal: Vec<[f64; 7]>,
    pub spatial: Vec<[f64; 7]>,
}

impl Relaxed {
    /// The continuous point a legal mapping sits at.
    pub fn from_mapping(m: &Mapping) -> Relaxed {
        Relaxed {
            temporal: m
                .levels
                .iter()
                .map(|l| l.temporal.map(|f| f as f64))
                .collect(),
            spatial: m
                .levels
                .iter()
                .map(|l| l.spatial.map(|f| f as f64))
                .collect(),
        }
    }
}

/// Divisors of `n` in increasing order.
pub fn divisors(n: u64) -> Vec<u64> {
    let mut small = Vec::new();
    let mut large = Vec::new();
    let mut i = 1u64;
    while i * i <= n {
        if n % i == 0 {
            small.push(i);
            if i * i != n {
                large.push(n / i);
            }
        }
        i += 1;
    }
    small.extend(large.into_iter().rev());
    small
}

/// How a continuous factor becomes a divisor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rounding {
    /// The divisor nearest in log space (MODEL.md's rule).
    Nearest,
    /// The largest divisor not above the factor: tiles never grow, so bounds the relaxed point
    /// met still hold after rounding.
    Down,
    /// The nearest whole factor, divisor or not; the backing level counts the tiles, the last
    /// one partial ([`crate::model::pieces`]): the natural rounding when a dim has few divisors.
    Ceil,
}

/// The largest divisor of `n` no larger than `min(target, cap)` (at least 1).
pub fn divisor_below(n: u64, target: f64, cap: u64) -> u64 {
    let t = if target.is_finite() {
        target * (1.0 + 1e-9)
    } else {
        1.0
    };
    divisors(n)
        .into_iter()
        .filter(|&d| d <= cap.max(1) && d as f64 <= t)
        .max()
        .unwrap_or(1)
}

/// The divisor of `n` no larger than `cap` nearest to `target` in log space (ties to the smaller).
pub fn nearest_divisor(n: u64, target: f64, cap: u64) -> u64 {
    let t = if target.is_finite() && target > 0.0 {
        target.ln()
    } else {
        0.0
    };
    divisors(n)
        .into_iter()
        .filter(|&d| d <= cap.max(1))
        .min_by(|&a, &b| {
            let da = ((a as f64).ln() - t).abs();
            let db = ((b as f64).ln() - t).abs();
            da.partial_cmp(&db).unwrap_or(std::cmp::Ordering::Equal)
        })
        .unwrap_or(1)
}

/// Round `x` to a legal mapping of `layer`; loop orders are taken from `orders` (one per level,
/// outermost first, as in [`LevelMapping::order`]).
pub fn round(arch: &Arch, layer: &Layer, x: &Relaxed, orders: &[Vec<Dim>], pe_max: u64) -> Mapping {
    round_with(arch, layer, x, orders, pe_max, Rounding::Nearest)
}

/// [`round`] with a choice of [`Rounding`].
pub fn round_with(
    arch: &Arch,
    layer: &Layer,
    x: &Relaxed,
    orders: &[Vec<Dim>],
    pe_max: u64,
    mode: Rounding,
) -> Mapping {
    let pick = |n: u64, t: f64, cap: u64| match mode {
        Rounding::Nearest => nearest_divisor(n, t, cap),
        Rounding::Down => divisor_below(n, t, cap),
        Rounding::Ceil => {
            let t = if t.is_finite() { t.round() } else { 1.0 };
            (t.max(1.0) as u64).min(cap.max(1)).min(n.max(1))
        }
    };
    // Ceil mode: what is left to cover, rounded up (a whole divisor leaves an exact rest).
    let next = |rest: u64, f: u64| match mode {
        Rounding::Ceil => rest.div_ceil(f.max(1)),
        _ => rest / f.max(1),
    };
    let nl = arch.levels.len();
    let mut levels: Vec<LevelMapping> = arch
        .levels
        .iter()
        .enumerate()
        .map(|(li, l)| {
            let mut lm = LevelMapping::unit(l.keeps);
            if let Some(o) = orders.get(li) {
                lm.order = o.clone();
            }
            lm
        })
        .collect();
    for d in Dim::ALL {
        let mut rest = layer.dim(d);
        for (li, level) in arch.levels.iter().enumerate() {
            if level.is_backing {
                continue;
            }
            if level.allows_spatial(d) {
                let cap = spatial_cap(arch, li, d, pe_max);
                let f = pick(rest, x.spatial[li][d.index()], cap);
                levels[li].spatial[d.index()] = f;
                rest = next(rest, f);
            }
            if level.allows_temporal(d) {
                let f = pick(rest, x.temporal[li][d.index()], u64::MAX);
                levels[li].temporal[d.index()] = f;
                rest = next(rest, f);
            }
        }
        let back = arch
            .levels
            .iter()
            .rposition(|l| l.is_backing)
            .unwrap_or(nl - 1);
        levels[back].temporal[d.index()] *= rest;
    }
    for lm in &mut levels {
        lm.normalize_order();
    }
    let mut m = Mapping::new(levels);
    if mode == Rounding::Ceil {
        crate::model::pieces::normalize_cover(layer, &mut m);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::gemmini_arch;
    use crate::passes::legal::check;
    use proptest::prelude::*;

    #[test]
    fn divisors_are_sorted_and_complete() {
        assert_eq!(divisors(12), vec![1, 2, 3, 4, 6, 12]);
        assert_eq!(divisors(1), vec![1]);
        assert_eq!(divisors(49), vec![1, 7, 49]);
    }

    #[test]
    fn nearest_divisor_is_log_nearest_and_capped() {
        assert_eq!(nearest_divisor(112, 15.0, u64::MAX), 16);
        assert_eq!(nearest_divisor(112, 15.0, 8), 8);
        assert_eq!(nearest_divisor(7, 0.2, u64::MAX), 1);
        assert_eq!(nearest_divisor(7, f64::NAN, u64::MAX), 1);
    }

    proptest! {
        #[test]
        fn rounding_always_yields_a_legal_mapping(
            dims in proptest::array::uniform7(1u64..300),
            raw in proptest::collection::vec(0.01f64..500.0, 56),
            pe in 2u64..64,
        ) {
            let arch = gemmini_arch();
            let layer = Layer::conv("l", dims, 1, 1);
            let n = arch.levels.len();
            let x = Relaxed {
                temporal: (0..n).map(|i| std::array::from_fn(|d| raw[i * 7 + d])).collect(),
                spatial: (0..n).map(|i| std::array::from_fn(|d| raw[28 + i * 7 + d])).collect(),
            };
            let orders: Vec<Vec<Dim>> = vec![Dim::ALL.to_vec(); n];
            let m = round(&arch, &layer, &x, &orders, pe);
            prop_assert!(check(&arch, &layer, &m, pe).is_ok(), "{:?}", check(&arch, &layer, &m, pe));
            let down = round_with(&arch, &layer, &x, &orders, pe, Rounding::Down);
            prop_assert!(check(&arch, &layer, &down, pe).is_ok());
            // Rounding down never makes an inner factor larger than the relaxed one.
            for (li, lm) in down.levels.iter().enumerate().take(n - 1) {
                for d in 0..7 {
                    prop_assert!(lm.temporal[d] as f64 <= x.temporal[li][d].max(1.0) * (1.0 + 1e-9));
                }
            }
        }
    }
}
