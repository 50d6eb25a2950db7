//! A trained latency model: feature normalisation, an ensemble of MLPs, and the versioned JSON
//! file `dosa fit` writes and `dosa predict` and the search read.

use super::analytical::{log_terms, Roofline};
use super::features::{self, Set, N_FACTOR_VARS, N_TERMS, N_VARS};
use super::mlp::{Activation, DenseJson, Mlp, TrainConfig};
use crate::ir::{Layer, Mapping, Predictor};
use crate::model::stats::ErrorStats;
use ndarray::Array2;
use serde::{Deserialize, Serialize};

/// Standardised features are clipped to this many standard deviations, so a layer far outside
/// the training data cannot drive the networks into wild extrapolation.
pub const Z_CLIP: f64 = 4.0;

/// Standardise one raw feature (clipped to [`Z_CLIP`]).
pub fn standardise(v: f64, mean: f64, scale: f64) -> f64 {
    ((v - mean) * scale).clamp(-Z_CLIP, Z_CLIP)
}

/// Identifies the file kind.
pub const FORMAT: &str = "dosa-latency-model";
/// Bumped whenever features or the file layout change; older files are refused.
pub const VERSION: u32 = 5;

/// Held-out figures of one split, stored in the model file for the record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitReport {
    /// `layer` (held-out layers never seen in training), `row` (random rows), `searched`
    /// (searched mappings of layers never trained on) or `gemmini-auto` (Gemmini's own tiles
    /// of those layers).
    pub split: String,
    /// 1 for a single hold-out; k for k-fold cross-validation (every row held out once).
    pub folds: usize,
    /// Training rows of one fold.
    pub train_rows: usize,
    pub test_rows: usize,
    pub test_layers: usize,
    /// Per predictor (`analytical`, `dnn`, `both`): accuracy on the held-out rows.
    pub accuracy: Vec<HeldOut>,
}

/// One predictor's held-out figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeldOut {
    pub predictor: String,
    pub mape: f64,
    pub median_ape: f64,
    pub spearman: f64,
    /// Mean epoch early stopping kept (learned predictors only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mean_epoch: Option<f64>,
}

impl HeldOut {
    /// Figures of a predictor named `name`.
    pub fn new(name: &str, s: ErrorStats, mean_epoch: Option<f64>) -> HeldOut {
        HeldOut {
            predictor: name.to_string(),
            mape: s.mape,
            median_ape: s.median_ape,
            spearman: s.spearman,
            mean_epoch,
        }
    }
}

/// The figures of [`ErrorStats`] this module reports, with serde both ways (figures in percent, as `dosa predict --json` prints).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccuracyJson {
    pub mape: f64,
    pub median_ape: f64,
    pub spearman: f64,
}

impl From<ErrorStats> for AccuracyJson {
    fn from(a: ErrorStats) -> Self {
        AccuracyJson {
            mape: a.mape,
            median_ape: a.median_ape,
            spearman: a.spearman,
        }
    }
}

/// How the shipped model was trained.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingInfo {
    pub seed: u64,
    /// Training rows, searched rows included.
    pub rows: usize,
    /// Of which rows of searched mappings (trained with weight `searched_weight`).
    pub searched_rows: usize,
    pub searched_weight: usize,
    pub layers: usize,
    /// Networks averaged per predictor.
    pub ensemble: usize,
    pub config: TrainConfig,
    pub held_out: Vec<SplitReport>,
    /// The training layers ([`super::data::layer_key`], sorted): `dosa predict` says when a file's
    /// layers were trained on, since its figures then are not a test.
    pub layer_keys: Vec<String>,
    /// The training rows ([`super::data::row_key`], sorted).
    pub row_keys: Vec<String>,
}

/// The model file: one or more learned predictors. Field order is the JSON order, so output is
/// byte-stable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelFile {
    pub format: String,
    pub version: u32,
    /// The predictor a search uses when it names none.
    pub default: Predictor,
    pub training: TrainingInfo,
    pub predictors: Vec<LearnedFile>,
}

fn one() -> f64 {
    1.0
}

