//! The differentiable model: per-layer compiled tapes and the network cost the search descends.
//!
//! Variables: the natural logs of the tile factors at the free slots of the architecture
//! ([`crate::passes::legal::free_slots`]: every non-backing (level, dim) that may be temporal or
//! spatial), one vector per layer, layers concatenated. Slots of dims the layer does not have
//! (size one) are pinned: their entries are ignored and get zero gradient. The backing level's
//! factor of a dim is `size / product of the inner factors`, continuous too.
//!
//! A [`CompiledLayer`] is the layer's cost rules ([`super::rules`], the same code the exact
//! evaluator runs) traced symbolically for fixed loop orders, simplified with egg and compiled to a
//! [`Tape`]. Loops whose factor is a variable count as present, so the stationarity structure does
//! not jump while factors move; at an integer point with the same structure the tape equals the
//! exact evaluator.
//!
//! [`NetworkCost`] assembles one compiled layer per network layer (swappable when the search changes
//! a layer's loop order), derives the network hardware as a smooth maximum over layers, and gives the
//! objective, its gradient and the penalties in one [`NetworkCost::value_grad`] call.

use super::algebra::Algebra;
use super::exact::{check_arch, energies_pj, ModelError};
use super::expr::{compile, EggOptions, EggReport, Simplify, Tracer};
use super::nest::{Nest, Structure};
use super::rules::{self, Factors, HwIn};
use super::tape::Tape;
use crate::ir::{Arch, Dim, Hardware, HwBounds, Layer, Mapping, Objective};
use crate::passes::legal::free_slots;
use std::sync::Arc;

/// What compiling a layer cost and produced.
#[derive(Clone, Debug, PartialEq)]
pub struct CompileStats {
    /// Ops the rules recorded that the outputs need (the raw trace, dead ops dropped).
    pub raw_ops: usize,
    /// Ops of the compiled tape.
    pub tape_ops: usize,
    /// The egg pass, when it ran.
    pub egg: Option<EggReport>,
    /// Wall time of tracing + simplification (ms); informational only.
    pub millis: f64,
}

/// Where each output sits in the tape's output list.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputLayout {
    /// Required PE array side.
    pub req_pe: usize,
    /// `(level, output)`: usable bytes one instance of the level needs.
    pub req_bytes: Vec<(usize, usize)>,
    /// `(dim, output)`: log of the backing level's (derived) factor, for the factor >= 1 penalty.
    pub ln_backing: Vec<(Dim, usize)>,
    /// Latency (cycles).
    pub latency: usize,
    /// Energy (uJ).
    pub energy: usize,
}

/// One layer's cost for fixed loop orders, compiled for value and reverse-mode gradient.
#[derive(Clone, Debug)]
pub struct CompiledLayer {
    pub layer: Layer,
    /// Loop order per level, outermost first.
    pub orders: Vec<Vec<Dim>>,
    /// The variable layout: variable `i` is the log factor of `slots[i] = (level, dim, spatial)`.
    pub slots: Vec<(usize, Dim, bool)>,
    /// Whether slot `i` is a live variable (the layer has the dim) or pinned to factor 1.
    pub used: Vec<bool>,
    pub tape: Tape,
    pub outputs: OutputLayout,
    pub stats: CompileStats,
    levels: usize,
    backing: usize,
}

/// Layer outputs at a point.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerValues {
    pub req_pe: f64,
    /// Per level: usable bytes of one instance the tiles need (`None` if not sized).
    pub req_inst_bytes: Vec<Option<f64>>,
    pub latency: f64,
    pub energy_uj: f64,
}

/// The hardware inputs of a tape: `[pe_dim, pJ per access of level 0, 1, ...]`.
pub fn hw_inputs(arch: &Arch, hw: &Hardware) -> Vec<f64> {
    let mut v = vec![hw.pe_dim];
    v.extend(energies_pj(arch, hw));
    v
}

