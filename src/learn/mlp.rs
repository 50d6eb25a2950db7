//! A small multilayer perceptron with hand-written backpropagation, trained by Adam with L2
//! weight decay and early stopping; plus its gradient with respect to its inputs, which the
//! search needs.
//!
//! Deterministic: initialisation and shuffling draw from [`crate::util::Rng`], and all sums run
//! in a fixed order on one thread (ndarray's matrix products do not thread here).

use crate::util::Rng;
use ndarray::{Array1, Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

/// Hidden-layer nonlinearity; both are smooth so that the search's gradients are continuous.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    Tanh,
    /// The tanh approximation of GELU.
    Gelu,
}

const GELU_C: f64 = 0.797_884_560_802_865_4; // sqrt(2/pi)

impl Activation {
    fn f(self, x: f64) -> f64 {
        match self {
            Activation::Tanh => x.tanh(),
            Activation::Gelu => 0.5 * x * (1.0 + (GELU_C * (x + 0.044715 * x * x * x)).tanh()),
        }
    }
    fn df(self, x: f64) -> f64 {
        match self {
            Activation::Tanh => {
                let t = x.tanh();
                1.0 - t * t
            }
            Activation::Gelu => {
                let inner = GELU_C * (x + 0.044715 * x * x * x);
                let t = inner.tanh();
                0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * GELU_C * (1.0 + 3.0 * 0.044715 * x * x)
            }
        }
    }
}

/// A fully connected network `in -> hidden... -> 1`; weights are stored `in x out`.
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp {
    pub w: Vec<Array2<f64>>,
    pub b: Vec<Array1<f64>>,
    pub act: Activation,
}

/// The JSON form of one layer (ndarray has no serde support without its default features).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DenseJson {
    pub inputs: usize,
    pub outputs: usize,
    /// Row-major `inputs x outputs`.
    pub w: Vec<f64>,
    pub b: Vec<f64>,
}

impl Mlp {
    /// Xavier-uniform weights, zero biases.
    pub fn new(sizes: &[usize], act: Activation, rng: &mut Rng) -> Mlp {
        let mut w = Vec::new();
        let mut b = Vec::new();
        for win in sizes.windows(2) {
            let (i, o) = (win[0], win[1]);
            let lim = (6.0 / (i + o) as f64).sqrt();
            w.push(Array2::from_shape_fn((i, o), |_| {
                (2.0 * rng.next_f64() - 1.0) * lim
            }));
            b.push(Array1::zeros(o));
        }
        Mlp { w, b, act }
    }

    /// Number of inputs.
    pub fn inputs(&self) -> usize {
        self.w.first().map_or(0, |w| w.nrows())
    }

    /// Serialisable form.
    pub fn to_json(&self) -> Vec<DenseJson> {
        self.w
            .iter()
            .zip(&self.b)
            .map(|(w, b)| DenseJson {
                inputs: w.nrows(),
                outputs: w.ncols(),
                w: w.iter().copied().collect(),
                b: b.to_vec(),
            })
            .collect()
    }

    /// Rebuild from the JSON form, checking shapes chain and end in one output.
    pub fn from_json(layers: &[DenseJson], act: Activation) -> Result<Mlp, String> {
        let mut w = Vec::new();
        let mut b = Vec::new();
        for (k, l) in layers.iter().enumerate() {
            if k > 0 && layers[k - 1].outputs != l.inputs {
                return Err(format!(
                    "layer {k} has {} inputs, the previous has {} outputs",
                    l.inputs,
                    layers[k - 1].outputs
                ));
            }
            if l.b.len() != l.outputs || l.w.len() != l.inputs * l.outputs {
                return Err(format!("layer {k} has the wrong number of weights"));
            }
            if l.w.iter().chain(&l.b).any(|x| !x.is_finite()) {
                return Err(format!("layer {k} has a non-finite weight"));
            }
            w.push(
                Array2::from_shape_vec((l.inputs, l.outputs), l.w.clone())
                    .map_err(|e| e.to_string())?,
            );
            b.push(Array1::from(l.b.clone()));
        }
        if layers.last().map(|l| l.outputs) != Some(1) {
            return Err("the network must end in one output".into());
        }
        Ok(Mlp { w, b, act })
    }

