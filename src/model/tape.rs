//! A flat tape: the compiled form of one layer's cost expressions, evaluated forward (values) and
//! in reverse (vector-Jacobian products) over a `Vec<f64>` of slots, one slot per op.
//!
//! Ops are in topological order and split in two phases: `ops[..split]` do not read the hardware
//! inputs (tile requirements, log backing factors), `ops[split..]` do (latency, energy). The network
//! cost runs phase 1 of every layer, derives the shared hardware, then runs phase 2.

/// One operation; operands are earlier slot indices.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Op {
    Const(f64),
    /// A variable (log of a tile factor).
    Var(u32),
    /// A hardware input (pe_dim, energy per access).
    Hw(u32),
    Add(u32, u32),
    Sub(u32, u32),
    Mul(u32, u32),
    Div(u32, u32),
    Min(u32, u32),
    Max(u32, u32),
    Exp(u32),
    Ln(u32),
}

impl Op {
    /// The same operation with every operand slot renamed by `m` (used when ops are pruned or
    /// reordered); leaves are unchanged.
    pub fn remap(self, m: impl Fn(u32) -> u32) -> Op {
        match self {
            Op::Add(a, b) => Op::Add(m(a), m(b)),
            Op::Sub(a, b) => Op::Sub(m(a), m(b)),
            Op::Mul(a, b) => Op::Mul(m(a), m(b)),
            Op::Div(a, b) => Op::Div(m(a), m(b)),
            Op::Min(a, b) => Op::Min(m(a), m(b)),
            Op::Max(a, b) => Op::Max(m(a), m(b)),
            Op::Exp(a) => Op::Exp(m(a)),
            Op::Ln(a) => Op::Ln(m(a)),
            leaf => leaf,
        }
    }

    /// Operand slots.
    pub fn args(&self) -> (Option<u32>, Option<u32>) {
        match *self {
            Op::Const(_) | Op::Var(_) | Op::Hw(_) => (None, None),
            Op::Exp(a) | Op::Ln(a) => (Some(a), None),
            Op::Add(a, b)
            | Op::Sub(a, b)
            | Op::Mul(a, b)
            | Op::Div(a, b)
            | Op::Min(a, b)
            | Op::Max(a, b) => (Some(a), Some(b)),
        }
    }
}

/// A compiled expression DAG with named outputs.
#[derive(Clone, Debug, PartialEq)]
pub struct Tape {
    pub ops: Vec<Op>,
    /// Output slots.
    pub outputs: Vec<u32>,
    pub n_vars: usize,
    pub n_hw: usize,
    /// `ops[..split]` do not depend on hardware inputs.
    pub split: usize,
}

impl Tape {
    /// Reorder `ops` so that every op independent of the hardware inputs comes first (keeping
    /// topological order), and record the split. Output slots are remapped.
    pub fn new(ops: Vec<Op>, outputs: Vec<u32>, n_vars: usize, n_hw: usize) -> Tape {
        let mut dep = vec![false; ops.len()];
        for (i, op) in ops.iter().enumerate() {
            dep[i] = match op.args() {
                _ if matches!(op, Op::Hw(_)) => true,
                (Some(a), Some(b)) => dep[a as usize] || dep[b as usize],
                (Some(a), None) => dep[a as usize],
                _ => false,
            };
        }
        let mut order: Vec<usize> = (0..ops.len()).filter(|&i| !dep[i]).collect();
        let split = order.len();
        order.extend((0..ops.len()).filter(|&i| dep[i]));
        let mut new_of = vec![0u32; ops.len()];
        for (n, &o) in order.iter().enumerate() {
            new_of[o] = n as u32;
        }
        let m = |a: u32| new_of[a as usize];
        let new_ops = order.iter().map(|&o| ops[o].remap(m)).collect();
        Tape {
            ops: new_ops,
            outputs: outputs.into_iter().map(m).collect(),
            n_vars,
            n_hw,
            split,
        }
    }

