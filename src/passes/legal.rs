//! Structural legality of a mapping against a layer and an architecture: what rounding and the
//! random mapper must guarantee and what every search result is checked against.

use crate::ir::{Arch, Dim, Layer, Mapping};

/// Every factor slot a mapping may set to more than 1: (level, dim, spatial?).
/// Innermost level first; within a level the spatial slot before the temporal one.
pub fn free_slots(arch: &Arch) -> Vec<(usize, Dim, bool)> {
    let mut out = Vec::new();
    for (li, level) in arch.levels.iter().enumerate() {
        if level.is_backing {
            continue;
        }
        for d in Dim::ALL {
            if level.allows_spatial(d) {
                out.push((li, d, true));
            }
            if level.allows_temporal(d) {
                out.push((li, d, false));
            }
        }
    }
    out
}

/// Largest spatial factor of `d` at level `li` given a PE array side `pe_max`.
pub fn spatial_cap(arch: &Arch, li: usize, d: Dim, pe_max: u64) -> u64 {
    arch.levels[li]
        .spatial
        .iter()
        .find(|s| s.dim == d)
        .map(|s| s.max.map_or(pe_max, |m| m.min(pe_max)))
        .unwrap_or(1)
}

/// Why a mapping is not legal for a layer on an architecture, or `Ok` if it is.
/// `pe_max` bounds spatial factors (the PE array side).
pub fn check(arch: &Arch, layer: &Layer, m: &Mapping, pe_max: u64) -> Result<(), String> {
    if m.levels.len() != arch.levels.len() {
        return Err(format!(
            "mapping has {} levels, architecture {}",
            m.levels.len(),
            arch.levels.len()
        ));
    }
    crate::model::pieces::check_cover(layer, m).map_err(|e| format!("{}: {e}", layer.name))?;
    for (li, (lm, level)) in m.levels.iter().zip(&arch.levels).enumerate() {
        for d in Dim::ALL {
            let t = lm.temporal[d.index()];
            let s = lm.spatial[d.index()];
            if t > 1 && !level.allows_temporal(d) {
                return Err(format!(
                    "{}: temporal {d}{t} not allowed at {}",
                    layer.name, level.name
                ));
            }
            if s > 1 && s > spatial_cap(arch, li, d, pe_max) {
                return Err(format!(
                    "{}: spatial {d}{s} exceeds what {} allows (pe <= {pe_max})",
                    layer.name, level.name
                ));
            }
        }
    }
    Ok(())
}