    /// Outputs for a batch (rows of `x`).
    pub fn predict(&self, x: ArrayView2<f64>) -> Array1<f64> {
        let mut h = x.to_owned();
        let last = self.w.len() - 1;
        for (k, (w, b)) in self.w.iter().zip(&self.b).enumerate() {
            let mut z = h.dot(w) + b;
            if k < last {
                z.mapv_inplace(|v| self.act.f(v));
            }
            h = z;
        }
        h.column(0).to_owned()
    }

    /// Output for one input and its gradient with respect to that input (added into `grad`).
    pub fn output_and_input_grad(&self, x: &[f64], grad: &mut [f64]) -> f64 {
        let mut pre: Vec<Vec<f64>> = Vec::with_capacity(self.w.len());
        let mut h = x.to_vec();
        let last = self.w.len() - 1;
        for (k, (w, b)) in self.w.iter().zip(&self.b).enumerate() {
            let mut z = b.to_vec();
            for (i, &hi) in h.iter().enumerate() {
                if hi != 0.0 {
                    for (zj, wij) in z.iter_mut().zip(w.row(i)) {
                        *zj += hi * wij;
                    }
                }
            }
            pre.push(z.clone());
            h = if k < last {
                z.iter().map(|&v| self.act.f(v)).collect()
            } else {
                z
            };
        }
        let y = h[0];
        // Backward: d y / d (pre-activation) per layer.
        let mut delta = vec![1.0];
        for k in (0..self.w.len()).rev() {
            if k < last {
                for (d, &z) in delta.iter_mut().zip(&pre[k]) {
                    *d *= self.act.df(z);
                }
            }
            let w = &self.w[k];
            delta = (0..w.nrows())
                .map(|i| w.row(i).iter().zip(&delta).map(|(a, b)| a * b).sum())
                .collect();
        }
        for (g, d) in grad.iter_mut().zip(&delta) {
            *g += d;
        }
        y
    }
}

/// Default L2 penalty ([`TrainConfig::weight_decay`]) of `dosa fit` and every training run.
pub const WEIGHT_DECAY: f64 = 0.02;
/// Default Huber threshold of `dosa fit` ([`TrainConfig::huber`], in log latency: errors beyond
/// a factor of about 2 count linearly). Why: a few random training rows measure 30-150x what
/// any model says; with this and [`WEIGHT_DECAY`] cross-validation by layer scores 27.2 %
/// against 30.1 % under squared error (weight decay 0.05), at 0.3 points of MAPE on the
/// searched rows (models/README.md).
pub const HUBER: f64 = 0.7;

/// Settings of one training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub hidden: Vec<usize>,
    pub act: Activation,
    pub lr: f64,
    /// L2 penalty on weights (not biases), added to the data loss.
    pub weight_decay: f64,
    pub batch: usize,
    pub max_epochs: usize,
    /// Stop when the validation loss has not improved for this many epochs.
    pub patience: usize,
    /// Rows per epoch, drawn afresh from the shuffled training rows (`None`: all of them). With
    /// heavily repeated rows (`fit --searched-weight`) it keeps an epoch, and so the fit's time
    /// and the early stopping's clock, at the size of the unrepeated data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch_rows: Option<usize>,
    /// Huber threshold of the data loss: errors beyond it count linearly, so a handful of rows
    /// no model explains cannot dominate the fit (`None`: squared error). [`train`] reads it in
    /// the standardised target's units; `dosa fit` (and the config a model file records) gives
    /// it in log latency, and each fit divides it by its target's spread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub huber: Option<f64>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            hidden: vec![16],
            act: Activation::Tanh,
            lr: 2e-3,
            weight_decay: WEIGHT_DECAY,
            batch: 64,
            max_epochs: 1500,
            patience: 200,
            epoch_rows: None,
            huber: None,
        }
    }
}

/// What a run ended with.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainOutcome {
    pub net: Mlp,
    /// Epoch (1-based) whose weights were kept.
    pub best_epoch: usize,
    /// Validation loss (the data loss, standardised) at that epoch; training loss without
    /// a validation set.
    pub best_loss: f64,
}

struct Adam {
    m: Vec<f64>,
    v: Vec<f64>,
    t: i32,
}

