//! Networks from ONNX models, for `dosa import onnx`.
//!
//! The ONNX protobuf is decoded by a small hand-written reader of the few messages we need
//! (model, graph, node, attribute, tensor, value info), and shapes are inferred here for the ops
//! that lead to Conv/Gemm/MatMul in common models. This avoids `tract-onnx`, whose dependency
//! tree (tract-core, tract-hir, prost, ...) costs several minutes of a clean CI build for what is
//! a few hundred lines of work (README "Import ONNX" has the measurement).
//!
//! Every Conv (groups, strides, dilations, pads), Gemm and MatMul becomes a layer; identical
//! layers merge into `count`. A grouped conv with `g` groups is `g` identical convs of
//! `C/g -> K/g` channels (dosa has no groups field), so it becomes the per-group layer with
//! `count` multiplied by `g`. A batched MatMul whose right side is shared (rank 2) folds the batch
//! into `M`; one whose both sides are batched is one layer per independent matmul (`count`).
//! Every other op is listed in the notes, never silently dropped.

use super::fmt::format_file;
use super::print::network_def;
use crate::ir::{Layer, Network};
use crate::syntax::ast::{File, Item};
use std::collections::{BTreeMap, HashMap};

// ---------------------------------------------------------------------------------------------
// Protobuf wire format.

/// One field of a protobuf message: its number and value.
enum Val<'a> {
    Varint(u64),
    Fixed64,
    Bytes(&'a [u8]),
    Fixed32,
}

/// Reader over the fields of one message; every malformed byte is an error, never a panic.
struct Msg<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Msg<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Msg { buf, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err("truncated data (a number runs past the end)".into());
            };
            self.pos += 1;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("malformed number (more than 10 bytes)".into())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or("truncated data (a field runs past the end)")?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// The next field, or `None` at the end of the message.
    fn next_field(&mut self) -> Result<Option<(u64, Val<'a>)>, String> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let (num, wt) = (key >> 3, key & 7);
        if num == 0 {
            return Err("malformed data (field number 0)".into());
        }
        let v = match wt {
            0 => Val::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Val::Fixed64
            }
            2 => {
                let n = self.varint()?;
                let n = usize::try_from(n).map_err(|_| "malformed length")?;
                Val::Bytes(self.take(n)?)
            }
            5 => {
                self.take(4)?;
                Val::Fixed32
            }
            _ => return Err(format!("malformed data (wire type {wt})")),
        };
        Ok(Some((num, v)))
    }
}

fn string(b: &[u8]) -> Result<String, String> {
    String::from_utf8(b.to_vec()).map_err(|_| "a name is not UTF-8".to_string())
}

