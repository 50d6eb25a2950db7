//! Scoring a design (one mapping per layer) the same way for every method: derive the hardware
//! the mappings need, round it to buildable sizes, and evaluate every layer on it.

use super::report::{HardwareReport, LayerReport, NetworkReport, Report};
use crate::gemmini::rules;
use crate::ir::{Arch, Hardware, HwBounds, Instances, Layer, Mapping, Objective, SuiteObjective};
use std::sync::Arc;

/// What the search needs from the exact (integer-mapping) cost model.
pub trait Exact: Sync {
    /// The architecture the model was built for.
    fn arch(&self) -> &Arch;
    /// Smallest hardware (usable bytes per level, pe_dim) that runs `m`.
    fn min_hardware(&self, layer: &Layer, m: &Mapping) -> Hardware;
    /// `(cycles, uJ)` of one instance of `layer` under `m` on `hw`.
    fn cost(&self, layer: &Layer, m: &Mapping, hw: &Hardware) -> (f64, f64);
    /// The hardware of a mapping-only search (every design is scored on it), `None` when the
    /// search designs hardware.
    fn fixed(&self) -> Option<&Hardware> {
        None
    }
    /// A suite search's objective over its networks (see [`SuiteObjective`]), `None` for one
    /// network: every score asks it.
    fn suite(&self) -> Option<&Arc<SuiteObjective>> {
        None
    }
}

/// The hardware a set of mappings needs together: the largest PE array, and per level the largest
/// per-instance need times the instance count of that array (a per-column buffer sized for a
/// small array would be too small on the larger one).
pub fn max_hardware(arch: &Arch, hws: impl IntoIterator<Item = Hardware>) -> Option<Hardware> {
    let hws: Vec<Hardware> = hws.into_iter().collect();
    let pe = hws.iter().map(|h| h.pe_dim).reduce(f64::max)?;
    let usable_bytes = (0..arch.levels.len())
        .map(|i| {
            let lv = &arch.levels[i];
            let inst = hws
                .iter()
                .map(|h| h.instance_bytes(arch, i))
                .fold(0.0, f64::max);
            inst * lv.instance_count(pe)
        })
        .collect();
    Some(Hardware {
        pe_dim: pe,
        usable_bytes,
    })
}

/// Round derived hardware to something buildable: integer pe_dim (at least the arch's minimum),
/// shared buffers up to whole KiB, per-column buffers up to whole 64-byte rows per column (whole
/// KiB in total for a 16-wide array); per-PE registers stay exact.
pub fn round_hardware(arch: &Arch, hw: &Hardware) -> Hardware {
    let pe_dim = hw.pe_dim.ceil().max(arch.pe_min as f64);
    let usable_bytes = hw
        .usable_bytes
        .iter()
        .zip(&arch.levels)
        .map(|(&b, l)| match l.instances {
            Instances::PerPe => b.ceil(),
            // Whole 64-byte rows per column, so every size stays a whole number of bytes.
            Instances::PerColumn => ((b / pe_dim - 1e-9) / 64.0).ceil().max(0.0) * 64.0 * pe_dim,
            Instances::Single => ((b - 1e-9) / 1024.0).ceil().max(0.0) * 1024.0,
        })
        .collect();
    Hardware {
        pe_dim,
        usable_bytes,
    }
}

/// Index of the scratchpad-like level (single instance, keeps W and I) and the accumulator-like
/// level (keeps O, not backing), used to name hardware in reports and to apply KiB bounds.
pub fn named_levels(arch: &Arch) -> (Option<usize>, Option<usize>) {
    use crate::ir::Tensor;
    let sp = arch
        .levels
        .iter()
        .position(|l| !l.is_backing && l.keeps.contains(Tensor::W) && l.keeps.contains(Tensor::I));
    let acc = arch
        .levels
        .iter()
        .position(|l| !l.is_backing && l.keeps.contains(Tensor::O));
    (sp, acc)
}