/// The layer's outputs, generic over the algebra: one source of truth for the compiled tape (traced),
/// direct `f64` evaluation and dual-number checks. `x[i]` is the log factor of `slots[i]` (ignored
/// where `used[i]` is false); `hw` holds the PE side and the energy per access of every level.
/// Returns the outputs in [`OutputLayout`] order.
#[allow(clippy::too_many_arguments)]
pub fn layer_outputs<A: Algebra>(
    alg: &A,
    arch: &Arch,
    layer: &Layer,
    orders: &[Vec<Dim>],
    slots: &[(usize, Dim, bool)],
    used: &[bool],
    x: &[A::S],
    hw: &HwIn<A::S>,
) -> (Vec<A::S>, OutputLayout) {
    let nl = arch.levels.len();
    let backing = nl - 1;
    let one = alg.lit(1.0);
    let mut f: Factors<A::S> = Factors {
        temporal: vec![[one; 7]; nl],
        spatial: vec![[one; 7]; nl],
    };
    for (i, &(l, d, sp)) in slots.iter().enumerate() {
        if used[i] {
            let e = alg.exp(x[i]);
            if sp {
                f.spatial[l][d.index()] = e;
            } else {
                f.temporal[l][d.index()] = e;
            }
        }
    }
    for d in Dim::ALL {
        let size = layer.dim(d);
        if size > 1 {
            let inner: Vec<A::S> = slots
                .iter()
                .enumerate()
                .filter(|(i, s)| used[*i] && s.1 == d)
                .map(|(_, &(l, _, sp))| {
                    if sp {
                        f.spatial[l][d.index()]
                    } else {
                        f.temporal[l][d.index()]
                    }
                })
                .collect();
            let lit = alg.lit(size as f64);
            f.temporal[backing][d.index()] = match alg.prod_opt(inner) {
                Some(p) => alg.div(lit, p),
                None => lit,
            };
        }
    }
    let is_var =
        |l: usize, d: Dim, sp: bool| slots.iter().zip(used).any(|(s, &u)| u && *s == (l, d, sp));
    let nest = Nest::build(nl, orders, |lp| {
        if lp.level == backing {
            !lp.spatial && layer.dim(lp.dim) > 1
        } else {
            is_var(lp.level, lp.dim, lp.spatial)
        }
    });
    let st = Structure::structural(&nest);
    let costs = rules::layer_costs(alg, arch, layer, &nest, &st, &f);
    let (lat, en) = rules::smooth_head(alg, arch, &costs, hw);
    let mut outs = vec![costs.req_pe];
    let mut req_bytes = Vec::new();
    for (l, b) in costs.req_inst_bytes.iter().enumerate() {
        if let Some(b) = b {
            req_bytes.push((l, outs.len()));
            outs.push(*b);
        }
    }
    let mut ln_backing = Vec::new();
    for d in Dim::ALL {
        if layer.dim(d) > 1 {
            ln_backing.push((d, outs.len()));
            let b = f.temporal[backing][d.index()];
            outs.push(alg.ln(b));
        }
    }
    let latency = outs.len();
    outs.push(lat);
    let energy = outs.len();
    outs.push(en);
    (
        outs,
        OutputLayout {
            req_pe: 0,
            req_bytes,
            ln_backing,
            latency,
            energy,
        },
    )
}