    /// Number of slots a caller must provide.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the tape has no ops.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Evaluate `ops[range]` into `vals` (earlier slots must already hold their values).
    #[inline]
    pub fn forward_range(
        &self,
        x: &[f64],
        hw: &[f64],
        vals: &mut [f64],
        range: std::ops::Range<usize>,
    ) {
        for i in range {
            let v = match self.ops[i] {
                Op::Const(c) => c,
                Op::Var(k) => x[k as usize],
                Op::Hw(k) => hw[k as usize],
                Op::Add(a, b) => vals[a as usize] + vals[b as usize],
                Op::Sub(a, b) => vals[a as usize] - vals[b as usize],
                Op::Mul(a, b) => vals[a as usize] * vals[b as usize],
                Op::Div(a, b) => vals[a as usize] / vals[b as usize],
                Op::Min(a, b) => vals[a as usize].min(vals[b as usize]),
                Op::Max(a, b) => vals[a as usize].max(vals[b as usize]),
                Op::Exp(a) => vals[a as usize].exp(),
                Op::Ln(a) => vals[a as usize].ln(),
            };
            vals[i] = v;
        }
    }

    /// Evaluate every op.
    pub fn forward(&self, x: &[f64], hw: &[f64], vals: &mut [f64]) {
        self.forward_range(x, hw, vals, 0..self.ops.len());
    }

    /// Propagate adjoints backwards over `ops[range]` (in reverse). `adj` holds the seeds (output
    /// cotangents) and accumulates; variable and hardware gradients are added to `gx` and `ghw`.
    /// Min/max send the whole adjoint to the selected operand (the first one on a tie).
    #[inline]
    pub fn reverse_range(
        &self,
        vals: &[f64],
        adj: &mut [f64],
        gx: &mut [f64],
        ghw: &mut [f64],
        range: std::ops::Range<usize>,
    ) {
        for i in range.rev() {
            let g = adj[i];
            if g == 0.0 {
                continue;
            }
            match self.ops[i] {
                Op::Const(_) => {}
                Op::Var(k) => gx[k as usize] += g,
                Op::Hw(k) => ghw[k as usize] += g,
                Op::Add(a, b) => {
                    adj[a as usize] += g;
                    adj[b as usize] += g;
                }
                Op::Sub(a, b) => {
                    adj[a as usize] += g;
                    adj[b as usize] -= g;
                }
                Op::Mul(a, b) => {
                    let (va, vb) = (vals[a as usize], vals[b as usize]);
                    adj[a as usize] += g * vb;
                    adj[b as usize] += g * va;
                }
                Op::Div(a, b) => {
                    let vb = vals[b as usize];
                    adj[a as usize] += g / vb;
                    adj[b as usize] -= g * vals[i] / vb;
                }
                Op::Min(a, b) => {
                    if vals[a as usize] <= vals[b as usize] {
                        adj[a as usize] += g;
                    } else {
                        adj[b as usize] += g;
                    }
                }
                Op::Max(a, b) => {
                    if vals[a as usize] >= vals[b as usize] {
                        adj[a as usize] += g;
                    } else {
                        adj[b as usize] += g;
                    }
                }
                Op::Exp(a) => adj[a as usize] += g * vals[i],
                Op::Ln(a) => adj[a as usize] += g / vals[a as usize],
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_and_reverse_of_a_small_tape() {
        // f = max(exp(x0) * h0, x1) / ln(h1), outputs [f]; phase split puts exp(x0) first.
        let ops = vec![
            Op::Var(0),
            Op::Hw(0),
            Op::Exp(0),
            Op::Mul(2, 1),
            Op::Var(1),
            Op::Max(3, 4),
            Op::Hw(1),
            Op::Ln(6),
            Op::Div(5, 7),
        ];
        let t = Tape::new(ops, vec![8], 2, 2);
        assert_eq!(t.split, 3); // Var0, Exp, Var1: the ops that read no hardware input come first
        let (x, hw) = ([0.5, 0.1], [2.0, 3.0]);
        let mut vals = vec![0.0; t.len()];
        t.forward(&x, &hw, &mut vals);
        let f = (0.5f64.exp() * 2.0).max(0.1) / 3.0f64.ln();
        assert!((vals[t.outputs[0] as usize] - f).abs() < 1e-15);
        let mut adj = vec![0.0; t.len()];
        adj[t.outputs[0] as usize] = 1.0;
        let (mut gx, mut ghw) = ([0.0; 2], [0.0; 2]);
        t.reverse_range(&vals, &mut adj, &mut gx, &mut ghw, 0..t.len());
        assert!((gx[0] - f).abs() < 1e-12);
        assert_eq!(gx[1], 0.0);
        assert!((ghw[0] - 0.5f64.exp() / 3.0f64.ln()).abs() < 1e-12);
        assert!((ghw[1] + f / (3.0 * 3.0f64.ln())).abs() < 1e-12);
    }
}