/// A search bound: the PE array side, or a physical buffer size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoundKind {
    Pe,
    Scratchpad,
    Accumulator,
}

/// A bound no design can meet: which, and the smallest value some design meets, in words.
#[derive(Clone, Debug, PartialEq)]
pub struct Unmeetable {
    pub kind: BoundKind,
    /// Why the smallest design is this large ("the smallest PE array is 2x2 (`pe_min 2`)").
    pub why: String,
    /// The smallest meetable value, as the bound is written (`2`, `2 KiB`).
    pub least: String,
    /// The same in KiB for the buffers (0 for the PE bound).
    pub least_kib: f64,
}

/// The bounds of `b` that no design can meet on `arch`, checked before any search runs.
/// Conservative: a bound is rejected only when even the smallest conceivable design is beyond
/// it. Every design's array is at least `pe_min` wide ([`round_hardware`]); the scratchpad and
/// accumulator hold at least one word, which rounding makes a whole KiB (a shared buffer) or
/// one 64-byte row per column of the smallest array, doubled when double-buffered.
pub fn unmeetable_bounds(arch: &Arch, b: &HwBounds) -> Vec<Unmeetable> {
    let mut out = Vec::new();
    let pe_min = arch.pe_min.max(1);
    if b.pe_max.is_some_and(|m| m < pe_min) {
        out.push(Unmeetable {
            kind: BoundKind::Pe,
            why: format!(
                "the smallest PE array a design may have is {pe_min}x{pe_min} (the architecture's `pe_min`)"
            ),
            least: pe_min.to_string(),
            least_kib: 0.0,
        });
    }
    let least = round_hardware(
        arch,
        &Hardware {
            pe_dim: pe_min as f64,
            usable_bytes: vec![1.0; arch.levels.len()],
        },
    );
    let (sp, acc) = named_levels(arch);
    for (kind, level, bound) in [
        (BoundKind::Scratchpad, sp, b.sp_max_kib),
        (BoundKind::Accumulator, acc, b.acc_max_kib),
    ] {
        let (Some(i), Some(bound)) = (level, bound) else {
            continue;
        };
        let kib = least.physical_bytes(arch, i) / 1024.0;
        if kib > bound * (1.0 + 1e-9) {
            let l = &arch.levels[i];
            out.push(Unmeetable {
                kind,
                why: format!(
                    "the smallest `{}` any design has is {} physical (one word, rounded up to {}{})",
                    l.name,
                    kib_text(kib),
                    match l.instances {
                        Instances::Single => "a whole KiB".to_string(),
                        Instances::PerColumn => format!("a 64-byte row per column of a {pe_min}-wide array"),
                        Instances::PerPe => "a whole byte".to_string(),
                    },
                    if l.double_buffered { ", doubled as it is double-buffered" } else { "" }
                ),
                least: kib_text(kib),
                least_kib: kib,
            });
        }
    }
    out
}

/// A size in KiB as a `.dosa` quantity: whole KiB, else bytes.
fn kib_text(kib: f64) -> String {
    if kib == kib.round() {
        format!("{kib} KiB")
    } else {
        format!("{} B", (kib * 1024.0).round())
    }
}

/// How far hardware is beyond the bounds (physical sizes, as the bounds are written): the sum of
/// the log excesses, 0 when within. The repair pass descends it; [`within_bounds`] tests it.
pub fn violation(arch: &Arch, hw: &Hardware, b: &HwBounds) -> f64 {
    let (sp, acc) = named_levels(arch);
    let kib = |i: Option<usize>| i.map_or(0.0, |i| hw.physical_bytes(arch, i) / 1024.0);
    let over = |v: f64, bound: Option<f64>| bound.map_or(0.0, |m| (v / m).ln().max(0.0));
    over(hw.pe_dim, b.pe_max.map(|m| m as f64))
        + over(kib(sp), b.sp_max_kib)
        + over(kib(acc), b.acc_max_kib)
}