/// Compile the cost of `layer` with the given loop orders (per level, outermost first).
pub fn compile_layer(
    arch: &Arch,
    layer: &Layer,
    orders: &[Vec<Dim>],
    how: Simplify,
) -> Result<CompiledLayer, ModelError> {
    check_arch(arch)?;
    let t0 = std::time::Instant::now();
    let nl = arch.levels.len();
    let slots = free_slots(arch);
    let used: Vec<bool> = slots.iter().map(|&(_, d, _)| layer.dim(d) > 1).collect();
    let tr = Tracer::new();
    let x: Vec<u32> = (0..slots.len()).map(|i| tr.var(i as u32)).collect();
    let hw = HwIn {
        pe_dim: tr.hw(0),
        energy_pj: (0..nl).map(|l| tr.hw(1 + l as u32)).collect(),
    };
    let (outs, outputs) = layer_outputs(&tr, arch, layer, orders, &slots, &used, &x, &hw);
    let raw = tr.into_ops();
    let raw_ops = super::expr::prune(&raw, &outs).0.len();
    let (tape, egg) = compile(&raw, &outs, slots.len(), 1 + nl, how);
    let stats = CompileStats {
        raw_ops,
        tape_ops: tape.len(),
        egg,
        millis: t0.elapsed().as_secs_f64() * 1e3,
    };
    Ok(CompiledLayer {
        layer: layer.clone(),
        orders: orders.to_vec(),
        slots,
        used,
        tape,
        outputs,
        stats,
        levels: nl,
        backing: nl - 1,
    })
}

/// The default way to compile: egg with default limits.
pub fn default_simplify() -> Simplify {
    Simplify::Egg(EggOptions::default())
}

impl CompiledLayer {
    /// Number of variables (the free slots of the architecture).
    pub fn n_vars(&self) -> usize {
        self.slots.len()
    }

    /// The variables of an integer mapping: ln of each slot's factor (pinned slots get 0).
    pub fn vars_from_mapping(&self, m: &Mapping) -> Vec<f64> {
        self.slots
            .iter()
            .zip(&self.used)
            .map(|(&(l, d, sp), &u)| {
                if !u {
                    return 0.0;
                }
                let lm = &m.levels[l];
                let v = if sp {
                    lm.spatial[d.index()]
                } else {
                    lm.temporal[d.index()]
                };
                (v.max(1) as f64).ln()
            })
            .collect()
    }

    /// The continuous factors `x` stands for, the backing level's included (`size / inner`).
    pub fn factors_from_vars(&self, x: &[f64]) -> (Vec<[f64; 7]>, Vec<[f64; 7]>) {
        let mut t = vec![[1.0; 7]; self.levels];
        let mut s = vec![[1.0; 7]; self.levels];
        for (i, &(l, d, sp)) in self.slots.iter().enumerate() {
            if self.used[i] {
                let v = x[i].exp();
                if sp {
                    s[l][d.index()] = v;
                } else {
                    t[l][d.index()] = v;
                }
            }
        }
        for d in Dim::ALL {
            let inner: f64 = (0..self.backing)
                .map(|l| t[l][d.index()] * s[l][d.index()])
                .product();
            t[self.backing][d.index()] = self.layer.dim(d) as f64 / inner;
        }
        (t, s)
    }

    /// Values of all outputs at `x` on hardware inputs `hw` (see [`hw_inputs`]).
    pub fn eval(&self, x: &[f64], hw: &[f64]) -> LayerValues {
        let mut vals = vec![0.0; self.tape.len()];
        self.tape.forward(x, hw, &mut vals);
        let o = |k: usize| vals[self.tape.outputs[k] as usize];
        let mut req = vec![None; self.levels];
        for &(l, k) in &self.outputs.req_bytes {
            req[l] = Some(o(k));
        }
        LayerValues {
            req_pe: o(self.outputs.req_pe),
            req_inst_bytes: req,
            latency: o(self.outputs.latency),
            energy_uj: o(self.outputs.energy),
        }
    }

    /// Vector-Jacobian product: given cotangents of all outputs (in [`OutputLayout`] order), the
    /// gradients with respect to the variables and the hardware inputs.
    pub fn vjp(&self, x: &[f64], hw: &[f64], cot: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let mut vals = vec![0.0; self.tape.len()];
        self.tape.forward(x, hw, &mut vals);
        let mut adj = vec![0.0; self.tape.len()];
        for (k, &c) in cot.iter().enumerate() {
            adj[self.tape.outputs[k] as usize] += c;
        }
        let (mut gx, mut ghw) = (vec![0.0; self.n_vars()], vec![0.0; hw.len()]);
        self.tape
            .reverse_range(&vals, &mut adj, &mut gx, &mut ghw, 0..self.tape.len());
        (gx, ghw)
    }
}