/// One learned predictor's normalisation constants and networks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LearnedFile {
    /// `dnn` (cycles = roofline proxy x exp(output)) or `both` (cycles = analytical x exp(output)).
    pub predictor: Predictor,
    pub activation: Activation,
    pub features: Vec<String>,
    pub feature_mean: Vec<f64>,
    /// `1/std`, or 0 for a feature that was constant in training (it is then ignored).
    pub feature_scale: Vec<f64>,
    pub target_mean: f64,
    pub target_std: f64,
    /// Added to the log output: the MAPE calibration fitted on the members' held-out rows.
    pub log_shift: f64,
    /// The factor the network's standardised output is multiplied by, fitted with `log_shift`
    /// on the members' held-out layers: how far the correction transfers to layers the network
    /// never saw, so an over-confident correction is pulled back toward the physical offset's
    /// model. 1 (no shrinking) in files written before it existed.
    #[serde(default = "one")]
    pub shrink: f64,
    /// Early-stopping epoch of each member.
    pub member_epochs: Vec<usize>,
    pub members: Vec<Vec<DenseJson>>,
}

/// How much of a file a model was trained on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Overlap {
    /// Rows whose layer and mapping are training rows.
    pub rows: usize,
    /// Distinct layers of the file among the training layers, of `file_layers`.
    pub layers: usize,
    pub file_layers: usize,
}

/// The differentiable point a search asks about: a layer, the integer mapping that fixes loop
/// orders, and the relaxed log tile factors (and, for `both`, the log roofline terms).
#[derive(Clone, Copy, Debug)]
pub struct LearnInput<'a> {
    pub layer: &'a Layer,
    /// The current rounded mapping: its loop orders and which loops are non-unit are used.
    pub mapping: &'a Mapping,
    /// Log tile factors of L0..L2, laid out by [`features::var_index`].
    pub log_factors: &'a [f64; N_FACTOR_VARS],
    /// Natural logs of the analytical roofline terms `[compute, accumulator, scratchpad, dram]`
    /// in cycles; required by `both`, ignored by `dnn`.
    pub log_terms: Option<[f64; N_TERMS]>,
}

/// A loaded model file: the learned predictors it holds.
#[derive(Clone, Debug, PartialEq)]
pub struct LatencyModel {
    pub file: ModelFile,
    learned: Vec<Learned>,
}

impl LatencyModel {
    /// Check a parsed file and build its networks.
    pub fn from_file(file: ModelFile) -> Result<LatencyModel, String> {
        if file.format != FORMAT {
            return Err(format!(
                "not a dosa latency model (format `{}`)",
                file.format
            ));
        }
        if file.version != VERSION {
            return Err(format!(
                "model file version {} is not supported (this dosa reads version {VERSION}); refit it with `dosa fit`",
                file.version
            ));
        }
        let learned = file
            .predictors
            .iter()
            .cloned()
            .map(Learned::from_file)
            .collect::<Result<Vec<_>, _>>()?;
        for (i, l) in learned.iter().enumerate() {
            if learned[..i].iter().any(|o| o.predictor() == l.predictor()) {
                return Err(format!(
                    "predictor `{}` appears twice",
                    l.predictor().name()
                ));
            }
        }
        if !learned.iter().any(|l| l.predictor() == file.default) {
            return Err(format!(
                "the default predictor `{}` is not in the file",
                file.default.name()
            ));
        }
        Ok(LatencyModel { file, learned })
    }

