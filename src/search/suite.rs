//! A suite search: one hardware for several networks, each with its own mappings.
//!
//! The suite is searched as one network whose layers are the union of the networks' layers, so
//! every pass (the one-loop search, combine, polish, orders, buffer shrinking) runs on it. What
//! is minimised is one of:
//! - `product` (the default): the weighted geometric mean of the networks' own objectives,
//!   `prod_n f_n^(w_n / sum w)` ([`crate::ir::SuiteObjective`], which the exact scoring and the
//!   differentiable cost both ask), so each network counts by its weight whatever its size;
//! - `totals`: the objective of the weighted totals (each layer's count times its network's
//!   weight): for EDP `(sum_n w_n L_n) x (sum_n w_n E_n)`, the suite run as one workload.
//!
//! [`split`] recovers each network's own totals on the shared hardware for the report.

use super::design::{hardware_report, score_on, Exact, Scored};
use super::report::{HardwareReport, LayerReport, NetworkReport};
use crate::ir::{Layer, Network};
use serde::Serialize;

/// The union of the networks' layers, named `network.layer`, each count times its network's
/// weight: the one network the search designs for. Errors when a weighted count overflows.
pub fn union(networks: &[Network], weights: &[u64]) -> Result<Vec<Layer>, String> {
    let mut out = Vec::new();
    for (n, &w) in networks.iter().zip(weights) {
        for l in &n.layers {
            let mut l = l.clone();
            l.count = l.count.checked_mul(w).ok_or_else(|| {
                format!(
                    "layer `{}.{}`: count {} x weight {w} is too large",
                    n.name, l.name, l.count
                )
            })?;
            l.name = format!("{}.{}", n.name, l.name);
            out.push(l);
        }
    }
    Ok(out)
}

/// Each network's design on the suite's hardware: its slice of the suite's mappings, scored with
/// its own (unweighted) counts.
pub fn split(model: &dyn Exact, networks: &[Network], suite: &Scored) -> Vec<Scored> {
    let mut at = 0;
    networks
        .iter()
        .map(|n| {
            let ms = suite.mappings[at..at + n.layers.len()].to_vec();
            at += n.layers.len();
            let mut s = score_on(model, &n.layers, ms, suite.hardware.clone());
            s.auto = suite.auto;
            // Scored as a network of its own, not as a part of the suite.
            s.suite = None;
            s
        })
        .collect()
}

/// Count-weighted totals of a design, finite.
pub fn totals(s: &Scored) -> NetworkReport {
    use crate::util::finite_or;
    NetworkReport {
        latency_cycles: finite_or(s.latency, 0.0),
        energy_uj: finite_or(s.energy, 0.0),
        edp: finite_or(s.edp(), 0.0),
    }
}

/// One network of a suite: its totals and layers on the shared hardware, and the two designs it
/// is compared with.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SuiteNetwork {
    pub name: String,
    pub weight: u64,
    /// On the suite's shared hardware.
    pub shared: NetworkReport,
    /// The one-loop search for this network alone (same settings and bounds).
    pub alone: NetworkReport,
    pub alone_hardware: HardwareReport,
    /// `gemmini-default`: Gemmini's shipped hardware and its own tiler.
    pub gemmini_default: NetworkReport,
    /// shared EDP / alone EDP: what sharing the hardware costs this network (below 1 when the
    /// suite found a better design for it than its own search did).
    pub loss_vs_alone: f64,
    /// gemmini-default EDP / shared EDP: the gain over Gemmini's shipped design.
    pub gain_vs_gemmini_default: f64,
    pub layers: Vec<LayerReport>,
}

/// What `dosa search A.dosa B.dosa ...` prints with `--json` and writes as `report.json`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SuiteReport {
    pub method: String,
    pub objective: String,
    /// What the objective is taken of (see the module documentation).
    pub objective_of: String,
    pub seed: u64,
    pub evaluations: u64,
    /// The suite search's time (0 with `--no-timing`).
    pub seconds: f64,
    /// The time of the per-network searches it is compared with, together.
    pub alone_seconds: f64,
    pub hardware: HardwareReport,
    /// Weighted totals: sum over networks of weight x network total.
    pub total: NetworkReport,
    /// The suite objective (what `objective_of` says) of the shared design, of each network's
    /// own design taken together (no single chip runs them all), and of `gemmini-default`.
    pub score: SuiteScore,
    pub networks: Vec<SuiteNetwork>,
}

/// The suite objective of three sets of per-network designs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SuiteScore {
    pub shared: f64,
    pub alone: f64,
    pub gemmini_default: f64,
}

/// `a / b`, 0 when not finite.
fn ratio(a: f64, b: f64) -> f64 {
    crate::util::finite_or(a / b, 0.0)
}