/// What one layer's own hardware becomes on the largest array the bounds allow: per-column and
/// per-PE buffers scale with the array, so a layer is checked against the bounds there (the
/// network's array may be larger than the layer's own).
pub fn at_bound_pe(arch: &Arch, hw: &Hardware, b: &HwBounds) -> Hardware {
    let pe = hw
        .pe_dim
        .max(b.pe_max.map_or(super::baseline::PE_RANGE.1, |m| m as f64));
    Hardware {
        pe_dim: pe,
        usable_bytes: (0..arch.levels.len())
            .map(|i| hw.instance_bytes(arch, i) * arch.levels[i].instance_count(pe))
            .collect(),
    }
}

/// What one layer's mapping needs on the largest array the bounds allow ([`at_bound_pe`]), raised
/// to Gemmini's tile rows at that array on a Gemmini target and rounded to buildable sizes: what
/// the repair passes hold against the bounds.
pub fn need_at_bound(model: &dyn Exact, layer: &Layer, m: &Mapping, b: &HwBounds) -> Hardware {
    let arch = model.arch();
    let mut hw = at_bound_pe(arch, &need(model, layer, m), b);
    rules::raise_to_tiles(arch, layer, m, &mut hw);
    round_hardware(arch, &hw)
}

/// Whether hardware respects the bounds (up to float noise).
pub fn within_bounds(arch: &Arch, hw: &Hardware, b: &HwBounds) -> bool {
    violation(arch, hw, b) <= 1e-12
}

/// A suite's objective and, per network, its count-weighted `(cycles, uJ)`.
pub type SuiteTotals = (Arc<SuiteObjective>, Vec<(f64, f64)>);

/// A scored design.
#[derive(Clone, Debug)]
pub struct Scored {
    pub hardware: Hardware,
    pub mappings: Vec<Mapping>,
    /// Per layer `(cycles, uJ)` for one instance.
    pub costs: Vec<(f64, f64)>,
    pub latency: f64,
    pub energy: f64,
    /// Gemmini's own tiler runs every layer (`gemmini-default`): written as `map ... auto`.
    pub auto: bool,
    /// A suite search's objective, and per network its count-weighted `(cycles, uJ)`.
    pub suite: Option<SuiteTotals>,
}

impl Scored {
    /// Network EDP (cycles x uJ).
    pub fn edp(&self) -> f64 {
        self.latency * self.energy
    }
    /// The value the search minimises: the objective of the totals, or a suite's objective over
    /// its networks' totals.
    pub fn objective(&self, o: Objective) -> f64 {
        match &self.suite {
            Some((s, by_network)) => s.value(o, by_network),
            None => o.of(self.latency, self.energy),
        }
    }
}

/// The objective of a design as one layer's cost changes, without re-scoring the design: what
/// the coordinate passes (order choice, combine, polish, tile enumeration) compare candidates
/// with, and update as they accept one.
#[derive(Clone, Debug)]
pub struct Tracker {
    objective: Objective,
    latency: f64,
    energy: f64,
    suite: Option<SuiteTotals>,
}

impl Tracker {
    /// Starting from the totals of `s`.
    pub fn new(s: &Scored, objective: Objective) -> Tracker {
        Tracker {
            objective,
            latency: s.latency,
            energy: s.energy,
            suite: s.suite.clone(),
        }
    }

    /// The objective now.
    pub fn value(&self) -> f64 {
        match &self.suite {
            Some((s, by_network)) => s.value(self.objective, by_network),
            None => self.objective.of(self.latency, self.energy),
        }
    }