    /// Read and check a model file.
    pub fn load(path: &std::path::Path) -> Result<LatencyModel, String> {
        let bytes =
            crate::util::read_file_capped(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| format!("{}: not a model file: not UTF-8 text", path.display()))?;
        let file: ModelFile = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not a model file: {e}", path.display()))?;
        LatencyModel::from_file(file).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The JSON bytes `dosa fit` writes (pretty, newline-terminated, deterministic).
    pub fn to_json(&self) -> Vec<u8> {
        let mut s = serde_json::to_vec_pretty(&self.file).expect("a model file always serialises");
        s.push(b'\n');
        s
    }

    /// Which of `samples` the model was trained on, by row and by layer: figures on those are
    /// not a held-out test.
    pub fn overlap(&self, samples: &[super::data::Sample]) -> Overlap {
        use super::data::{layer_key, row_key};
        let t = &self.file.training;
        let rows = samples
            .iter()
            .filter(|s| {
                t.row_keys
                    .binary_search(&row_key(&s.layer, &s.mapping))
                    .is_ok()
            })
            .count();
        let mut keys: Vec<String> = samples.iter().map(|s| layer_key(&s.layer)).collect();
        keys.sort_unstable();
        keys.dedup();
        let layers = keys
            .iter()
            .filter(|k| t.layer_keys.binary_search(k).is_ok())
            .count();
        Overlap {
            rows,
            layers,
            file_layers: keys.len(),
        }
    }

    /// The learned predictors in file order.
    pub fn learned(&self) -> &[Learned] {
        &self.learned
    }

    /// The learned predictor of a kind, if the file has it.
    pub fn get(&self, p: Predictor) -> Option<&Learned> {
        self.learned.iter().find(|l| l.predictor() == p)
    }

    /// For `both`: the log correction of an integer mapping, value only
    /// (see [`Learned::correction_value`]).
    pub fn correction_value(
        &self,
        layer: &Layer,
        mapping: &Mapping,
        log_terms: Option<&[f64; N_TERMS]>,
    ) -> Result<f64, String> {
        self.get(Predictor::Both)
            .ok_or("this model file has no `both` predictor; fit it with `--predictor both`")?
            .correction_value(layer, mapping, log_terms)
    }

    /// For `both`: the log correction on the analytical latency at a relaxed point, and its
    /// gradient (see [`Learned::correction_and_grad`]). A search adds it to its log analytical latency.
    pub fn correction_and_grad(
        &self,
        inp: &LearnInput,
        grad_out: &mut [f64],
    ) -> Result<f64, String> {
        self.get(Predictor::Both)
            .ok_or("this model file has no `both` predictor; fit it with `--predictor both`")?
            .correction_and_grad(inp, grad_out)
    }
}

/// One ready-to-use learned predictor.
#[derive(Clone, Debug, PartialEq)]
pub struct Learned {
    pub file: LearnedFile,
    nets: Vec<Mlp>,
    /// Position of the base feature (looked up once: names are strings).
    base: usize,
    /// Position of the feature added to the output ([`features::offset_index`]).
    offset: usize,
}

impl Learned {
    /// Check one predictor's part of a file and build its networks.
    pub fn from_file(file: LearnedFile) -> Result<Learned, String> {
        let set = match file.predictor {
            Predictor::Dnn => Set::MappingOnly,
            Predictor::Both => Set::WithRoofline,
            Predictor::Analytical => {
                return Err(
                    "a model file holds `dnn` or `both` predictors, not `analytical`".into(),
                )
            }
        };
        if file.features != features::names(set) {
            return Err(
                "the model's features differ from this dosa's; refit it with `dosa fit`".into(),
            );
        }
        let n = file.features.len();
        if file.feature_mean.len() != n || file.feature_scale.len() != n {
            return Err("feature normalisation has the wrong length".into());
        }
        let finite = file
            .feature_mean
            .iter()
            .chain(&file.feature_scale)
            .all(|x| x.is_finite());
        let std_ok = file.target_std.is_finite() && file.target_std > 0.0;
        if !finite
            || !file.target_mean.is_finite()
            || !std_ok
            || !file.log_shift.is_finite()
            || !(0.0..=1.0).contains(&file.shrink)
        {
            return Err(
                "the model's normalisation constants are not finite (or `shrink` is outside 0..=1)"
                    .into(),
            );
        }
        if file.members.is_empty() {
            return Err("the model has no networks".into());
        }
        let nets = file
            .members
            .iter()
            .map(|m| Mlp::from_json(m, file.activation))
            .collect::<Result<Vec<_>, _>>()?;
        if nets.iter().any(|m| m.inputs() != n) {
            return Err(format!("a network does not take the {n} features"));
        }
        Ok(Learned {
            file,
            nets,
            base: features::base_index(set),
            offset: features::offset_index(set),
        })
    }

    /// Which predictor this model implements.
    pub fn predictor(&self) -> Predictor {
        self.file.predictor
    }

    fn set(&self) -> Set {
        if self.file.predictor == Predictor::Both {
            Set::WithRoofline
        } else {
            Set::MappingOnly
        }
    }