impl Adam {
    fn step(&mut self, params: &mut [f64], grads: &[f64], lr: f64) {
        const B1: f64 = 0.9;
        const B2: f64 = 0.999;
        self.t += 1;
        let c1 = 1.0 - B1.powi(self.t);
        let c2 = 1.0 - B2.powi(self.t);
        for i in 0..params.len() {
            self.m[i] = B1 * self.m[i] + (1.0 - B1) * grads[i];
            self.v[i] = B2 * self.v[i] + (1.0 - B2) * grads[i] * grads[i];
            params[i] -= lr * (self.m[i] / c1) / ((self.v[i] / c2).sqrt() + 1e-8);
        }
    }
}

fn data_loss(net: &Mlp, x: ArrayView2<f64>, y: &Array1<f64>, huber: Option<f64>) -> f64 {
    let p = net.predict(x);
    (&p - y)
        .mapv(|d| huber_loss(d, huber))
        .mean()
        .unwrap_or(0.0)
}

/// Squared error, or with a threshold `h` its Huber form (continuous in value and slope).
fn huber_loss(d: f64, h: Option<f64>) -> f64 {
    match h {
        Some(h) if d.abs() > h => h * (2.0 * d.abs() - h),
        _ => d * d,
    }
}

/// Gradients of the batch loss (data loss + weight decay) for every weight and bias, layer by layer.
fn gradients(
    net: &Mlp,
    x: ArrayView2<f64>,
    y: ArrayView2<f64>,
    wd: f64,
    huber: Option<f64>,
) -> (Vec<Array2<f64>>, Vec<Array1<f64>>) {
    let n = x.nrows() as f64;
    let last = net.w.len() - 1;
    let mut acts: Vec<Array2<f64>> = vec![x.to_owned()];
    let mut pres: Vec<Array2<f64>> = Vec::new();
    for (k, (w, b)) in net.w.iter().zip(&net.b).enumerate() {
        let z = acts[k].dot(w) + b;
        let a = if k < last {
            z.mapv(|v| net.act.f(v))
        } else {
            z.clone()
        };
        pres.push(z);
        acts.push(a);
    }
    let mut delta = (&acts[last + 1] - &y).mapv(|d| match huber {
        Some(h) => d.clamp(-h, h),
        None => d,
    }) * (2.0 / n);
    let mut gw = vec![Array2::zeros((0, 0)); net.w.len()];
    let mut gb = vec![Array1::zeros(0); net.w.len()];
    for k in (0..net.w.len()).rev() {
        if k < last {
            let act = net.act;
            delta.zip_mut_with(&pres[k], |d, &z| *d *= act.df(z));
        }
        gw[k] = acts[k].t().dot(&delta) + &(&net.w[k] * (2.0 * wd));
        gb[k] = delta.sum_axis(Axis(0));
        if k > 0 {
            delta = delta.dot(&net.w[k].t());
        }
    }
    (gw, gb)
}