/// A learned correction of a layer's analytical latency (MODEL.md section 9): the `both` predictor
/// multiplies the analytical latency by `exp(mlp(features))`.
pub trait LatencyCorrection: Send + Sync {
    /// The corrected latency of layer `layer` at its variables `x_layer`, and its derivative with
    /// respect to the analytical latency. `grad_x` (zeroed by the caller, one entry per variable)
    /// receives the derivative of the corrected latency with respect to `x_layer` through the
    /// correction's own features (not through `analytical`).
    fn apply(
        &self,
        layer: usize,
        x_layer: &[f64],
        analytical: f64,
        grad_x: &mut [f64],
    ) -> (f64, f64);
}

/// Upper bounds the penalties enforce.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Bounds {
    /// PE array side (also caps every spatial factor).
    pub pe_max: Option<f64>,
    /// Physical bytes per level (twice the usable size when double-buffered), summed over instances.
    pub physical_bytes_max: Vec<Option<f64>>,
}

impl Bounds {
    /// The search spec's bounds: `sp_max_kib` applies to the scratchpad-like level, `acc_max_kib` to
    /// the accumulator-like level (as named by [`crate::search::design::named_levels`]).
    pub fn from_hw_bounds(arch: &Arch, b: &HwBounds) -> Bounds {
        let (sp, acc) = crate::search::design::named_levels(arch);
        let mut phys = vec![None; arch.levels.len()];
        if let (Some(i), Some(k)) = (sp, b.sp_max_kib) {
            phys[i] = Some(k * 1024.0);
        }
        if let (Some(i), Some(k)) = (acc, b.acc_max_kib) {
            phys[i] = Some(k * 1024.0);
        }
        Bounds {
            pe_max: b.pe_max.map(|p| p as f64),
            physical_bytes_max: phys,
        }
    }
}

/// Penalty weights (each penalty is `weight * violation^2`, violations measured in logs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Penalties {
    /// Every variable >= 0 (factor >= 1) and every derived backing factor >= 1.
    pub factor: f64,
    /// PE array side and physical sizes within [`Bounds`].
    pub hardware: f64,
    /// Spatial factors within the PE array side and their per-dim maxima.
    pub spatial: f64,
}

impl Default for Penalties {
    fn default() -> Self {
        Penalties {
            factor: 10.0,
            hardware: 10.0,
            spatial: 10.0,
        }
    }
}

/// Settings of a [`NetworkCost`].
#[derive(Clone, Debug, PartialEq)]
pub struct CostOptions {
    pub objective: Objective,
    /// Minimise `ln(objective)` (scale-free; what the search uses) instead of the objective.
    pub log: bool,
    /// Exponent `p` of the smooth maximum over layers (see [`smooth_max`]).
    pub smooth_p: f64,
    pub bounds: Bounds,
    pub penalties: Penalties,
    /// Mapping-only search: latency and energy use this hardware (the array side and every
    /// level's access energy at its fixed size) instead of the smooth maximum of the layers'
    /// needs; the needs are still held to [`Bounds`] by the penalties.
    pub fixed: Option<Hardware>,
    /// Suite search: the objective over the networks' totals instead of the union's totals.
    pub suite: Option<std::sync::Arc<crate::ir::SuiteObjective>>,
}

impl CostOptions {
    /// Log objective, `p = 32`, default penalties, no bounds.
    pub fn new(objective: Objective) -> CostOptions {
        CostOptions {
            objective,
            log: true,
            smooth_p: 32.0,
            bounds: Bounds::default(),
            penalties: Penalties::default(),
            fixed: None,
            suite: None,
        }
    }
}

