//! What a mapping must satisfy for Gemmini's C library to run it: the one rule set that `emit
//! gemmini`, `check`, `eval`, the search, its repair and polish passes, the random mapper and the
//! hardware derivation all use for a Gemmini-shaped architecture.
//!
//! Gemmini's `tiled_conv` / `tiled_matmul` have **one tile level**: loops over tiles run from
//! DRAM, and a tile's inputs and weights sit in the scratchpad while its whole output tile sits
//! in the accumulator. So:
//! - no temporal loop may sit between the accumulator and DRAM (a scratchpad-level loop over
//!   outputs would enlarge the accumulator tile, which a per-level capacity rule never sees):
//!   [`tile_arch`] pins those levels to `temporal none` for the search;
//! - a tile fits when Gemmini's own row counts fit: scratchpad rows of DIM bytes (input rows per
//!   `ceil(channels/DIM)` bank block plus weight rows), accumulator rows of DIM 4-byte words,
//!   each within half the buffer (double buffering): [`check`] and [`need`];
//! - the hardware a design needs is counted in those rows at the design's own `DIM`
//!   ([`raise_to_tiles`]), so a derived design is a Gemmini configuration that runs it.

use super::tiler::{check_tiles, gemmini_levels, gemmini_params, mapping_to_tiles, GemminiLevels};
use super::tiler::{usage, GemminiParams, Usage};
use crate::ir::{Arch, Dim, Hardware, Layer, Mapping, Mapspace};

/// Where Gemmini's parts sit, when `arch` is Gemmini-shaped (an accumulator keeping outputs
/// inside a scratchpad keeping inputs, inside a backing store) and its mapspace is Gemmini's;
/// `None` for other architectures and for a search with `mapspace free`, which no Gemmini rule
/// applies to.
pub fn target(arch: &Arch) -> Option<GemminiLevels> {
    if arch.mapspace == Mapspace::Free {
        return None;
    }
    gemmini_levels(arch).ok()
}

/// The architecture the search maps onto: `arch` with every level strictly between the
/// accumulator and the backing store allowed no temporal factor (Gemmini's single tile level).
/// Costs do not change; only the mapping space shrinks to what the C library can run.
pub fn tile_arch(arch: &Arch) -> Arch {
    let mut a = arch.clone();
    if let Some(lv) = target(arch) {
        for l in &mut a.levels[lv.acc + 1..lv.dram] {
            l.temporal = Some(Vec::new());
        }
    }
    a
}

/// Gemmini's constants for concrete hardware on `arch`: exactly what `emit gemmini` reads from
/// the `result.dosa` a search writes for that hardware.
pub fn params_of(arch: &Arch, hw: &Hardware) -> GemminiParams {
    gemmini_params(&crate::search::output::derived_arch(arch, hw))
}

/// Why a mapping does not run as one Gemmini tile level: a temporal factor above 1 between the
/// accumulator and the backing store.
pub fn tile_level_problem(arch: &Arch, m: &Mapping) -> Option<String> {
    let lv = target(arch)?;
    for li in lv.acc + 1..lv.dram {
        let lm = m.levels.get(li)?;
        if let Some(d) = Dim::ALL.iter().find(|d| lm.temporal[d.index()] > 1) {
            return Some(format!(
                "temporal {d}{} at {}: Gemmini's C library has one tile level, so loops between \
                 the accumulator and DRAM cannot run (move the factor to DRAM or into the tile)",
                lm.temporal[d.index()],
                arch.levels[li].name
            ));
        }
    }
    None
}

/// The DRAM loop order as Gemmini runs `m`: split reduction loops (C, R, S) innermost, the
/// others in the mapping's order. Upstream's fixed order (N Q P K S R C, outermost first) keeps
/// each output tile's reduction together, and the DOSA branch computes wrong results otherwise
/// ([`super::api::dosa_order_problem`]), so on a Gemmini target every design the search or a
/// baseline scores is put in this form: its cost is then that of an order both APIs run.
pub fn fix_order(arch: &Arch, m: &mut Mapping) {
    const REDUCTION: [Dim; 3] = [Dim::C, Dim::R, Dim::S];
    let Some(lv) = target(arch) else {
        return;
    };
    let Some(top) = m.levels.get_mut(lv.dram) else {
        return;
    };
    let split_reduction = |d: &Dim| REDUCTION.contains(d) && top.temporal[d.index()] > 1;
    if super::api::dosa_order_problem_at(top).is_none() {
        return;
    }
    let (inner, mut order): (Vec<Dim>, Vec<Dim>) =
        top.order.iter().partition(|d| split_reduction(d));
    order.extend(inner);
    top.order = order;
    top.normalize_order();
}

/// Gemmini's rules for one mapped layer on a configuration: structural legality, one tile level,
/// and the tile within the double-buffered scratchpad and accumulator rows.
pub fn check(arch: &Arch, layer: &Layer, m: &Mapping, p: &GemminiParams) -> Result<Usage, String> {
    crate::passes::legal::check(arch, layer, m, p.dim)
        .map_err(|e| format!("the mapping is not legal for the layer: {e}"))?;
    if let Some(why) = tile_level_problem(arch, m) {
        return Err(why);
    }
    let tiles = mapping_to_tiles(layer, m, p.dim);
    check_tiles(layer, &tiles, p).map_err(|e| e.to_string())
}

