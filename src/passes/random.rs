//! The cheap mapper: random legal mappings, used to start the search and by the random baseline.

use super::legal::{free_slots, spatial_cap};
use super::round::divisors;
use crate::ir::{Arch, Dim, Layer, LevelMapping, Mapping};
use crate::util::Rng;

/// A uniformly shuffled loop order (all seven dims, outermost first).
pub fn random_order(rng: &mut Rng) -> Vec<Dim> {
    let mut o = Dim::ALL.to_vec();
    for i in (1..o.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        o.swap(i, j);
    }
    o
}

/// A random legal mapping: per dim, walk the free slots innermost first and give each a uniformly
/// chosen divisor of what remains (spatial ones capped by `pe_max`); the backing level takes the
/// rest. Loop orders are shuffled. It need not fit any buffer: see [`shrink_until`].
pub fn random_mapping(arch: &Arch, layer: &Layer, pe_max: u64, rng: &mut Rng) -> Mapping {
    random_mapping_with(arch, layer, pe_max, rng, false)
}

/// [`random_mapping`], where with `partial`, for an awkward dim
/// ([`crate::model::pieces::awkward`]) half the time any whole factor is drawn instead and the
/// backing level counts the tiles, the last one partial: what the random baseline samples. The
/// search's starts keep exact factors (its rounding and polish add partial tiles where they pay).
pub fn random_mapping_with(
    arch: &Arch,
    layer: &Layer,
    pe_max: u64,
    rng: &mut Rng,
    partial: bool,
) -> Mapping {
    let mut levels: Vec<LevelMapping> = arch
        .levels
        .iter()
        .map(|l| {
            let mut lm = LevelMapping::unit(l.keeps);
            lm.order = random_order(rng);
            lm
        })
        .collect();
    let slots = free_slots(arch);
    let back = arch
        .levels
        .iter()
        .rposition(|l| l.is_backing)
        .unwrap_or(arch.levels.len() - 1);
    let mut drawn = false;
    for d in Dim::ALL {
        let mut rest = layer.dim(d);
        let any = partial && crate::model::pieces::awkward(rest) && rng.below(2) == 0;
        drawn |= any;
        for &(li, sd, spatial) in slots.iter().filter(|s| s.1 == d) {
            let cap = if spatial {
                spatial_cap(arch, li, sd, pe_max)
            } else {
                u64::MAX
            };
            if any {
                let f = 1 + rng.below(cap.min(rest).max(1));
                if spatial {
                    levels[li].spatial[d.index()] = f;
                } else {
                    levels[li].temporal[d.index()] = f;
                }
                rest = rest.div_ceil(f);
                continue;
            }
            let ds: Vec<u64> = divisors(rest).into_iter().filter(|&f| f <= cap).collect();
            let f = ds[rng.below(ds.len() as u64) as usize];
            if spatial {
                levels[li].spatial[d.index()] = f;
            } else {
                levels[li].temporal[d.index()] = f;
            }
            rest /= f;
        }
        levels[back].temporal[d.index()] *= rest;
    }
    for lm in &mut levels {
        lm.normalize_order();
    }
    let mut m = Mapping::new(levels);
    if drawn {
        crate::model::pieces::normalize_cover(layer, &mut m);
    }
    m
}

/// Smallest prime factor of `n` (> 1).
pub fn smallest_prime(n: u64) -> u64 {
    let mut p = 2;
    while p * p <= n {
        if n % p == 0 {
            return p;
        }
        p += 1;
    }
    n
}

/// Move factors (a whole slot's or its smallest prime) from random inner slots to the backing level until `fits` holds.
/// Always terminates: with every inner factor 1 a tile is a single word.
/// A dim with a partial last tile keeps its cover ([`crate::model::pieces::normalize_cover`]).
pub fn shrink_until(
    arch: &Arch,
    layer: &Layer,
    m: &mut Mapping,
    rng: &mut Rng,
    fits: impl Fn(&Mapping) -> bool,
) {
    let back = arch
        .levels
        .iter()
        .rposition(|l| l.is_backing)
        .unwrap_or(arch.levels.len() - 1);
    while !fits(m) {
        let mut cands: Vec<(usize, usize, bool)> = Vec::new();
        for (li, lm) in m.levels.iter().enumerate() {
            if li == back {
                continue;
            }
            for d in 0..7 {
                if lm.temporal[d] > 1 {
                    cands.push((li, d, false));
                }
                if lm.spatial[d] > 1 {
                    cands.push((li, d, true));
                }
            }
        }
        if cands.is_empty() {
            return;
        }
        let (li, d, spatial) = cands[rng.below(cands.len() as u64) as usize];
        let slot = if spatial {
            &mut m.levels[li].spatial[d]
        } else {
            &mut m.levels[li].temporal[d]
        };
        // Half the time move the whole factor: tiles far too large shrink in a few steps.
        let p = if rng.below(2) == 0 {
            *slot
        } else {
            smallest_prime(*slot)
        };
        *slot /= p;
        m.levels[back].temporal[d] *= p;
        let dim = Dim::ALL[d];
        if !m.levels[back].order.contains(&dim) {
            m.levels[back].order.push(dim);
        }
        m.levels[back].normalize_order();
        if m.partial[d] {
            crate::model::pieces::normalize_cover(layer, m);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::gemmini_arch;
    use crate::passes::legal::check;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn random_mappings_are_legal(dims in proptest::array::uniform7(1u64..200), seed: u64, pe in 2u64..40) {
            let arch = gemmini_arch();
            let layer = Layer::conv("l", dims, 1, 1);
            let mut rng = crate::util::Rng::new(seed);
            let mut m = random_mapping(&arch, &layer, pe, &mut rng);
            prop_assert!(check(&arch, &layer, &m, pe).is_ok());
            // Shrinking to "no inner factor above 4" keeps it legal and reaches the goal.
            shrink_until(&arch, &layer, &mut m, &mut rng, |m| m.levels[..3].iter().all(|l| l.temporal.iter().chain(&l.spatial).all(|&f| f <= 4)));
            prop_assert!(check(&arch, &layer, &m, pe).is_ok());
            prop_assert!(m.levels[..3].iter().all(|l| l.temporal.iter().chain(&l.spatial).all(|&f| f <= 4)));
        }
    }
}