/// Smooth maximum `(sum v_i^p)^(1/p)`, computed stably as `exp(logsumexp(p ln v) / p)`; writes
/// `d smax / d v_i` into `grad`. It is never below the true maximum and at most `n^(1/p)` above it
/// (for `p = 32` and 24 layers: 10% when all are equal, ~0 when one layer dominates). Values <= 0
/// are treated as 1e-300.
pub fn smooth_max(v: &[f64], p: f64, grad: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let lv: Vec<f64> = v.iter().map(|&x| x.max(1e-300).ln() * p).collect();
    let m = lv.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let s: f64 = lv.iter().map(|&a| (a - m).exp()).sum();
    let smax = ((m + s.ln()) / p).exp();
    for (i, g) in grad.iter_mut().enumerate().take(v.len()) {
        let w = (lv[i] - m).exp() / s;
        *g = smax * w / v[i].max(1e-300);
    }
    smax
}

struct NetLayer {
    compiled: Arc<CompiledLayer>,
    count: f64,
    offset: usize,
    vals: Vec<f64>,
    adj: Vec<f64>,
    ghw: Vec<f64>,
    gcorr: Vec<f64>,
}

/// Totals and hardware at a point.
#[derive(Clone, Debug, PartialEq)]
pub struct Breakdown {
    /// Count-weighted network latency (cycles, corrected if a correction is set).
    pub latency: f64,
    /// Count-weighted network energy (uJ).
    pub energy_uj: f64,
    /// latency x energy.
    pub edp: f64,
    /// The objective part of the value (ln or plain, per options).
    pub objective: f64,
    /// The penalty part of the value.
    pub penalty: f64,
    /// Smooth-max derived hardware (usable bytes summed over instances).
    pub hardware: Hardware,
    /// Per layer `(latency, uJ)` of one instance.
    pub layers: Vec<(f64, f64)>,
}

/// The differentiable network cost (module doc). Not `Sync`: it owns scratch buffers; build one per
/// optimisation thread.
pub struct NetworkCost {
    arch: Arch,
    layers: Vec<NetLayer>,
    pub options: CostOptions,
    correction: Option<Arc<dyn LatencyCorrection>>,
    n_vars: usize,
}

impl NetworkCost {
    /// Assemble compiled layers with their repeat counts.
    pub fn new(
        arch: &Arch,
        layers: Vec<(Arc<CompiledLayer>, u64)>,
        options: CostOptions,
    ) -> NetworkCost {
        let mut offset = 0;
        let layers = layers
            .into_iter()
            .map(|(c, n)| {
                let nl = NetLayer {
                    offset,
                    count: n as f64,
                    vals: vec![0.0; c.tape.len()],
                    adj: vec![0.0; c.tape.len()],
                    ghw: vec![0.0; 1 + arch.levels.len()],
                    gcorr: vec![0.0; c.n_vars()],
                    compiled: c,
                };
                offset += nl.compiled.n_vars();
                nl
            })
            .collect();
        NetworkCost {
            arch: arch.clone(),
            layers,
            options,
            correction: None,
            n_vars: offset,
        }
    }

    /// Set (or clear) the latency correction hook.
    pub fn set_correction(&mut self, c: Option<Arc<dyn LatencyCorrection>>) {
        self.correction = c;
    }

    /// Replace layer `i`'s compiled cost (e.g. another DRAM loop order); the variable layout is the
    /// same for every order, so `x` stays valid.
    pub fn set_layer(&mut self, i: usize, c: Arc<CompiledLayer>) {
        let l = &mut self.layers[i];
        l.vals = vec![0.0; c.tape.len()];
        l.adj = vec![0.0; c.tape.len()];
        l.compiled = c;
    }

    /// Length of the variable vector (all layers).
    pub fn n_vars(&self) -> usize {
        self.n_vars
    }

    /// Offset of layer `i`'s variables in `x`.
    pub fn offset(&self, i: usize) -> usize {
        self.layers[i].offset
    }

