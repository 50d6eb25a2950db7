//! Symbolic form of the cost rules: a tracing [`Algebra`] that records every operation the generic
//! rules perform, and an egg pass that simplifies the recorded expressions before they are compiled
//! to a [`Tape`].
//!
//! The tracer records literally (no sharing beyond reused Rust values, no folding), so the raw DAG
//! is what the rules compute. egg then does the work of an optimising compiler on it:
//! - hash-consing: the same tile product computed for several tensors, levels and heads becomes
//!   one node (CSE);
//! - constant folding (an analysis): pinned factors are literal 1s, layer sizes and strides are
//!   constants;
//! - algebra: `x*1`, `x+0`, `min(a,a)`, `(a*b)/b`, commutativity (so that `a*b` and `b*a` share);
//! - log-of-product rules: `ln(a*b) = ln a + ln b`, `ln(a/b)`, `ln(exp x) = x`, so the log backing
//!   factor `ln(D / prod exp(x_i))` becomes the linear `ln D - sum x_i`;
//! - guarded max/min factoring: `max(a*b, a*c) = a*max(b,c)` only when `a > 0` is proven by the
//!   analysis (exponentials, positive constants, hardware inputs, and products/sums of those).
//!
//! Every rule is sound for the values the model produces (finite, and positive where guarded);
//! a test evaluates the raw and the simplified tapes at random points.

use super::algebra::Algebra;
use super::tape::{Op, Tape};
use egg::{
    define_language, rewrite, Analysis, CostFunction, DidMerge, EGraph, Extractor, Id, Language,
    Rewrite, Runner,
};
use std::cell::RefCell;
use std::fmt;
use std::str::FromStr;

/// The tracing algebra: scalars are node indices of a growing op list.
#[derive(Debug, Default)]
pub struct Tracer {
    ops: RefCell<Vec<Op>>,
}

impl Tracer {
    /// An empty trace.
    pub fn new() -> Tracer {
        Tracer::default()
    }
    fn push(&self, op: Op) -> u32 {
        let mut ops = self.ops.borrow_mut();
        ops.push(op);
        (ops.len() - 1) as u32
    }
    /// A variable (log factor) input.
    pub fn var(&self, k: u32) -> u32 {
        self.push(Op::Var(k))
    }
    /// A hardware input.
    pub fn hw(&self, k: u32) -> u32 {
        self.push(Op::Hw(k))
    }
    /// The recorded ops.
    pub fn into_ops(self) -> Vec<Op> {
        self.ops.into_inner()
    }
}

impl Algebra for Tracer {
    type S = u32;
    fn lit(&self, v: f64) -> u32 {
        self.push(Op::Const(v))
    }
    fn add(&self, a: u32, b: u32) -> u32 {
        self.push(Op::Add(a, b))
    }
    fn sub(&self, a: u32, b: u32) -> u32 {
        self.push(Op::Sub(a, b))
    }
    fn mul(&self, a: u32, b: u32) -> u32 {
        self.push(Op::Mul(a, b))
    }
    fn div(&self, a: u32, b: u32) -> u32 {
        self.push(Op::Div(a, b))
    }
    fn min(&self, a: u32, b: u32) -> u32 {
        self.push(Op::Min(a, b))
    }
    fn max(&self, a: u32, b: u32) -> u32 {
        self.push(Op::Max(a, b))
    }
    fn exp(&self, a: u32) -> u32 {
        self.push(Op::Exp(a))
    }
    fn ln(&self, a: u32) -> u32 {
        self.push(Op::Ln(a))
    }
}

/// The ops reachable from `outputs`, renumbered in their original (topological) order.
pub fn prune(ops: &[Op], outputs: &[u32]) -> (Vec<Op>, Vec<u32>) {
    let mut live = vec![false; ops.len()];
    for &o in outputs {
        live[o as usize] = true;
    }
    for i in (0..ops.len()).rev() {
        if live[i] {
            let (a, b) = ops[i].args();
            for x in [a, b].into_iter().flatten() {
                live[x as usize] = true;
            }
        }
    }
    let mut new_of = vec![u32::MAX; ops.len()];
    let mut out = Vec::new();
    for i in 0..ops.len() {
        if live[i] {
            new_of[i] = out.len() as u32;
            out.push(ops[i].remap(|a| new_of[a as usize]));
        }
    }
    (out, outputs.iter().map(|&o| new_of[o as usize]).collect())
}