/// Whether `m` runs on `hw` under Gemmini's rules (always true for other architectures).
pub fn runs_on(arch: &Arch, layer: &Layer, m: &Mapping, hw: &Hardware) -> bool {
    target(arch).is_none() || check(arch, layer, m, &params_of(arch, hw)).is_ok()
}

/// Usable bytes `(scratchpad, accumulator)` Gemmini needs for the tile of `m` on a `dim`-wide
/// array: the rows of [`usage`] turned into the smallest buffers whose rows (whole banks for the
/// scratchpad, halved for double buffering as the library does) hold them.
pub fn need(arch: &Arch, layer: &Layer, m: &Mapping, dim: u64) -> Option<(f64, f64)> {
    let lv = target(arch)?;
    let mut p = gemmini_params(arch);
    p.dim = dim.max(1);
    let u = usage(layer, &mapping_to_tiles(layer, m, p.dim), &p);
    let bytes = |i: usize| u64::from(arch.levels[i].word_bits.div_ceil(8).max(1));
    let usable = |i: usize, phys: f64| {
        if arch.levels[i].double_buffered {
            phys / 2.0
        } else {
            phys
        }
    };
    // The library lets a tile use half the rows; banks hold equal rows.
    let banks = p.bank_num.max(1);
    let bank_rows = (2 * u.spad_rows).div_ceil(banks);
    let sp_phys = (banks * bank_rows * p.dim * bytes(lv.spad)) as f64;
    let acc_phys = (2 * u.acc_rows * p.dim * bytes(lv.acc)) as f64;
    Some((usable(lv.spad, sp_phys), usable(lv.acc, acc_phys)))
}

/// Raise `hw`'s scratchpad and accumulator to what Gemmini needs for `m` at `hw`'s array side
/// (no change for other architectures): how derived hardware becomes a configuration that runs
/// every tile.
pub fn raise_to_tiles(arch: &Arch, layer: &Layer, m: &Mapping, hw: &mut Hardware) {
    let Some(lv) = target(arch) else {
        return;
    };
    let dim = hw.pe_dim.ceil().max(1.0) as u64;
    if let Some((sp, acc)) = need(arch, layer, m, dim) {
        hw.usable_bytes[lv.spad] = hw.usable_bytes[lv.spad].max(sp);
        hw.usable_bytes[lv.acc] = hw.usable_bytes[lv.acc].max(acc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{gemmini_arch, parse_compact};

    fn layer() -> Layer {
        Layer::conv("t", [3, 3, 28, 28, 64, 128, 1], 1, 1)
    }

    #[test]
    fn tile_arch_forbids_scratchpad_loops_only() {
        let a = tile_arch(&gemmini_arch());
        let lv = target(&a).unwrap();
        assert_eq!(a.levels[lv.spad].temporal, Some(vec![]));
        assert_eq!(a.levels[lv.acc].temporal, None);
        assert_eq!(a.levels[0].temporal, gemmini_arch().levels[0].temporal);
    }

    #[test]
    fn scratchpad_loop_over_outputs_is_refused() {
        let a = gemmini_arch();
        let m =
            parse_compact("L3[WIO] K2 - L2[WI] P2 K16X - L1[O] K4 C4 S3 R3 P7 Q28 C16X - L0[W] P1")
                .unwrap();
        let why = tile_level_problem(&a, &m).unwrap();
        assert!(why.contains("temporal P2 at Scratchpad"), "{why}");
        assert!(check(&a, &layer(), &m, &GemminiParams::shipped()).is_err());
    }

    #[test]
    fn fix_order_puts_split_reductions_innermost() {
        let a = gemmini_arch();
        let mut m = parse_compact(
            "L3[WIO] C2 K2 P2 - L2[WI] K16X - L1[O] K4 C16 S3 R3 P14 Q28 C16X - L0[W] N1",
        )
        .unwrap();
        assert!(crate::gemmini::api::dosa_order_problem(&m).is_some());
        fix_order(&a, &mut m);
        assert!(crate::gemmini::api::dosa_order_problem(&m).is_none());
        assert_eq!(m.levels[3].order[..3], [Dim::K, Dim::P, Dim::C]);
        // Already fine: untouched.
        let before = m.clone();
        fix_order(&a, &mut m);
        assert_eq!(m, before);
    }

    #[test]
    fn need_is_exactly_enough_for_check() {
        let a = gemmini_arch();
        let l = layer();
        let m =
            parse_compact("L3[WIO] K2 P2 - L2[WI] K16X - L1[O] K4 C4 S3 R3 P7 Q28 C16X - L0[W] P2")
                .unwrap();
        let (sp, acc) = need(&a, &l, &m, 16).unwrap();
        let mut hw = Hardware {
            pe_dim: 16.0,
            usable_bytes: vec![256.0, acc, sp, f64::INFINITY],
        };
        assert!(runs_on(&a, &l, &m, &hw));
        // One accumulator row (DIM words of 4 B) less and it no longer fits.
        hw.usable_bytes[1] = acc - 64.0;
        assert!(!runs_on(&a, &l, &m, &hw));
    }
}