    /// The value only.
    pub fn value(&mut self, x: &[f64]) -> f64 {
        self.run(x, None).0
    }

    /// Value and gradient (written into `grad`, same layout as `x`): what Adam calls.
    pub fn value_grad(&mut self, x: &[f64], grad: &mut [f64]) -> f64 {
        self.run(x, Some(grad)).0
    }

    /// Totals, hardware and per-layer costs at `x`.
    pub fn breakdown(&mut self, x: &[f64]) -> Breakdown {
        self.run(x, None).1
    }

    fn run(&mut self, x: &[f64], mut grad: Option<&mut [f64]>) -> (f64, Breakdown) {
        let arch = &self.arch;
        let nl = arch.levels.len();
        let p = self.options.smooth_p;
        // Phase 1: requirements of every layer.
        for l in &mut self.layers {
            let xs = &x[l.offset..l.offset + l.compiled.n_vars()];
            l.compiled
                .tape
                .forward_range(xs, &[], &mut l.vals, 0..l.compiled.tape.split);
        }
        let out = |l: &NetLayer, k: usize| l.vals[l.compiled.tape.outputs[k] as usize];
        // Smooth-max hardware.
        let pes: Vec<f64> = self
            .layers
            .iter()
            .map(|l| out(l, l.compiled.outputs.req_pe))
            .collect();
        let mut w_pe = vec![0.0; pes.len()];
        let pe = smooth_max(&pes, p, &mut w_pe).max(arch.pe_min as f64);
        let mut inst = vec![0.0; nl];
        let mut w_inst: Vec<Vec<(usize, usize, f64)>> = vec![Vec::new(); nl]; // (layer, output, d/dv)
        for (lvl, slot) in inst.iter_mut().enumerate() {
            let mut vals = Vec::new();
            let mut who = Vec::new();
            for (i, l) in self.layers.iter().enumerate() {
                if let Some(&(_, k)) = l
                    .compiled
                    .outputs
                    .req_bytes
                    .iter()
                    .find(|(lv, _)| *lv == lvl)
                {
                    vals.push(out(l, k));
                    who.push((i, k));
                }
            }
            if vals.is_empty() {
                continue;
            }
            let mut g = vec![0.0; vals.len()];
            *slot = smooth_max(&vals, p, &mut g);
            w_inst[lvl] = who
                .into_iter()
                .zip(g)
                .map(|((i, k), g)| (i, k, g))
                .collect();
        }
        let fixed = self.options.fixed.as_ref();
        let mut hw = vec![fixed.map_or(pe, |h| h.pe_dim)];
        for (lvl, lv) in arch.levels.iter().enumerate() {
            let bytes = fixed.map_or(inst[lvl], |h| h.instance_bytes(arch, lvl));
            hw.push(lv.energy.at(bytes / 1024.0));
        }
        // Phase 2: latency and energy.
        let mut lat = vec![0.0; self.layers.len()];
        let mut dlat = vec![1.0; self.layers.len()];
        let mut en = vec![0.0; self.layers.len()];
        for (i, l) in self.layers.iter_mut().enumerate() {
            let xs = &x[l.offset..l.offset + l.compiled.n_vars()];
            let t = &l.compiled.tape;
            t.forward_range(xs, &hw, &mut l.vals, t.split..t.len());
            let a = l.vals[t.outputs[l.compiled.outputs.latency] as usize];
            en[i] = l.vals[t.outputs[l.compiled.outputs.energy] as usize];
            lat[i] = a;
            if let Some(c) = &self.correction {
                l.gcorr.iter_mut().for_each(|g| *g = 0.0);
                let (v, d) = c.apply(i, xs, a, &mut l.gcorr);
                lat[i] = v;
                dlat[i] = d;
            }
        }
        let total_lat: f64 = self.layers.iter().zip(&lat).map(|(l, v)| l.count * v).sum();
        let total_en: f64 = self.layers.iter().zip(&en).map(|(l, v)| l.count * v).sum();
        // The objective and, per layer, its derivatives by the layer's count-weighted latency
        // and energy (the same for every layer of one network).
        let (obj, d_lat, d_en): (f64, Vec<f64>, Vec<f64>) = match &self.options.suite {
            Some(suite) => {
                let counts: Vec<f64> = self.layers.iter().map(|l| l.count).collect();
                let costs: Vec<(f64, f64)> = lat.iter().copied().zip(en.iter().copied()).collect();
                let (lv, d) =
                    suite.ln_value(self.options.objective, &suite.totals(&counts, &costs));
                let scale = if self.options.log { 1.0 } else { lv.exp() };
                let per = |k: usize| -> Vec<f64> {
                    suite
                        .network_of
                        .iter()
                        .map(|&n| scale * if k == 0 { d[n].0 } else { d[n].1 })
                        .collect()
                };
                let v = if self.options.log { lv } else { lv.exp() };
                (v, per(0), per(1))
            }
            None => {
                let (raw, dl, de) = match self.options.objective {
                    Objective::Edp => (total_lat * total_en, total_en, total_lat),
                    Objective::Energy => (total_en, 0.0, 1.0),
                    Objective::Latency => (total_lat, 1.0, 0.0),
                };
                let (v, dl, de) = if self.options.log {
                    let r = raw.max(1e-300);
                    (r.ln(), dl / r, de / r)
                } else {
                    (raw, dl, de)
                };
                let n = self.layers.len();
                (v, vec![dl; n], vec![de; n])
            }
        };
        // Penalties.
        let pen = &self.options.penalties;
        let mut penalty = 0.0;
        let mut d_pe = 0.0;
        let mut d_inst = vec![0.0; nl];
        let hinge = |v: f64, w: f64| {
            if v > 0.0 {
                (w * v * v, 2.0 * w * v)
            } else {
                (0.0, 0.0)
            }
        };
        if let Some(pm) = self.options.bounds.pe_max {
            let (v, d) = hinge(pe.ln() - pm.ln(), pen.hardware);
            penalty += v;
            d_pe += d / pe;
        }
        for (lvl, lv) in arch.levels.iter().enumerate() {
            let Some(Some(maxb)) = self.options.bounds.physical_bytes_max.get(lvl) else {
                continue;
            };
            if inst[lvl] <= 0.0 {
                continue;
            }
            let count = lv.instance_count(pe);
            let dbl = if lv.double_buffered { 2.0 } else { 1.0 };
            let phys = inst[lvl] * count * dbl;
            let (v, d) = hinge(phys.ln() - maxb.ln(), pen.hardware);
            penalty += v;
            d_inst[lvl] += d / inst[lvl];
            let pe_pow = match lv.instances {
                crate::ir::Instances::PerPe => 2.0,
                crate::ir::Instances::PerColumn => 1.0,
                crate::ir::Instances::Single => 0.0,
            };
            d_pe += d * pe_pow / pe;
        }
        // Variables: factor >= 1 and spatial caps (linear in x, no tape needed).
        let mut per_layer_spatial_caps: Vec<(usize, Dim, f64)> = Vec::new();
        for (l, lv) in arch.levels.iter().enumerate() {
            for sd in &lv.spatial {
                let cap = match (sd.max.map(|m| m as f64), self.options.bounds.pe_max) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                if let Some(c) = cap {
                    per_layer_spatial_caps.push((l, sd.dim, c.ln()));
                }
            }
        }
        for l in &self.layers {
            let c = &l.compiled;
            for (i, &(lvl, d, sp)) in c.slots.iter().enumerate() {
                if !c.used[i] {
                    continue;
                }
                let xi = x[l.offset + i];
                let (v, dv) = hinge(-xi, pen.factor);
                penalty += v;
                let mut g = -dv;
                if sp {
                    if let Some(&(_, _, lc)) = per_layer_spatial_caps
                        .iter()
                        .find(|(a, b, _)| *a == lvl && *b == d)
                    {
                        let (v2, d2) = hinge(xi - lc, pen.spatial);
                        penalty += v2;
                        g += d2;
                    }
                }
                if let Some(gr) = grad.as_deref_mut() {
                    gr[l.offset + i] = g;
                }
            }
            for (i, _) in c.slots.iter().enumerate().filter(|(i, _)| !c.used[*i]) {
                if let Some(gr) = grad.as_deref_mut() {
                    gr[l.offset + i] = 0.0;
                }
            }
            for &(_, k) in &c.outputs.ln_backing {
                let lb = l.vals[c.tape.outputs[k] as usize];
                penalty += hinge(-lb, pen.factor).0;
            }
        }
        let value = obj + penalty;
        let hardware = Hardware {
            pe_dim: pe,
            usable_bytes: (0..nl)
                .map(|l| inst[l] * arch.levels[l].instance_count(pe))
                .collect(),
        };
        let breakdown = Breakdown {
            latency: total_lat,
            energy_uj: total_en,
            edp: total_lat * total_en,
            objective: obj,
            penalty,
            hardware,
            layers: lat.iter().copied().zip(en.iter().copied()).collect(),
        };
        let Some(grad) = grad else {
            return (value, breakdown);
        };
        // Reverse phase 2 (latency, energy) of every layer; collect hardware adjoints.
        let mut g_hw = vec![0.0; 1 + nl];
        for (i, l) in self.layers.iter_mut().enumerate() {
            let c = &l.compiled;
            let t = &c.tape;
            l.adj.iter_mut().for_each(|a| *a = 0.0);
            l.ghw.iter_mut().for_each(|a| *a = 0.0);
            let dl = l.count * d_lat[i];
            l.adj[t.outputs[c.outputs.latency] as usize] += dl * dlat[i];
            l.adj[t.outputs[c.outputs.energy] as usize] += l.count * d_en[i];
            let gx = &mut grad[l.offset..l.offset + c.n_vars()];
            t.reverse_range(&l.vals, &mut l.adj, gx, &mut l.ghw, t.split..t.len());
            if self.correction.is_some() {
                for (g, gc) in gx.iter_mut().zip(&l.gcorr) {
                    *g += dl * gc;
                }
            }
            for (a, b) in g_hw.iter_mut().zip(&l.ghw) {
                *a += b;
            }
        }
        // Hardware adjoints back to the requirements through the smooth maxima (fixed hardware
        // does not move with the requirements).
        if self.options.fixed.is_none() {
            d_pe += g_hw[0];
            for (lvl, lv) in arch.levels.iter().enumerate() {
                if let crate::ir::AccessEnergy::Linear { per_kib, .. } = lv.energy {
                    d_inst[lvl] += g_hw[1 + lvl] * per_kib / 1024.0;
                }
            }
        }
        for (i, l) in self.layers.iter_mut().enumerate() {
            let c = &l.compiled;
            let t = &c.tape;
            l.adj[t.outputs[c.outputs.req_pe] as usize] += d_pe * w_pe[i];
            for &(_, k) in &c.outputs.ln_backing {
                let lb = l.vals[t.outputs[k] as usize];
                l.adj[t.outputs[k] as usize] -= hinge(-lb, pen.factor).1;
            }
        }
        for (lvl, ws) in w_inst.iter().enumerate() {
            for &(i, k, w) in ws {
                let l = &mut self.layers[i];
                let slot = l.compiled.tape.outputs[k] as usize;
                l.adj[slot] += d_inst[lvl] * w;
            }
        }
        for l in &mut self.layers {
            let c = &l.compiled;
            let gx = &mut grad[l.offset..l.offset + c.n_vars()];
            c.tape
                .reverse_range(&l.vals, &mut l.adj, gx, &mut l.ghw, 0..c.tape.split);
        }
        (value, breakdown)
    }
}