    /// The objective if layer `li`, of count `w`, cost `new` instead of `old`.
    pub fn with_layer(&self, li: usize, w: f64, old: (f64, f64), new: (f64, f64)) -> f64 {
        let (dl, de) = (w * (new.0 - old.0), w * (new.1 - old.1));
        match &self.suite {
            Some((s, by_network)) => {
                let mut t = by_network.clone();
                let n = s.network_of[li];
                t[n] = (t[n].0 + dl, t[n].1 + de);
                s.value(self.objective, &t)
            }
            None => self.objective.of(self.latency + dl, self.energy + de),
        }
    }

    /// Accept the change [`Tracker::with_layer`] priced.
    pub fn apply(&mut self, li: usize, w: f64, old: (f64, f64), new: (f64, f64)) {
        let (dl, de) = (w * (new.0 - old.0), w * (new.1 - old.1));
        self.latency += dl;
        self.energy += de;
        if let Some((s, by_network)) = &mut self.suite {
            let n = s.network_of[li];
            by_network[n] = (by_network[n].0 + dl, by_network[n].1 + de);
        }
    }
}

/// Score mappings on a given hardware (count-weighted totals); on a Gemmini target each mapping's
/// DRAM order is first put in the form Gemmini runs ([`rules::fix_order`]).
pub fn score_on(
    model: &dyn Exact,
    layers: &[Layer],
    mut mappings: Vec<Mapping>,
    hw: Hardware,
) -> Scored {
    for m in &mut mappings {
        rules::fix_order(model.arch(), m);
    }
    let costs: Vec<(f64, f64)> = layers
        .iter()
        .zip(&mappings)
        .map(|(l, m)| model.cost(l, m, &hw))
        .collect();
    let latency = layers
        .iter()
        .zip(&costs)
        .map(|(l, c)| l.count as f64 * c.0)
        .sum();
    let energy = layers
        .iter()
        .zip(&costs)
        .map(|(l, c)| l.count as f64 * c.1)
        .sum();
    // A suite's objective applies to the suite's own layers only.
    let suite = model
        .suite()
        .filter(|s| s.network_of.len() == layers.len())
        .map(|s| {
            let counts: Vec<f64> = layers.iter().map(|l| l.count as f64).collect();
            (s.clone(), s.totals(&counts, &costs))
        });
    Scored {
        hardware: hw,
        mappings,
        costs,
        latency,
        energy,
        auto: false,
        suite,
    }
}

/// The hardware an architecture fixes, when it fixes the array and every on-chip buffer: usable
/// bytes per level (half the physical size when double-buffered), what a mapping-only search
/// ([`crate::ir::HardwareMode::Fixed`]) maps onto and prices energy at.
pub fn fixed_hardware(arch: &Arch) -> Option<Hardware> {
    let pe = match arch.pe_dim {
        crate::ir::Bound::Fixed(p) => p as f64,
        _ => return None,
    };
    let usable_bytes = arch
        .levels
        .iter()
        .map(|l| {
            if l.is_backing {
                return Some(f64::INFINITY);
            }
            let crate::ir::Bound::Fixed(b) = l.capacity else {
                return None;
            };
            let half = if l.double_buffered { 0.5 } else { 1.0 };
            Some(b as f64 * l.instance_count(pe) * half)
        })
        .collect::<Option<Vec<f64>>>()?;
    Some(Hardware {
        pe_dim: pe,
        usable_bytes,
    })
}

/// The physical sizes of fixed hardware as bounds (what the relaxation's penalties and the
/// repair passes hold a mapping-only search to).
pub fn bounds_of(arch: &Arch, hw: &Hardware) -> HwBounds {
    let (sp, acc) = named_levels(arch);
    let kib = |i: Option<usize>| i.map(|i| hw.physical_bytes(arch, i) / 1024.0);
    HwBounds {
        pe_max: Some(hw.pe_dim as u64),
        sp_max_kib: kib(sp),
        acc_max_kib: kib(acc),
    }
}