    /// Network output in log space for raw (unstandardised) features: the ensemble mean.
    fn output_raw(&self, x: &[f64], grad: Option<&mut [f64]>) -> f64 {
        let z: Vec<f64> = x
            .iter()
            .zip(&self.file.feature_mean)
            .zip(&self.file.feature_scale)
            .map(|((v, m), s)| standardise(*v, *m, *s))
            .collect();
        let k = self.nets.len() as f64;
        let mut gz = vec![0.0; z.len()];
        let mut y = 0.0;
        for net in &self.nets {
            y += net.output_and_input_grad(&z, &mut gz);
        }
        if let Some(g) = grad {
            // d out / d x = tstd / k * sum d net / d z * scale (zero where z was clipped)
            for (i, (gi, gzi)) in g.iter_mut().zip(&gz).enumerate() {
                let inside = z[i].abs() < Z_CLIP;
                *gi = if inside {
                    gzi * self.file.feature_scale[i] * self.file.target_std * self.file.shrink / k
                } else {
                    0.0
                };
            }
            g[self.offset] += 1.0;
        }
        self.log_output(y / k, x[self.offset])
    }

    /// The model's log output from the ensemble's mean raw output and the row's physical offset:
    /// the one formula [`Learned::output_raw`] and [`Learned::predict_rows`] share.
    fn log_output(&self, net_mean: f64, offset: f64) -> f64 {
        self.file.shrink * net_mean * self.file.target_std
            + self.file.target_mean
            + self.file.log_shift
            + offset
    }

    /// Shared body of the two gradient calls: (log correction, base feature) with the gradient
    /// of the correction in `grad_corr` and of the base in `grad_base`.
    fn eval_grad(
        &self,
        inp: &LearnInput,
        grad_corr: &mut [f64],
        grad_base: &mut [f64],
    ) -> Result<(f64, f64), String> {
        let terms = match self.set() {
            Set::WithRoofline => Some(
                inp.log_terms
                    .ok_or("the `both` predictor needs the roofline terms")?,
            ),
            Set::MappingOnly => None,
        };
        if grad_corr.len() != N_VARS {
            return Err(format!(
                "the gradient has {N_VARS} entries, not {}",
                grad_corr.len()
            ));
        }
        let duals =
            features::with_jacobian(inp.layer, inp.mapping, inp.log_factors, terms.as_ref());
        let x: Vec<f64> = duals.iter().map(|d| d.v).collect();
        let mut gx = vec![0.0; x.len()];
        let y = self.output_raw(&x, Some(&mut gx));
        grad_corr.iter_mut().for_each(|g| *g = 0.0);
        for (d, gxi) in duals.iter().zip(&gx) {
            if *gxi != 0.0 {
                for (g, dv) in grad_corr.iter_mut().zip(d.g.iter()) {
                    *g += gxi * dv;
                }
            }
        }
        let base = &duals[self.base];
        grad_base.copy_from_slice(&base.g);
        Ok((y, base.v))
    }

    /// The learned log correction at a relaxed point and its gradient `grad_out` (length
    /// [`N_VARS`]): entries `0..N_FACTOR_VARS` are d/d log factor (laid out by
    /// [`features::var_index`]), the last [`N_TERMS`] d/d log roofline term.
    ///
    /// Predicted cycles = exp(base) x exp(correction), where the base is the analytical latency
    /// for `both` (so the search multiplies its own analytical latency by `exp(correction)` and
    /// chains the roofline-term entries through its model) and a mapping-only roofline proxy for
    /// `dnn` (use [`Learned::log_cycles_and_grad`] there).
    pub fn correction_and_grad(
        &self,
        inp: &LearnInput,
        grad_out: &mut [f64],
    ) -> Result<f64, String> {
        let mut gb = [0.0; N_VARS];
        Ok(self.eval_grad(inp, grad_out, &mut gb)?.0)
    }