/// A finite `f64` constant usable as an e-graph leaf (ordered and hashed by its bits).
#[derive(Clone, Copy, Debug)]
pub struct Num(f64);

impl Num {
    fn new(v: f64) -> Num {
        // One representation of zero, so that 0 and -0 are the same leaf.
        Num(if v == 0.0 { 0.0 } else { v })
    }
}
impl PartialEq for Num {
    fn eq(&self, o: &Num) -> bool {
        self.0.to_bits() == o.0.to_bits()
    }
}
impl Eq for Num {}
impl PartialOrd for Num {
    fn partial_cmp(&self, o: &Num) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Num {
    fn cmp(&self, o: &Num) -> std::cmp::Ordering {
        self.0.total_cmp(&o.0)
    }
}
impl std::hash::Hash for Num {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.0.to_bits().hash(h)
    }
}
impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
impl FromStr for Num {
    type Err = ();
    fn from_str(s: &str) -> Result<Num, ()> {
        let v: f64 = s.parse().map_err(|_| ())?;
        if v.is_finite() {
            Ok(Num::new(v))
        } else {
            Err(())
        }
    }
}

/// An input leaf: `x<k>` (variable) or `h<k>` (hardware input).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Leaf {
    pub hw: bool,
    pub index: u32,
}
impl fmt::Display for Leaf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", if self.hw { 'h' } else { 'x' }, self.index)
    }
}
impl FromStr for Leaf {
    type Err = ();
    fn from_str(s: &str) -> Result<Leaf, ()> {
        let (hw, rest) = match s.as_bytes().first() {
            Some(b'x') => (false, &s[1..]),
            Some(b'h') => (true, &s[1..]),
            _ => return Err(()),
        };
        Ok(Leaf {
            hw,
            index: rest.parse().map_err(|_| ())?,
        })
    }
}

define_language! {
    /// The e-graph language of cost expressions.
    pub enum CostExpr {
        "+" = Add([Id; 2]),
        "-" = Sub([Id; 2]),
        "*" = Mul([Id; 2]),
        "/" = Div([Id; 2]),
        "min" = Min([Id; 2]),
        "max" = Max([Id; 2]),
        "exp" = Exp(Id),
        "ln" = Ln(Id),
        Num(Num),
        Leaf(Leaf),
    }
}

/// Per e-class facts: its constant value, if known, and whether it is provably positive.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Facts {
    pub value: Option<f64>,
    pub positive: bool,
}

/// Constant folding and positivity.
#[derive(Default)]
pub struct Fold;

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

impl Analysis<CostExpr> for Fold {
    type Data = Facts;

    fn make(egraph: &mut EGraph<CostExpr, Fold>, enode: &CostExpr, _id: Id) -> Facts {
        let d = |i: &Id| egraph[*i].data;
        let c = |i: &Id| egraph[*i].data.value;
        let (value, positive) = match enode {
            CostExpr::Num(n) => (Some(n.0), n.0 > 0.0),
            CostExpr::Leaf(l) => (None, l.hw),
            CostExpr::Add([a, b]) => ((|| finite(c(a)? + c(b)?))(), d(a).positive && d(b).positive),
            CostExpr::Sub([a, b]) => ((|| finite(c(a)? - c(b)?))(), false),
            CostExpr::Mul([a, b]) => ((|| finite(c(a)? * c(b)?))(), d(a).positive && d(b).positive),
            CostExpr::Div([a, b]) => (
                (|| {
                    let (x, y) = (c(a)?, c(b)?);
                    if y == 0.0 {
                        None
                    } else {
                        finite(x / y)
                    }
                })(),
                d(a).positive && d(b).positive,
            ),
            CostExpr::Min([a, b]) => (
                (|| Some(c(a)?.min(c(b)?)))(),
                d(a).positive && d(b).positive,
            ),
            CostExpr::Max([a, b]) => (
                (|| Some(c(a)?.max(c(b)?)))(),
                d(a).positive || d(b).positive,
            ),
            CostExpr::Exp(a) => ((|| finite(c(a)?.exp()))(), true),
            CostExpr::Ln(a) => (c(a).filter(|v| *v > 0.0).map(f64::ln), false),
        };
        let positive = positive || value.is_some_and(|v| v > 0.0);
        Facts {
            value: value.map(|v| if v == 0.0 { 0.0 } else { v }),
            positive,
        }
    }