/// The smallest hardware one mapping runs on: the model's need and, on a Gemmini target, the
/// buffers Gemmini's tile rows take on the mapping's own array ([`rules::raise_to_tiles`]).
pub fn need(model: &dyn Exact, layer: &Layer, m: &Mapping) -> Hardware {
    let mut hw = model.min_hardware(layer, m);
    rules::raise_to_tiles(model.arch(), layer, m, &mut hw);
    hw
}

/// Whether a mapping runs on `hw`: it fits the model's per-level needs and, on a Gemmini target,
/// Gemmini's rules for the configuration `hw` describes. Every pass that asks "does this mapping
/// fit" asks this.
pub fn runs_on(model: &dyn Exact, layer: &Layer, m: &Mapping, hw: &Hardware) -> bool {
    let arch = model.arch();
    super::baseline::fits(arch, &need(model, layer, m), hw) && rules::runs_on(arch, layer, m, hw)
}

/// The smallest buildable hardware that runs every mapping: the largest array, per level the
/// largest need, rounded to buildable sizes; on a Gemmini target the buffers are then raised to
/// every tile's rows at that array's side (rows depend on `DIM`) and rounded again.
pub fn derive(model: &dyn Exact, layers: &[Layer], mappings: &[Mapping]) -> Hardware {
    if let Some(hw) = model.fixed() {
        return hw.clone();
    }
    let arch = model.arch();
    let hw = max_hardware(
        arch,
        layers.iter().zip(mappings).map(|(l, m)| need(model, l, m)),
    )
    .expect("a network has at least one layer");
    let mut hw = round_hardware(arch, &hw);
    if rules::target(arch).is_some() {
        for (l, m) in layers.iter().zip(mappings) {
            rules::raise_to_tiles(arch, l, m, &mut hw);
        }
        hw = round_hardware(arch, &hw);
    }
    hw
}

/// Score mappings on the smallest buildable hardware that runs them all ([`derive`]).
pub fn score(model: &dyn Exact, layers: &[Layer], mappings: Vec<Mapping>) -> Scored {
    let hw = derive(model, layers, &mappings);
    score_on(model, layers, mappings, hw)
}

/// Hardware as reports show it.
pub fn hardware_report(arch: &Arch, hw: &Hardware) -> HardwareReport {
    let (sp, acc) = named_levels(arch);
    let kib = |i: Option<usize>, phys: bool| {
        i.map_or(0.0, |i| {
            if phys {
                hw.physical_bytes(arch, i) / 1024.0
            } else {
                hw.usable_bytes[i] / 1024.0
            }
        })
    };
    HardwareReport {
        pe_dim: hw.pe_dim.round() as u64,
        scratchpad_kib: kib(sp, true),
        accumulator_kib: kib(acc, true),
        scratchpad_usable_kib: kib(sp, false),
        accumulator_usable_kib: kib(acc, false),
    }
}

/// Build the common report for a scored design.
#[allow(clippy::too_many_arguments)]
pub fn report(
    method: &str,
    objective: Objective,
    seed: u64,
    evaluations: u64,
    seconds: f64,
    arch: &Arch,
    layers: &[Layer],
    s: &Scored,
    curve: Vec<(u64, f64)>,
) -> Report {
    use crate::util::finite_or;
    Report {
        method: method.to_string(),
        objective: objective.name().to_string(),
        seed,
        evaluations,
        seconds: finite_or(seconds, 0.0),
        hardware: hardware_report(arch, &s.hardware),
        network: NetworkReport {
            latency_cycles: finite_or(s.latency, 0.0),
            energy_uj: finite_or(s.energy, 0.0),
            edp: finite_or(s.edp(), 0.0),
        },
        layers: layers
            .iter()
            .zip(&s.mappings)
            .zip(&s.costs)
            .map(|((l, m), c)| LayerReport {
                name: l.name.clone(),
                count: l.count,
                mapping: m.to_string(),
                latency_cycles: finite_or(c.0, 0.0),
                energy_uj: finite_or(c.1, 0.0),
            })
            .collect(),
        floor: None,
        curve,
    }
}