    /// Predicted log cycles at a relaxed point and their gradient (same layout as
    /// [`Learned::correction_and_grad`]); for `dnn` this is what a search minimises.
    pub fn log_cycles_and_grad(
        &self,
        inp: &LearnInput,
        grad_out: &mut [f64],
    ) -> Result<f64, String> {
        let mut gb = [0.0; N_VARS];
        let (c, b) = self.eval_grad(inp, grad_out, &mut gb)?;
        for (g, x) in grad_out.iter_mut().zip(gb) {
            *g += x;
        }
        Ok(c + b)
    }

    /// The learned log correction of one integer mapping, value only: what scoring a rounded
    /// design needs, without the forward-mode gradient (several times cheaper). For `both`,
    /// `log_terms` are the logs of the analytical roofline terms.
    pub fn correction_value(
        &self,
        layer: &Layer,
        mapping: &Mapping,
        log_terms: Option<&[f64; N_TERMS]>,
    ) -> Result<f64, String> {
        let t = match self.set() {
            Set::WithRoofline => {
                Some(log_terms.ok_or("the `both` predictor needs the roofline terms")?)
            }
            Set::MappingOnly => None,
        };
        let mut x = Vec::with_capacity(self.file.features.len());
        features::values(layer, mapping, t, &mut x);
        Ok(self.output_raw(&x, None))
    }

    /// Raw feature rows for a batch of integer mappings (roofline terms are computed for `both`).
    pub fn feature_matrix(
        &self,
        points: &[(&Layer, &Mapping)],
        roofline: Option<&dyn Roofline>,
    ) -> Result<(Array2<f64>, Vec<f64>), String> {
        feature_matrix(self.set(), points, roofline)
    }

    /// Predicted cycles of a batch of integer mappings.
    pub fn predict(
        &self,
        points: &[(&Layer, &Mapping)],
        roofline: Option<&dyn Roofline>,
    ) -> Result<Vec<f64>, String> {
        let (x, analytical) = self.feature_matrix(points, roofline)?;
        Ok(self.predict_rows(&x, &analytical))
    }

    /// Predicted cycles from raw features and (for `both`) the analytical cycles.
    pub fn predict_rows(&self, x: &Array2<f64>, analytical: &[f64]) -> Vec<f64> {
        let mut z = x.clone();
        for mut row in z.rows_mut() {
            for ((v, m), s) in row
                .iter_mut()
                .zip(&self.file.feature_mean)
                .zip(&self.file.feature_scale)
            {
                *v = standardise(*v, *m, *s);
            }
        }
        let mut sum = ndarray::Array1::<f64>::zeros(x.nrows());
        for net in &self.nets {
            sum += &net.predict(z.view());
        }
        let k = self.nets.len() as f64;
        let (bi, oi) = (self.base, self.offset);
        sum.iter()
            .enumerate()
            .map(|(i, s)| {
                let out = self.log_output(s / k, x[[i, oi]]);
                // `both`: the base feature is ln(analytical), up to the one-cycle floor.
                let base = if self.file.predictor == Predictor::Both {
                    analytical[i].max(1.0)
                } else {
                    x[[i, bi]].exp()
                };
                crate::util::finite_or(base * out.exp(), base)
            })
            .collect()
    }
}

/// Raw features of each point plus its analytical cycles (0 without a roofline source).
pub fn feature_matrix(
    set: Set,
    points: &[(&Layer, &Mapping)],
    roofline: Option<&dyn Roofline>,
) -> Result<(Array2<f64>, Vec<f64>), String> {
    let width = features::names(set).len();
    let mut x = Array2::zeros((points.len(), width));
    let mut analytical = vec![0.0; points.len()];
    let mut row = Vec::with_capacity(width);
    for (i, (layer, mapping)) in points.iter().enumerate() {
        let terms = match (set, roofline) {
            (Set::WithRoofline, None) => {
                return Err("the `both` predictor needs the analytical model".into())
            }
            (_, Some(r)) => {
                let t = r.terms(layer, mapping)?;
                analytical[i] = t.into_iter().fold(0.0, f64::max);
                Some(log_terms(&t))
            }
            (Set::MappingOnly, None) => None,
        };
        let t = if set == Set::WithRoofline {
            terms.as_ref()
        } else {
            None
        };
        features::values(layer, mapping, t, &mut row);
        for (j, v) in row.iter().enumerate() {
            x[[i, j]] = *v;
        }
    }
    Ok((x, analytical))
}