/// Train on `(x, y)` (standardised), early-stopping on `val` when given, else running
/// `max_epochs`. `tick` is called once per epoch (for a progress bar).
pub fn train(
    x: ArrayView2<f64>,
    y: &Array1<f64>,
    val: Option<(ArrayView2<f64>, &Array1<f64>)>,
    cfg: &TrainConfig,
    rng: &mut Rng,
    tick: &(dyn Fn() + Sync),
) -> TrainOutcome {
    let mut sizes = vec![x.ncols()];
    sizes.extend(&cfg.hidden);
    sizes.push(1);
    let mut net = Mlp::new(&sizes, cfg.act, rng);
    let n_params: usize =
        net.w.iter().map(|w| w.len()).sum::<usize>() + net.b.iter().map(|b| b.len()).sum::<usize>();
    let mut adam = Adam {
        m: vec![0.0; n_params],
        v: vec![0.0; n_params],
        t: 0,
    };
    let mut best = TrainOutcome {
        net: net.clone(),
        best_epoch: 0,
        best_loss: f64::INFINITY,
    };
    let n = x.nrows();
    let mut order: Vec<usize> = (0..n).collect();
    let y2 = y.clone().insert_axis(Axis(1));
    let mut since_best = 0;
    let mut flat = vec![0.0; n_params];
    let mut gflat = vec![0.0; n_params];
    for epoch in 1..=cfg.max_epochs {
        // Fisher-Yates with the seeded generator.
        for i in (1..n).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            order.swap(i, j);
        }
        // Cosine decay of the step size over the maximum run.
        let lr = cfg.lr
            * (0.55 + 0.45 * (std::f64::consts::PI * epoch as f64 / cfg.max_epochs as f64).cos());
        let take = cfg.epoch_rows.map_or(n, |r| r.max(1)).min(n);
        for chunk in order[..take].chunks(cfg.batch.max(1)) {
            let xb = x.select(Axis(0), chunk);
            let yb = y2.select(Axis(0), chunk);
            let (gw, gb) = gradients(&net, xb.view(), yb.view(), cfg.weight_decay, cfg.huber);
            let mut o = 0;
            for k in 0..net.w.len() {
                for (p, g) in net.w[k].iter().zip(gw[k].iter()) {
                    flat[o] = *p;
                    gflat[o] = *g;
                    o += 1;
                }
                for (p, g) in net.b[k].iter().zip(gb[k].iter()) {
                    flat[o] = *p;
                    gflat[o] = *g;
                    o += 1;
                }
            }
            adam.step(&mut flat, &gflat, lr);
            let mut o = 0;
            for k in 0..net.w.len() {
                for p in net.w[k].iter_mut() {
                    *p = flat[o];
                    o += 1;
                }
                for p in net.b[k].iter_mut() {
                    *p = flat[o];
                    o += 1;
                }
            }
        }
        tick();
        match val {
            Some((xv, yv)) => {
                let l = data_loss(&net, xv, yv, cfg.huber);
                if l < best.best_loss {
                    best = TrainOutcome {
                        net: net.clone(),
                        best_epoch: epoch,
                        best_loss: l,
                    };
                    since_best = 0;
                } else {
                    since_best += 1;
                    if since_best >= cfg.patience {
                        break;
                    }
                }
            }
            None => {
                if epoch == cfg.max_epochs {
                    let l = data_loss(&net, x, y, cfg.huber);
                    best = TrainOutcome {
                        net: net.clone(),
                        best_epoch: epoch,
                        best_loss: l,
                    };
                }
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_a_smooth_function() {
        let mut rng = Rng::new(3);
        let n = 200;
        let x = Array2::from_shape_fn((n, 2), |_| 2.0 * rng.next_f64() - 1.0);
        let y = Array1::from_shape_fn(n, |i| (x[[i, 0]] * 2.0).sin() + x[[i, 1]] * x[[i, 1]]);
        let var = y.var(0.0);
        let cfg = TrainConfig {
            hidden: vec![16, 16],
            max_epochs: 300,
            batch: 32,
            lr: 5e-3,
            weight_decay: 1e-4,
            ..Default::default()
        };
        let out = train(x.view(), &y, None, &cfg, &mut Rng::new(1), &|| ());
        assert!(
            out.best_loss < 0.05 * var,
            "loss {} vs variance {var}",
            out.best_loss
        );
    }

    #[test]
    fn backprop_matches_finite_differences() {
        for act in [Activation::Tanh, Activation::Gelu] {
            let mut rng = Rng::new(9);
            let net = Mlp::new(&[3, 5, 4, 1], act, &mut rng);
            let x = Array2::from_shape_fn((6, 3), |_| rng.normal());
            let y = Array2::from_shape_fn((6, 1), |_| rng.normal());
            let wd = 0.01;
            let loss = |n: &Mlp| {
                let p = n.predict(x.view());
                let l2: f64 = n.w.iter().map(|w| w.mapv(|v| v * v).sum()).sum();
                (&p - &y.column(0)).mapv(|d| d * d).mean().unwrap() + wd * l2
            };
            let (gw, gb) = gradients(&net, x.view(), y.view(), wd, None);
            let h = 1e-6;
            for k in 0..net.w.len() {
                for idx in [(0, 0), (net.w[k].nrows() - 1, net.w[k].ncols() - 1)] {
                    let mut a = net.clone();
                    a.w[k][idx] += h;
                    let mut b = net.clone();
                    b.w[k][idx] -= h;
                    let fd = (loss(&a) - loss(&b)) / (2.0 * h);
                    assert!(
                        (fd - gw[k][idx]).abs() < 1e-6,
                        "{act:?} w{k}{idx:?}: {fd} vs {}",
                        gw[k][idx]
                    );
                }
                let mut a = net.clone();
                a.b[k][0] += h;
                let mut b = net.clone();
                b.b[k][0] -= h;
                let fd = (loss(&a) - loss(&b)) / (2.0 * h);
                assert!((fd - gb[k][0]).abs() < 1e-6);
            }
            // Input gradient.
            let x0 = [0.3, -0.7, 1.1];
            let mut g = [0.0; 3];
            let y0 = net.output_and_input_grad(&x0, &mut g);
            let one = |v: [f64; 3]| {
                net.predict(Array2::from_shape_vec((1, 3), v.to_vec()).unwrap().view())[0]
            };
            assert!((y0 - one(x0)).abs() < 1e-12);
            for i in 0..3 {
                let (mut a, mut b) = (x0, x0);
                a[i] += h;
                b[i] -= h;
                let fd = (one(a) - one(b)) / (2.0 * h);
                assert!(
                    (fd - g[i]).abs() < 1e-7,
                    "{act:?} input {i}: {fd} vs {}",
                    g[i]
                );
            }
        }
    }

    #[test]
    fn huber_gradient_matches_finite_differences_and_caps_outliers() {
        let mut rng = Rng::new(4);
        let net = Mlp::new(&[2, 3, 1], Activation::Tanh, &mut rng);
        let x = Array2::from_shape_fn((5, 2), |_| rng.normal());
        // Targets far from the outputs on some rows, so both branches of the loss are taken.
        let y = Array2::from_shape_fn((5, 1), |(i, _)| if i % 2 == 0 { 6.0 } else { 0.1 });
        let h = Some(0.5);
        let loss = |n: &Mlp| {
            let p = n.predict(x.view());
            (&p - &y.column(0))
                .mapv(|d| huber_loss(d, h))
                .mean()
                .unwrap()
        };
        let (gw, gb) = gradients(&net, x.view(), y.view(), 0.0, h);
        let e = 1e-6;
        for k in 0..net.w.len() {
            let mut a = net.clone();
            a.w[k][(0, 0)] += e;
            let mut b = net.clone();
            b.w[k][(0, 0)] -= e;
            let fd = (loss(&a) - loss(&b)) / (2.0 * e);
            assert!(
                (fd - gw[k][(0, 0)]).abs() < 1e-6,
                "w{k}: {fd} vs {}",
                gw[k][(0, 0)]
            );
            let mut a = net.clone();
            a.b[k][0] += e;
            let mut b = net.clone();
            b.b[k][0] -= e;
            let fd = (loss(&a) - loss(&b)) / (2.0 * e);
            assert!((fd - gb[k][0]).abs() < 1e-6, "b{k}: {fd} vs {}", gb[k][0]);
        }
        // Beyond the threshold the loss grows linearly: the output bias's gradient from one row
        // is bounded by 2h / n whatever the error.
        let one = |t: f64| {
            let y1 = Array2::from_elem((1, 1), t);
            gradients(&net, x.slice(ndarray::s![0..1, ..]), y1.view(), 0.0, h).1[1][0]
        };
        assert!((one(100.0) - one(1000.0)).abs() < 1e-12);
        assert!((one(100.0).abs() - 1.0).abs() < 1e-12);
        assert_eq!(huber_loss(0.3, h), 0.09);
        assert_eq!(huber_loss(2.0, None), 4.0);
    }

    #[test]
    fn json_round_trip_and_shape_checks() {
        let net = Mlp::new(&[4, 3, 1], Activation::Gelu, &mut Rng::new(5));
        let j = net.to_json();
        assert_eq!(Mlp::from_json(&j, Activation::Gelu).unwrap(), net);
        let mut bad = j.clone();
        bad[1].inputs = 2;
        assert!(Mlp::from_json(&bad, Activation::Gelu).is_err());
        let mut nan = j;
        nan[0].b[0] = f64::NAN;
        assert!(Mlp::from_json(&nan, Activation::Gelu).is_err());
    }
}