    fn merge(&mut self, a: &mut Facts, b: Facts) -> DidMerge {
        let mut changed_a = false;
        if a.value.is_none() && b.value.is_some() {
            a.value = b.value;
            changed_a = true;
        }
        if !a.positive && b.positive {
            a.positive = true;
            changed_a = true;
        }
        let changed_b = (b.value.is_none() && a.value.is_some()) || (!b.positive && a.positive);
        DidMerge(changed_a, changed_b)
    }

    fn modify(egraph: &mut EGraph<CostExpr, Fold>, id: Id) {
        if let Some(v) = egraph[id].data.value {
            let n = egraph.add(CostExpr::Num(Num::new(v)));
            egraph.union(id, n);
        }
    }
}

fn is_positive(var: &str) -> impl Fn(&mut EGraph<CostExpr, Fold>, Id, &egg::Subst) -> bool {
    let v: egg::Var = var.parse().expect("a pattern variable");
    move |eg, _, s| eg[s[v]].data.positive
}

/// The rewrite rules (see the module doc).
pub fn rules(commutativity: bool) -> Vec<Rewrite<CostExpr, Fold>> {
    let mut r: Vec<Rewrite<CostExpr, Fold>> = vec![
        rewrite!("add-0"; "(+ ?a 0)" => "?a"),
        rewrite!("sub-0"; "(- ?a 0)" => "?a"),
        rewrite!("sub-self"; "(- ?a ?a)" => "0"),
        rewrite!("mul-1"; "(* ?a 1)" => "?a"),
        rewrite!("mul-0"; "(* ?a 0)" => "0"),
        rewrite!("div-1"; "(/ ?a 1)" => "?a"),
        rewrite!("div-self"; "(/ ?a ?a)" => "1" if is_positive("?a")),
        rewrite!("mul-div"; "(/ (* ?a ?b) ?b)" => "?a" if is_positive("?b")),
        rewrite!("mul-div-l"; "(/ (* ?b ?a) ?b)" => "?a" if is_positive("?b")),
        rewrite!("min-self"; "(min ?a ?a)" => "?a"),
        rewrite!("max-self"; "(max ?a ?a)" => "?a"),
        rewrite!("max-factor"; "(max (* ?a ?b) (* ?a ?c))" => "(* ?a (max ?b ?c))" if is_positive("?a")),
        rewrite!("min-factor"; "(min (* ?a ?b) (* ?a ?c))" => "(* ?a (min ?b ?c))" if is_positive("?a")),
        rewrite!("max-div"; "(max (/ ?b ?a) (/ ?c ?a))" => "(/ (max ?b ?c) ?a)" if is_positive("?a")),
        rewrite!("ln-mul"; "(ln (* ?a ?b))" => "(+ (ln ?a) (ln ?b))" if is_positive("?a") if is_positive("?b")),
        rewrite!("ln-div"; "(ln (/ ?a ?b))" => "(- (ln ?a) (ln ?b))" if is_positive("?a") if is_positive("?b")),
        rewrite!("ln-exp"; "(ln (exp ?a))" => "?a"),
        rewrite!("exp-ln"; "(exp (ln ?a))" => "?a" if is_positive("?a")),
        rewrite!("factor-add"; "(+ (* ?a ?b) (* ?a ?c))" => "(* ?a (+ ?b ?c))"),
    ];
    if commutativity {
        r.push(rewrite!("comm-add"; "(+ ?a ?b)" => "(+ ?b ?a)"));
        r.push(rewrite!("comm-mul"; "(* ?a ?b)" => "(* ?b ?a)"));
        r.push(rewrite!("comm-min"; "(min ?a ?b)" => "(min ?b ?a)"));
        r.push(rewrite!("comm-max"; "(max ?a ?b)" => "(max ?b ?a)"));
    }
    r
}

/// Extraction cost: roughly the evaluation cost of an op (forward + reverse), summed over the tree.
struct OpCost;