/// Repeated int64s, packed or not, appended to `out`.
fn ints(v: Val, out: &mut Vec<i64>) -> Result<(), String> {
    match v {
        Val::Varint(x) => out.push(x as i64),
        Val::Bytes(b) => {
            let mut m = Msg::new(b);
            while m.pos < b.len() {
                out.push(m.varint()? as i64);
            }
        }
        _ => return Err("malformed integer list".into()),
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The subset of ONNX messages we read.

/// An attribute value (only the kinds the ops we handle use).
#[derive(Clone, Debug, Default)]
struct Attr {
    i: Option<i64>,
    ints: Vec<i64>,
    s: Option<String>,
    t: Option<Tensor>,
}

#[derive(Clone, Debug, Default)]
struct Node {
    inputs: Vec<String>,
    outputs: Vec<String>,
    name: String,
    op: String,
    attrs: HashMap<String, Attr>,
}

/// A tensor's shape and, for small integer tensors, its values (shapes for Reshape).
#[derive(Clone, Debug, Default)]
struct Tensor {
    name: String,
    dims: Vec<i64>,
    ints: Option<Vec<i64>>,
}

/// A dimension of a declared input: a size or a symbol (`batch`, `N`, ...).
#[derive(Clone, Debug)]
enum Dim {
    Value(i64),
    Param(String),
}

#[derive(Clone, Debug, Default)]
struct Graph {
    nodes: Vec<Node>,
    inits: Vec<Tensor>,
    inputs: Vec<(String, Option<Vec<Dim>>)>,
    value_info: Vec<(String, Option<Vec<Dim>>)>,
}

fn read_tensor(b: &[u8]) -> Result<Tensor, String> {
    let mut t = Tensor::default();
    let mut dtype = 0;
    let (mut i64s, mut i32s, mut raw) = (Vec::new(), Vec::new(), None);
    let mut m = Msg::new(b);
    while let Some((n, v)) = m.next_field()? {
        match (n, v) {
            (1, v) => ints(v, &mut t.dims)?,
            (2, Val::Varint(x)) => dtype = x,
            (5, v) => ints(v, &mut i32s)?,
            (7, v) => ints(v, &mut i64s)?,
            (8, Val::Bytes(s)) => t.name = string(s)?,
            (9, Val::Bytes(s)) => raw = Some(s),
            _ => {}
        }
    }
    // INT64 = 7, INT32 = 6: only these carry shapes.
    t.ints = match (dtype, raw) {
        (7, Some(r)) if r.len() % 8 == 0 && r.len() <= 8 * 64 => Some(
            r.chunks(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect(),
        ),
        (6, Some(r)) if r.len() % 4 == 0 && r.len() <= 4 * 64 => Some(
            r.chunks(4)
                .map(|c| i64::from(i32::from_le_bytes(c.try_into().unwrap_or([0; 4]))))
                .collect(),
        ),
        (7, None) if !i64s.is_empty() => Some(i64s),
        (6, None) if !i32s.is_empty() => Some(i32s),
        _ => None,
    };
    Ok(t)
}

fn read_attr(b: &[u8]) -> Result<(String, Attr), String> {
    let mut name = String::new();
    let mut a = Attr::default();
    let mut m = Msg::new(b);
    while let Some((n, v)) = m.next_field()? {
        match (n, v) {
            (1, Val::Bytes(s)) => name = string(s)?,
            (3, Val::Varint(x)) => a.i = Some(x as i64),
            (4, Val::Bytes(s)) => a.s = Some(String::from_utf8_lossy(s).into_owned()),
            (5, Val::Bytes(s)) => a.t = Some(read_tensor(s)?),
            (8, v) => ints(v, &mut a.ints)?,
            _ => {}
        }
    }
    Ok((name, a))
}

fn read_node(b: &[u8]) -> Result<Node, String> {
    let mut node = Node::default();
    let mut m = Msg::new(b);
    while let Some((n, v)) = m.next_field()? {
        match (n, v) {
            (1, Val::Bytes(s)) => node.inputs.push(string(s)?),
            (2, Val::Bytes(s)) => node.outputs.push(string(s)?),
            (3, Val::Bytes(s)) => node.name = string(s)?,
            (4, Val::Bytes(s)) => node.op = string(s)?,
            (5, Val::Bytes(s)) => {
                let (k, a) = read_attr(s)?;
                node.attrs.insert(k, a);
            }
            _ => {}
        }
    }
    Ok(node)
}

/// A ValueInfoProto: name and, when declared, the tensor shape.
fn read_value_info(b: &[u8]) -> Result<(String, Option<Vec<Dim>>), String> {
    let mut name = String::new();
    let mut shape = None;
    let mut m = Msg::new(b);
    while let Some((n, v)) = m.next_field()? {
        match (n, v) {
            (1, Val::Bytes(s)) => name = string(s)?,
            (2, Val::Bytes(tp)) => {
                // TypeProto.tensor_type = 1 -> Tensor.shape = 2 -> TensorShapeProto.dim = 1.
                let mut tm = Msg::new(tp);
                while let Some((1, Val::Bytes(tt))) = tm.next_field()? {
                    let mut ttm = Msg::new(tt);
                    while let Some((n, v)) = ttm.next_field()? {
                        if let (2, Val::Bytes(sh)) = (n, v) {
                            let mut dims = Vec::new();
                            let mut sm = Msg::new(sh);
                            while let Some((n, v)) = sm.next_field()? {
                                if let (1, Val::Bytes(d)) = (n, v) {
                                    let mut dm = Msg::new(d);
                                    let mut dim = Dim::Param("?".into());
                                    while let Some((n, v)) = dm.next_field()? {
                                        match (n, v) {
                                            (1, Val::Varint(x)) => dim = Dim::Value(x as i64),
                                            (2, Val::Bytes(p)) => {
                                                dim = Dim::Param(
                                                    String::from_utf8_lossy(p).into_owned(),
                                                )
                                            }
                                            _ => {}
                                        }
                                    }
                                    dims.push(dim);
                                }
                            }
                            shape = Some(dims);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok((name, shape))
}

fn read_graph(b: &[u8]) -> Result<Graph, String> {
    let mut g = Graph::default();
    let mut m = Msg::new(b);
    while let Some((n, v)) = m.next_field()? {
        match (n, v) {
            (1, Val::Bytes(s)) => g.nodes.push(read_node(s)?),
            (5, Val::Bytes(s)) => g.inits.push(read_tensor(s)?),
            (11, Val::Bytes(s)) => g.inputs.push(read_value_info(s)?),
            (13, Val::Bytes(s)) => g.value_info.push(read_value_info(s)?),
            _ => {}
        }
    }
    Ok(g)
}

/// The graph of a ModelProto; a file that is not one is an error.
fn read_model(bytes: &[u8]) -> Result<Graph, String> {
    let mut m = Msg::new(bytes);
    let mut graph = None;
    let mut ir_version = None;
    while let Some((n, v)) = m
        .next_field()
        .map_err(|e| format!("not an ONNX model: {e}"))?
    {
        match (n, v) {
            (1, Val::Varint(x)) => ir_version = Some(x),
            (7, Val::Bytes(s)) => {
                graph = Some(read_graph(s).map_err(|e| format!("not an ONNX model: {e}"))?)
            }
            _ => {}
        }
    }
    match (ir_version, graph) {
        (Some(_), Some(g)) => Ok(g),
        (None, _) => Err("not an ONNX model (no ir_version field)".into()),
        (_, None) => Err("not an ONNX model, or a truncated one (no graph)".into()),
    }
}

// ---------------------------------------------------------------------------------------------
// Shape inference and layers.

/// The result of an import: the network and notes on what was not turned into layers.
#[derive(Debug)]
pub struct Imported {
    pub network: Network,
    /// One line per note, for the header comment and standard error.
    pub notes: Vec<String>,
}

type Shape = Vec<u64>;

struct Ctx {
    shapes: HashMap<String, Shape>,
    consts: HashMap<String, Vec<i64>>,
}

fn attr_i(n: &Node, k: &str, d: i64) -> i64 {
    n.attrs.get(k).and_then(|a| a.i).unwrap_or(d)
}

fn attr_ints(n: &Node, k: &str) -> Option<Vec<i64>> {
    n.attrs
        .get(k)
        .map(|a| a.ints.clone())
        .filter(|v| !v.is_empty())
}

/// Largest size of one dimension, stride, pad or dilation we accept: it keeps every product of
/// a shape within `u64`, so corrupt files give errors, not overflows.
const MAX_DIM: u64 = 1 << 31;

/// A shape we can compute with: no dimension above [`MAX_DIM`], at most 2^62 elements.
fn sane(s: &Shape) -> bool {
    s.iter().all(|&d| d <= MAX_DIM)
        && s.iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .is_some_and(|p| p <= 1 << 62)
}

/// Numpy broadcasting of two shapes.
fn broadcast(a: &Shape, b: &Shape) -> Option<Shape> {
    let r = a.len().max(b.len());
    let mut out = vec![0; r];
    for i in 0..r {
        let x = if i + a.len() >= r {
            a[i + a.len() - r]
        } else {
            1
        };
        let y = if i + b.len() >= r {
            b[i + b.len() - r]
        } else {
            1
        };
        out[i] = if x == y || y == 1 {
            x
        } else if x == 1 {
            y
        } else {
            return None;
        };
    }
    Some(out)
}

fn axis(a: i64, rank: usize) -> Option<usize> {
    let a = if a < 0 { a + rank as i64 } else { a };
    (0..rank as i64).contains(&a).then_some(a as usize)
}

/// Output sizes, strides and dilations of a window's spatial axes.
type Window = (Vec<u64>, Vec<u64>, Vec<u64>);

/// Output spatial sizes of a sliding window (Conv, pools), or an error message.
fn window(n: &Node, spatial_in: &[u64], kernel: &[u64], ceil: bool) -> Result<Window, String> {
    let k = spatial_in.len();
    let strides = attr_ints(n, "strides").unwrap_or(vec![1; k]);
    let dil = attr_ints(n, "dilations").unwrap_or(vec![1; k]);
    let pads = attr_ints(n, "pads").unwrap_or(vec![0; 2 * k]);
    let auto = n
        .attrs
        .get("auto_pad")
        .and_then(|a| a.s.clone())
        .unwrap_or_default();
    if strides.len() != k || dil.len() != k || pads.len() != 2 * k || kernel.len() != k {
        return Err("strides, dilations, pads or kernel do not match the input's rank".into());
    }
    if strides.iter().chain(&dil).any(|&v| v < 1) || pads.iter().any(|&v| v < 0) {
        return Err("a stride or dilation below 1, or a negative pad".into());
    }
    if strides
        .iter()
        .chain(&dil)
        .chain(&pads)
        .any(|&v| v as u64 > MAX_DIM)
        || kernel.iter().any(|&v| v > MAX_DIM)
    {
        return Err("a stride, dilation, pad or kernel size is implausibly large".into());
    }
    let mut out = Vec::new();
    for i in 0..k {
        let (s, d) = (strides[i] as u64, dil[i] as u64);
        let eff = d * (kernel[i].max(1) - 1) + 1;
        let o = match auto.as_str() {
            "SAME_UPPER" | "SAME_LOWER" => spatial_in[i].div_ceil(s),
            "VALID" => (spatial_in[i] + 1).saturating_sub(eff).div_ceil(s),
            _ => {
                let padded = spatial_in[i] + pads[i] as u64 + pads[i + k] as u64;
                if padded < eff {
                    return Err(format!(
                        "the window ({eff}) is larger than the padded input ({padded})"
                    ));
                }
                if ceil {
                    (padded - eff).div_ceil(s) + 1
                } else {
                    (padded - eff) / s + 1
                }
            }
        };
        out.push(o);
    }
    Ok((
        out,
        strides.iter().map(|&v| v as u64).collect(),
        dil.iter().map(|&v| v as u64).collect(),
    ))
}

/// Ops that keep their (first) input's shape.
const SAME_SHAPE: &[&str] = &[
    "Relu",
    "LeakyRelu",
    "PRelu",
    "Sigmoid",
    "Tanh",
    "HardSigmoid",
    "HardSwish",
    "Gelu",
    "Erf",
    "Sqrt",
    "Reciprocal",
    "Neg",
    "Exp",
    "Log",
    "Abs",
    "Elu",
    "Selu",
    "Softplus",
    "Clip",
    "BatchNormalization",
    "InstanceNormalization",
    "LayerNormalization",
    "Softmax",
    "LogSoftmax",
    "Dropout",
    "Identity",
    "Cast",
    "LRN",
    "Mish",
];

/// Ops that broadcast their inputs.
const BROADCAST: &[&str] = &[
    "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Where", "Equal", "Less", "Greater",
];

/// Read an ONNX model and turn its Conv, Gemm and MatMul nodes into a network named `name`.
/// Symbolic batch dimensions (axis 0 of a graph input) become `batch`.
pub fn network_from_onnx(name: &str, bytes: &[u8], batch: u64) -> Result<Imported, String> {
    let g = read_model(bytes)?;
    let mut cx = Ctx {
        shapes: HashMap::new(),
        consts: HashMap::new(),
    };
    let fix = |dims: &[Dim], what: &str| -> Result<Shape, String> {
        dims.iter()
            .enumerate()
            .map(|(i, d)| match d {
                Dim::Value(v) if *v > 0 => Ok(*v as u64),
                _ if i == 0 => Ok(batch),
                Dim::Value(v) => Err(format!("{what} has size {v} at axis {i}")),
                Dim::Param(p) => Err(format!(
                    "{what} has the symbolic size `{p}` at axis {i}; only the batch axis (0) may be symbolic"
                )),
            })
            .collect()
    };
    for t in &g.inits {
        let dims: Option<Shape> = t.dims.iter().map(|&d| u64::try_from(d).ok()).collect();
        let dims = dims.filter(sane).ok_or(format!(
            "initializer `{}` has a negative or implausible size",
            t.name
        ))?;
        cx.shapes.insert(t.name.clone(), dims);
        if let Some(v) = &t.ints {
            cx.consts.insert(t.name.clone(), v.clone());
        }
    }
    for (n, s) in &g.inputs {
        if cx.shapes.contains_key(n) {
            continue;
        }
        if let Some(s) = s {
            let s = fix(s, &format!("graph input `{n}`"))?;
            if !sane(&s) {
                return Err(format!("graph input `{n}` has an implausible shape {s:?}"));
            }
            cx.shapes.insert(n.clone(), s);
        }
    }
    let declared: HashMap<&str, &Vec<Dim>> = g
        .value_info
        .iter()
        .filter_map(|(n, s)| s.as_ref().map(|s| (n.as_str(), s)))
        .collect();

    let mut layers: Vec<Layer> = Vec::new();
    let mut others: BTreeMap<String, u64> = BTreeMap::new();
    let mut notes = Vec::new();
    let mut grouped = Vec::new();
    let mut folded = Vec::new();
    for (idx, node) in g.nodes.iter().enumerate() {
        let label = if !node.name.is_empty() {
            node.name.clone()
        } else if let Some(o) = node.outputs.first().filter(|o| !o.is_empty()) {
            o.clone()
        } else {
            format!("{}_{idx}", node.op.to_lowercase())
        };
        let shape_of = |i: usize| -> Option<&Shape> {
            node.inputs
                .get(i)
                .filter(|s| !s.is_empty())
                .and_then(|s| cx.shapes.get(s))
        };
        let need = |i: usize| -> Result<&Shape, String> {
            shape_of(i).ok_or_else(|| {
                format!(
                    "{} node `{label}`: the shape of its input `{}` is unknown (it comes from an op whose shape dosa cannot infer, and the model declares none in value_info)",
                    node.op,
                    node.inputs.get(i).map_or("", |s| s.as_str())
                )
            })
        };
        let err = |m: String| format!("{} node `{label}`: {m}", node.op);
        let mut out: Option<Shape> = None;
        let mut out_const: Option<Vec<i64>> = None;
        match node.op.as_str() {
            "Conv" => {
                let x = need(0)?.clone();
                let w = need(1)?.clone();
                if x.len() != w.len() || !(3..=4).contains(&x.len()) {
                    return Err(err(format!(
                        "only 1-D and 2-D convolutions are supported (input rank {}, weight rank {})",
                        x.len(),
                        w.len()
                    )));
                }
                let groups = attr_i(node, "group", 1);
                let g = u64::try_from(groups)
                    .ok()
                    .filter(|&g| g >= 1)
                    .ok_or_else(|| err(format!("group {groups} is not positive")))?;
                let (nb, c, k, cg) = (x[0], x[1], w[0], w[1]);
                if cg.checked_mul(g) != Some(c) || k % g != 0 || k == 0 {
                    return Err(err(format!(
                        "input channels {c}, weight {w:?} and group {g} do not agree"
                    )));
                }
                let kernel = w[2..].to_vec();
                if let Some(ks) = attr_ints(node, "kernel_shape") {
                    if ks.iter().map(|&v| v as u64).ne(kernel.iter().copied()) {
                        return Err(err(format!(
                            "kernel_shape {ks:?} differs from the weight's {kernel:?}"
                        )));
                    }
                }
                let (o, st, dl) = window(node, &x[2..], &kernel, false).map_err(err)?;
                // ONNX spatial order is (H, W); dosa's R/P/wstride are the width (last) axis.
                let last = o.len() - 1;
                let (r, p, ws, wd) = (kernel[last], o[last], st[last], dl[last]);
                let (s, q, hs, hd) = if last == 1 {
                    (kernel[0], o[0], st[0], dl[0])
                } else {
                    (1, 1, 1, 1)
                };
                let mut l = Layer::conv(&label, [r, s, p, q, cg, k / g, nb], ws, hs);
                l.wdilation = wd;
                l.hdilation = hd;
                l.count = g;
                if g > 1 {
                    grouped.push(format!("{label} (group {g})"));
                }
                layers.push(l);
                let mut os = vec![nb, k];
                os.extend(o);
                out = Some(os);
            }
            "Gemm" => {
                let a = need(0)?.clone();
                let b = need(1)?.clone();
                if a.len() != 2 || b.len() != 2 {
                    return Err(err("Gemm inputs must be 2-D".into()));
                }
                let (m, ka) = if attr_i(node, "transA", 0) != 0 {
                    (a[1], a[0])
                } else {
                    (a[0], a[1])
                };
                let (kb, n) = if attr_i(node, "transB", 0) != 0 {
                    (b[1], b[0])
                } else {
                    (b[0], b[1])
                };
                if ka != kb {
                    return Err(err(format!("inner sizes differ ({ka} and {kb})")));
                }
                layers.push(Layer::matmul(&label, m, ka, n));
                out = Some(vec![m, n]);
            }
            "MatMul" => {
                let a = need(0)?.clone();
                let b = need(1)?.clone();
                if a.is_empty() || b.is_empty() {
                    return Err(err("MatMul of a scalar".into()));
                }
                let a2 = if a.len() == 1 {
                    vec![1, a[0]]
                } else {
                    a.clone()
                };
                let b2 = if b.len() == 1 {
                    vec![b[0], 1]
                } else {
                    b.clone()
                };
                let (m, ka) = (a2[a2.len() - 2], a2[a2.len() - 1]);
                let (kb, n) = (b2[b2.len() - 2], b2[b2.len() - 1]);
                if ka != kb {
                    return Err(err(format!("inner sizes differ ({ka} and {kb})")));
                }
                let ab = a2[..a2.len() - 2].to_vec();
                let bb = b2[..b2.len() - 2].to_vec();
                let batch_dims = broadcast(&ab, &bb).ok_or_else(|| {
                    err(format!("batch sizes {ab:?} and {bb:?} do not broadcast"))
                })?;
                let nbatch = batch_dims
                    .iter()
                    .try_fold(1u64, |a, &d| a.checked_mul(d))
                    .filter(|&p| p <= 1 << 62)
                    .ok_or_else(|| err("implausibly many batched matmuls".into()))?;
                let mut l;
                if bb.iter().product::<u64>() == 1 {
                    // Shared right side (weights): the batch folds into M.
                    let mb = m
                        .checked_mul(nbatch)
                        .ok_or_else(|| err("implausibly large batch".into()))?;
                    l = Layer::matmul(&label, mb, ka, n);
                    if nbatch > 1 {
                        folded.push(format!("{label} (batch {nbatch} folded into M)"));
                    }
                } else {
                    l = Layer::matmul(&label, m, ka, n);
                    l.count = nbatch;
                }
                if l.dims.contains(&0) {
                    return Err(err("a size is 0".into()));
                }
                l.name = label.clone();
                layers.push(l);
                let mut os = batch_dims;
                if a.len() > 1 {
                    os.push(m);
                }
                if b.len() > 1 {
                    os.push(n);
                }
                out = Some(os);
            }
            op => {
                *others.entry(op.to_string()).or_default() += 1;
                let x = shape_of(0).cloned();
                match op {
                    _ if SAME_SHAPE.contains(&op) => {
                        out = x;
                        out_const = node.inputs.first().and_then(|i| cx.consts.get(i)).cloned();
                    }
                    _ if BROADCAST.contains(&op) => {
                        let mut acc = x;
                        for i in 1..node.inputs.len() {
                            acc = match (acc, shape_of(i)) {
                                (Some(a), Some(b)) => broadcast(&a, b),
                                _ => None,
                            };
                        }
                        out = acc;
                    }
                    "MaxPool" | "AveragePool" | "LpPool" => {
                        if let Some(x) = x.filter(|x| x.len() >= 3) {
                            let ks: Vec<u64> = attr_ints(node, "kernel_shape")
                                .unwrap_or_default()
                                .iter()
                                .map(|&v| v.max(1) as u64)
                                .collect();
                            let ceil = attr_i(node, "ceil_mode", 0) != 0;
                            let (o, _, _) = window(node, &x[2..], &ks, ceil).map_err(err)?;
                            let mut os = x[..2].to_vec();
                            os.extend(o);
                            out = Some(os);
                        }
                    }
                    "GlobalAveragePool" | "GlobalMaxPool" => {
                        out = x.map(|x| {
                            let mut o = x.clone();
                            o[2..].iter_mut().for_each(|d| *d = 1);
                            o
                        });
                    }
                    "Flatten" => {
                        if let Some(x) = x {
                            let ax = axis(attr_i(node, "axis", 1), x.len() + 1).unwrap_or(1);
                            out = Some(vec![x[..ax].iter().product(), x[ax..].iter().product()]);
                        }
                    }
                    "Reshape" => {
                        let target = node.inputs.get(1).and_then(|s| cx.consts.get(s));
                        if let (Some(x), Some(t)) = (x, target) {
                            let total: u64 = x.iter().product();
                            let mut o: Vec<u64> = Vec::new();
                            let mut infer = None;
                            for (i, &d) in t.iter().enumerate() {
                                match d {
                                    0 => o.push(x.get(i).copied().unwrap_or(1)),
                                    -1 => {
                                        infer = Some(i);
                                        o.push(1);
                                    }
                                    d if d > 0 && d as u64 <= MAX_DIM => o.push(d as u64),
                                    _ => return Err(err(format!("bad target shape {t:?}"))),
                                }
                            }
                            let Some(known) = o.iter().try_fold(1u64, |a, &d| a.checked_mul(d))
                            else {
                                return Err(err(format!("cannot reshape {x:?} to {t:?}")));
                            };
                            if let Some(i) = infer {
                                if known == 0 || total % known != 0 {
                                    return Err(err(format!("cannot reshape {x:?} to {t:?}")));
                                }
                                o[i] = total / known;
                            }
                            if o.iter().try_fold(1u64, |a, &d| a.checked_mul(d)) != Some(total) {
                                return Err(err(format!("cannot reshape {x:?} to {t:?}")));
                            }
                            out = Some(o);
                        }
                    }
                    "Transpose" => {
                        if let Some(x) = x {
                            let perm = attr_ints(node, "perm")
                                .unwrap_or_else(|| (0..x.len() as i64).rev().collect());
                            let o: Option<Shape> = perm
                                .iter()
                                .map(|&p| axis(p, x.len()).map(|a| x[a]))
                                .collect();
                            out = o.filter(|o| o.len() == x.len());
                        }
                    }
                    "Concat" => {
                        let all: Option<Vec<&Shape>> =
                            (0..node.inputs.len()).map(shape_of).collect();
                        if let Some(all) = all.filter(|a| !a.is_empty()) {
                            let r = all[0].len();
                            if let Some(ax) = axis(attr_i(node, "axis", 0), r) {
                                if all.iter().all(|s| s.len() == r) {
                                    let mut o = all[0].clone();
                                    o[ax] = all.iter().map(|s| s[ax]).sum();
                                    out = Some(o);
                                }
                            }
                        }
                        let vals: Option<Vec<&Vec<i64>>> =
                            node.inputs.iter().map(|i| cx.consts.get(i)).collect();
                        out_const = vals.map(|v| v.into_iter().flatten().copied().collect());
                    }
                    "Shape" => {
                        if let Some(x) = &x {
                            out_const = Some(x.iter().map(|&d| d as i64).collect());
                            out = Some(vec![x.len() as u64]);
                        }
                    }
                    "Constant" => {
                        if let Some(t) = node.attrs.get("value").and_then(|a| a.t.as_ref()) {
                            out = t.dims.iter().map(|&d| u64::try_from(d).ok()).collect();
                            out_const = t.ints.clone();
                        }
                    }
                    _ => {}
                }
                if out_const.is_none() {
                    out_const = fold(node, &cx.consts);
                }
            }
        }
        if let (Some(o), Some(s)) = (node.outputs.first(), out) {
            if !sane(&s) {
                return Err(err(format!("implausible output shape {s:?}")));
            }
            cx.shapes.insert(o.clone(), s);
        }
        if let (Some(o), Some(v)) = (node.outputs.first(), out_const) {
            cx.consts.insert(o.clone(), v);
        }
        // Outputs we could not infer: take the model's own declarations when it has them.
        for o in &node.outputs {
            if !cx.shapes.contains_key(o) {
                if let Some(d) = declared.get(o.as_str()) {
                    if let Some(s) = fix(d, &format!("value `{o}`")).ok().filter(sane) {
                        cx.shapes.insert(o.clone(), s);
                    }
                }
            }
        }
    }
    if !others.is_empty() {
        let list: Vec<String> = others.iter().map(|(k, v)| format!("{k} x{v}")).collect();
        notes.push(format!(
            "ops that are not layers (not imported): {}",
            list.join(", ")
        ));
    }
    if !grouped.is_empty() {
        notes.push(format!(
            "grouped convs are `count` = groups x the per-group conv (C/g -> K/g): {}",
            grouped.join(", ")
        ));
    }
    if !folded.is_empty() {
        notes.push(format!(
            "batched MatMuls with shared weights fold the batch into M: {}",
            folded.join(", ")
        ));
    }
    if layers.is_empty() {
        return Err(format!(
            "no Conv, Gemm or MatMul in the model: nothing to import ({})",
            if others.is_empty() {
                "the graph has no nodes".to_string()
            } else {
                notes[0].clone()
            }
        ));
    }
    Ok(Imported {
        network: Network {
            name: name.to_string(),
            layers: merge(layers),
        },
        notes,
    })
}

/// Integer shape arithmetic on known values, as exporters build Reshape targets (PyTorch:
/// `Shape -> Gather -> Unsqueeze -> Concat -> Reshape`, sometimes with `Mul`/`Div` for a head
/// size or a `Slice` of a shape): the folded value when every input it needs is known. Values
/// are kept flat (a scalar is one element), which is all a Reshape target needs.
fn fold(node: &Node, consts: &HashMap<String, Vec<i64>>) -> Option<Vec<i64>> {
    let input = |i: usize| node.inputs.get(i).and_then(|n| consts.get(n));
    let at = |v: &Vec<i64>, i: i64| {
        let j = if i < 0 { i + v.len() as i64 } else { i };
        usize::try_from(j).ok().and_then(|j| v.get(j).copied())
    };
    match node.op.as_str() {
        "Gather" if attr_i(node, "axis", 0) == 0 => {
            let (data, idx) = (input(0)?, input(1)?);
            idx.iter().map(|&i| at(data, i)).collect()
        }
        "Unsqueeze" | "Squeeze" | "Cast" | "Identity" => input(0).cloned(),
        "Add" | "Sub" | "Mul" | "Div" => {
            let (a, b) = (input(0)?, input(1)?);
            let n = a.len().max(b.len());
            if !(a.len() == n || a.len() == 1) || !(b.len() == n || b.len() == 1) {
                return None;
            }
            (0..n)
                .map(|i| {
                    let (x, y) = (a[i.min(a.len() - 1)], b[i.min(b.len() - 1)]);
                    match node.op.as_str() {
                        "Add" => x.checked_add(y),
                        "Sub" => x.checked_sub(y),
                        "Mul" => x.checked_mul(y),
                        _ => x.checked_div(y),
                    }
                })
                .collect()
        }
        "Slice" => {
            let data = input(0)?;
            let (start, end) = (*input(1)?.first()?, *input(2)?.first()?);
            let axes_ok = input(3).is_none_or(|a| a.as_slice() == [0]);
            let step_ok = input(4).is_none_or(|s| s.as_slice() == [1]);
            if !axes_ok || !step_ok {
                return None;
            }
            let len = data.len() as i64;
            let clamp = |i: i64| (if i < 0 { i + len } else { i }).clamp(0, len) as usize;
            let (a, b) = (clamp(start), clamp(end));
            Some(data.get(a..b.max(a))?.to_vec())
        }
        _ => None,
    }
}

/// Merge identical layers (same kind, sizes, strides, dilations) into one with the summed
/// `count`, keeping the first name; then make names unique and printable.
fn merge(layers: Vec<Layer>) -> Vec<Layer> {
    let mut out: Vec<Layer> = Vec::new();
    for l in layers {
        let same = |o: &Layer| {
            o.kind == l.kind
                && o.dims == l.dims
                && (o.wstride, o.hstride, o.wdilation, o.hdilation)
                    == (l.wstride, l.hstride, l.wdilation, l.hdilation)
        };
        match out.iter_mut().find(|o| same(o)) {
            Some(o) => o.count += l.count,
            None => out.push(l),
        }
    }
    let mut seen = std::collections::HashSet::new();
    for l in &mut out {
        let base: String = l
            .name
            .chars()
            .map(|c| if c.is_control() || c == '"' { '_' } else { c })
            .collect();
        let base = if base.is_empty() {
            "layer".into()
        } else {
            base
        };
        let mut name = base.clone();
        let mut k = 2;
        while !seen.insert(name.clone()) {
            name = format!("{base}_{k}");
            k += 1;
        }
        l.name = name;
    }
    out
}

/// `.dosa` source for an imported network, with the notes as comments.
pub fn onnx_network_source(imp: &Imported, origin: &str) -> String {
    let file = File {
        items: vec![Item::Network(network_def(&imp.network))],
    };
    let body = format_file(&file, "", &[]);
    let mut head = format!(
        "# Network `{}`, imported from {origin} by `dosa import onnx`.\n\
         # It names no architecture: a program importing it gets the built-in Gemmini unless it has an `arch`.\n",
        imp.network.name.replace('\n', " ")
    );
    for n in &imp.notes {
        head.push_str(&format!("# Note: {}\n", n.replace('\n', " ")));
    }
    format!("{head}\n{body}")
}