/// Assemble the report from the suite design, its per-network split and the comparison designs.
#[allow(clippy::too_many_arguments)]
pub fn report(
    model: &dyn Exact,
    goal: Option<&crate::ir::SuiteObjective>,
    objective: crate::ir::Objective,
    seed: u64,
    evaluations: u64,
    (seconds, alone_seconds): (f64, f64),
    networks: &[Network],
    weights: &[u64],
    suite: &Scored,
    shared: &[Scored],
    alone: &[Scored],
    gemmini: &[Scored],
) -> SuiteReport {
    let arch = model.arch();
    let nets = networks
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let r = super::design::report(
                "suite",
                objective,
                seed,
                0,
                0.0,
                arch,
                &n.layers,
                &shared[i],
                Vec::new(),
            );
            SuiteNetwork {
                name: n.name.clone(),
                weight: weights[i],
                shared: totals(&shared[i]),
                alone: totals(&alone[i]),
                alone_hardware: hardware_report(arch, &alone[i].hardware),
                gemmini_default: totals(&gemmini[i]),
                loss_vs_alone: ratio(shared[i].edp(), alone[i].edp()),
                gain_vs_gemmini_default: ratio(gemmini[i].edp(), shared[i].edp()),
                layers: r.layers,
            }
        })
        .collect();
    // The suite objective of per-network designs, each scored as its own network.
    let score = |designs: &[Scored]| {
        let by_network: Vec<(f64, f64)> = designs.iter().map(|s| (s.latency, s.energy)).collect();
        let v = match goal {
            Some(g) => g.value(objective, &by_network),
            None => {
                let (l, e) = by_network
                    .iter()
                    .zip(weights)
                    .fold((0.0, 0.0), |(l, e), (t, &w)| {
                        (l + w as f64 * t.0, e + w as f64 * t.1)
                    });
                objective.of(l, e)
            }
        };
        crate::util::finite_or(v, 0.0)
    };
    let objective_of = if goal.is_some() {
        "product: the weighted geometric mean of the networks' own objectives, prod_n f_n^(w_n / sum w)"
    } else {
        "weighted totals: latency = sum of weight x network latency, energy = sum of weight x network energy"
    };
    SuiteReport {
        method: "suite".into(),
        objective: objective.name().to_string(),
        objective_of: objective_of.into(),
        seed,
        evaluations,
        seconds: crate::util::finite_or(seconds, 0.0),
        alone_seconds: crate::util::finite_or(alone_seconds, 0.0),
        hardware: hardware_report(arch, &suite.hardware),
        total: {
            let (l, e) = shared
                .iter()
                .zip(weights)
                .fold((0.0, 0.0), |(l, e), (s, &w)| {
                    (l + w as f64 * s.latency, e + w as f64 * s.energy)
                });
            totals(&Scored {
                latency: l,
                energy: e,
                ..suite.clone()
            })
        },
        score: SuiteScore {
            shared: score(shared),
            alone: score(alone),
            gemmini_default: score(gemmini),
        },
        networks: nets,
    }
}

/// The text `dosa search A.dosa B.dosa ...` prints: the shared hardware, one row per network
/// (on the shared design, alone, gemmini-default) and the weighted total.
pub fn render_text(r: &SuiteReport) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let h = &r.hardware;
    let _ = writeln!(
        o,
        "suite of {} networks ({} objective, {}; seed {}, {} evaluations, {:.2} s; each network alone {:.2} s)",
        r.networks.len(),
        r.objective,
        r.objective_of.split(':').next().unwrap_or_default(),
        r.seed,
        r.evaluations,
        r.seconds,
        r.alone_seconds
    );
    let _ = writeln!(
        o,
        "shared hardware: {}x{} PEs, scratchpad {} KiB, accumulator {} KiB (physical)",
        h.pe_dim,
        h.pe_dim,
        fmt_kib(h.scratchpad_kib),
        fmt_kib(h.accumulator_kib)
    );
    let w = r
        .networks
        .iter()
        .map(|n| n.name.len())
        .max()
        .unwrap_or(7)
        .max(7);
    let _ = writeln!(
        o,
        "{:<w$}  {:>6}  {:>14}  {:>12}  {:>12}  {:>12}  {:>12}  {:>12}  {:>9}",
        "network",
        "weight",
        "cycles",
        "energy uJ",
        "EDP shared",
        "EDP alone",
        "shared/alone",
        "EDP gemmini",
        "gem/shared"
    );
    for n in &r.networks {
        let _ = writeln!(
            o,
            "{:<w$}  {:>6}  {:>14.0}  {:>12.3}  {:>12.4e}  {:>12.4e}  {:>11.3}x  {:>12.4e}  {:>8.2}x",
            n.name,
            n.weight,
            n.shared.latency_cycles,
            n.shared.energy_uj,
            n.shared.edp,
            n.alone.edp,
            n.loss_vs_alone,
            n.gemmini_default.edp,
            n.gain_vs_gemmini_default
        );
    }
    let t = &r.total;
    let _ = writeln!(
        o,
        "{:<w$}  {:>6}  {:>14.0}  {:>12.3}  {:>12.4e}",
        "total", "", t.latency_cycles, t.energy_uj, t.edp
    );
    let _ = writeln!(
        o,
        "suite objective: shared {:.4e}, each network alone {:.4e} (ratio {:.3}), gemmini-default {:.4e} (ratio {:.3})",
        r.score.shared,
        r.score.alone,
        ratio(r.score.shared, r.score.alone),
        r.score.gemmini_default,
        ratio(r.score.gemmini_default, r.score.shared)
    );
    for n in &r.networks {
        let a = &n.alone_hardware;
        let _ = writeln!(
            o,
            "{} alone: {}x{} PEs, scratchpad {} KiB, accumulator {} KiB",
            n.name,
            a.pe_dim,
            a.pe_dim,
            fmt_kib(a.scratchpad_kib),
            fmt_kib(a.accumulator_kib)
        );
    }
    o
}

fn fmt_kib(x: f64) -> String {
    if (x - x.round()).abs() < 1e-9 {
        format!("{}", x.round() as i64)
    } else {
        format!("{x:.3}")
    }
}