impl CostFunction<CostExpr> for OpCost {
    type Cost = f64;
    fn cost<C: FnMut(Id) -> f64>(&mut self, enode: &CostExpr, mut costs: C) -> f64 {
        let own = match enode {
            CostExpr::Num(_) | CostExpr::Leaf(_) => 0.1,
            CostExpr::Add(_)
            | CostExpr::Sub(_)
            | CostExpr::Mul(_)
            | CostExpr::Min(_)
            | CostExpr::Max(_) => 1.0,
            CostExpr::Div(_) => 3.0,
            CostExpr::Exp(_) | CostExpr::Ln(_) => 12.0,
        };
        let total = enode.fold(own, |s, id| s + costs(id));
        total.min(1e300)
    }
}

/// Limits and switches of the egg pass.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EggOptions {
    pub iter_limit: usize,
    pub node_limit: usize,
    pub time_limit_ms: u64,
    /// Add commutativity rules (more sharing, larger e-graph).
    pub commutativity: bool,
}

impl Default for EggOptions {
    fn default() -> Self {
        EggOptions {
            iter_limit: 8,
            node_limit: 40_000,
            time_limit_ms: 2_000,
            commutativity: true,
        }
    }
}

/// What the egg pass did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EggReport {
    pub input_ops: usize,
    pub eclasses: usize,
    pub enodes: usize,
    pub iterations: usize,
    pub output_ops: usize,
    pub stop: String,
}

/// Simplify a pruned op DAG with egg and extract a DAG again (shared across all outputs).
pub fn simplify(ops: &[Op], outputs: &[u32], opts: &EggOptions) -> (Vec<Op>, Vec<u32>, EggReport) {
    let mut eg: EGraph<CostExpr, Fold> = EGraph::new(Fold);
    let mut ids: Vec<Id> = Vec::with_capacity(ops.len());
    for op in ops {
        let i = |a: u32| ids[a as usize];
        let node = match *op {
            Op::Const(c) => CostExpr::Num(Num::new(c)),
            Op::Var(k) => CostExpr::Leaf(Leaf {
                hw: false,
                index: k,
            }),
            Op::Hw(k) => CostExpr::Leaf(Leaf { hw: true, index: k }),
            Op::Add(a, b) => CostExpr::Add([i(a), i(b)]),
            Op::Sub(a, b) => CostExpr::Sub([i(a), i(b)]),
            Op::Mul(a, b) => CostExpr::Mul([i(a), i(b)]),
            Op::Div(a, b) => CostExpr::Div([i(a), i(b)]),
            Op::Min(a, b) => CostExpr::Min([i(a), i(b)]),
            Op::Max(a, b) => CostExpr::Max([i(a), i(b)]),
            Op::Exp(a) => CostExpr::Exp(i(a)),
            Op::Ln(a) => CostExpr::Ln(i(a)),
        };
        let id = eg.add(node);
        ids.push(id);
    }
    eg.rebuild();
    let roots: Vec<Id> = outputs.iter().map(|&o| ids[o as usize]).collect();
    let runner = Runner::default()
        .with_egraph(eg)
        .with_iter_limit(opts.iter_limit)
        .with_node_limit(opts.node_limit)
        .with_time_limit(std::time::Duration::from_millis(opts.time_limit_ms))
        .run(&rules(opts.commutativity));
    let stop = format!("{:?}", runner.stop_reason);
    let iterations = runner.iterations.len();
    let eg = runner.egraph;
    let ex = Extractor::new(&eg, OpCost);
    let mut out: Vec<Op> = Vec::new();
    let mut memo: std::collections::HashMap<Id, u32> = std::collections::HashMap::new();
    let mut out_ids = Vec::with_capacity(roots.len());
    for &r in &roots {
        out_ids.push(emit(&eg, &ex, eg.find(r), &mut memo, &mut out));
    }
    let report = EggReport {
        input_ops: ops.len(),
        eclasses: eg.number_of_classes(),
        enodes: eg.total_number_of_nodes(),
        iterations,
        output_ops: out.len(),
        stop,
    };
    (out, out_ids, report)
}

/// Emit the best node of an e-class (and, first, its children) into `out`, sharing by class.
fn emit(
    eg: &EGraph<CostExpr, Fold>,
    ex: &Extractor<OpCost, CostExpr, Fold>,
    class: Id,
    memo: &mut std::collections::HashMap<Id, u32>,
    out: &mut Vec<Op>,
) -> u32 {
    let class = eg.find(class);
    if let Some(&s) = memo.get(&class) {
        return s;
    }
    let node = ex.find_best_node(class).clone();
    let mut kids = Vec::with_capacity(2);
    for &c in node.children() {
        kids.push(emit(eg, ex, c, memo, out));
    }
    let op = match node {
        CostExpr::Num(n) => Op::Const(n.0),
        CostExpr::Leaf(l) if l.hw => Op::Hw(l.index),
        CostExpr::Leaf(l) => Op::Var(l.index),
        CostExpr::Add(_) => Op::Add(kids[0], kids[1]),
        CostExpr::Sub(_) => Op::Sub(kids[0], kids[1]),
        CostExpr::Mul(_) => Op::Mul(kids[0], kids[1]),
        CostExpr::Div(_) => Op::Div(kids[0], kids[1]),
        CostExpr::Min(_) => Op::Min(kids[0], kids[1]),
        CostExpr::Max(_) => Op::Max(kids[0], kids[1]),
        CostExpr::Exp(_) => Op::Exp(kids[0]),
        CostExpr::Ln(_) => Op::Ln(kids[0]),
    };
    out.push(op);
    let s = (out.len() - 1) as u32;
    memo.insert(class, s);
    s
}

/// How to turn a trace into a tape.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Simplify {
    /// Only drop dead ops (the raw trace).
    None,
    /// Run egg.
    Egg(EggOptions),
}

/// Compile recorded ops into a tape.
pub fn compile(
    ops: &[Op],
    outputs: &[u32],
    n_vars: usize,
    n_hw: usize,
    how: Simplify,
) -> (Tape, Option<EggReport>) {
    let (pruned, outs) = prune(ops, outputs);
    match how {
        Simplify::None => (Tape::new(pruned, outs, n_vars, n_hw), None),
        Simplify::Egg(o) => {
            let (s, souts, rep) = simplify(&pruned, &outs, &o);
            (Tape::new(s, souts, n_vars, n_hw), Some(rep))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::Rng;

    #[test]
    fn egg_folds_shares_and_linearises_logs() {
        let t = Tracer::new();
        let (x0, x1, h0) = (t.var(0), t.var(1), t.hw(0));
        let (f0, f1) = (t.exp(x0), t.exp(x1));
        let one = t.lit(1.0);
        // tile = f0 * 1 * f1 computed twice, backing = 12 / (f0 * f1); outputs use both.
        let a = t.mul(t.mul(f0, one), f1);
        let b = t.mul(f1, t.mul(f0, one));
        let back = t.div(t.lit(12.0), t.mul(f0, f1));
        let lnb = t.ln(back);
        let m = t.max(t.mul(h0, a), t.mul(h0, b));
        let ops = t.into_ops();
        let outs = vec![lnb, m];
        let (raw, _) = compile(&ops, &outs, 2, 1, Simplify::None);
        let (fast, rep) = compile(&ops, &outs, 2, 1, Simplify::Egg(EggOptions::default()));
        assert!(fast.len() < raw.len(), "{} vs {}", fast.len(), raw.len());
        // ln(12/(e^x0 e^x1)) is linear: no ln and only the exps the max needs.
        let lns = fast.ops.iter().filter(|o| matches!(o, Op::Ln(_))).count();
        assert_eq!(lns, 0, "{:?} {:?}", fast.ops, rep);
        let mut rng = Rng::new(3);
        for _ in 0..50 {
            let x = [rng.normal(), rng.normal()];
            let hw = [0.1 + rng.next_f64()];
            let (mut v1, mut v2) = (vec![0.0; raw.len()], vec![0.0; fast.len()]);
            raw.forward(&x, &hw, &mut v1);
            fast.forward(&x, &hw, &mut v2);
            for (o1, o2) in raw.outputs.iter().zip(&fast.outputs) {
                let (a, b) = (v1[*o1 as usize], v2[*o2 as usize]);
                assert!((a - b).abs() <= 1e-12 * a.abs().max(1.0), "{a} {b}");
            }
        }
    }
}
