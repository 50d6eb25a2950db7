//! `dosa import onnx`: models built here byte by byte (a tiny protobuf writer, so the tests need
//! neither Python nor committed binaries), checked layer by layer; bad files give clear errors.

use dosa::ir::{Layer, LayerKind};
use dosa::syntax::onnx::network_from_onnx;
use std::process::Command;

// --- A minimal ONNX (protobuf) writer. -------------------------------------------------------

fn varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}
fn f_int(out: &mut Vec<u8>, num: u64, v: i64) {
    varint(out, num << 3);
    varint(out, v as u64);
}
fn f_bytes(out: &mut Vec<u8>, num: u64, b: &[u8]) {
    varint(out, (num << 3) | 2);
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A dimension: a size, or a symbol (`"N"`).
enum D {
    V(i64),
    P(&'static str),
}

/// ValueInfoProto of a float tensor with shape `dims`.
fn vi(name: &str, dims: &[D]) -> Vec<u8> {
    let mut shape = Vec::new();
    for d in dims {
        let mut dm = Vec::new();
        match d {
            D::V(v) => f_int(&mut dm, 1, *v),
            D::P(p) => f_bytes(&mut dm, 2, p.as_bytes()),
        }
        f_bytes(&mut shape, 1, &dm);
    }
    let mut tt = Vec::new();
    f_int(&mut tt, 1, 1);
    f_bytes(&mut tt, 2, &shape);
    let mut tp = Vec::new();
    f_bytes(&mut tp, 1, &tt);
    let mut v = Vec::new();
    f_bytes(&mut v, 1, name.as_bytes());
    f_bytes(&mut v, 2, &tp);
    v
}

fn shape(dims: &[i64]) -> Vec<D> {
    dims.iter().map(|&d| D::V(d)).collect()
}

enum A {
    I(&'static str, i64),
    Is(&'static str, Vec<i64>),
}

fn node(op: &str, name: &str, inputs: &[&str], outputs: &[&str], attrs: &[A]) -> Vec<u8> {
    let mut n = Vec::new();
    for i in inputs {
        f_bytes(&mut n, 1, i.as_bytes());
    }
    for o in outputs {
        f_bytes(&mut n, 2, o.as_bytes());
    }
    f_bytes(&mut n, 3, name.as_bytes());
    f_bytes(&mut n, 4, op.as_bytes());
    for a in attrs {
        let mut ab = Vec::new();
        match a {
            A::I(k, v) => {
                f_bytes(&mut ab, 1, k.as_bytes());
                f_int(&mut ab, 3, *v);
                f_int(&mut ab, 20, 2);
            }
            A::Is(k, vs) => {
                f_bytes(&mut ab, 1, k.as_bytes());
                for v in vs {
                    f_int(&mut ab, 8, *v);
                }
                f_int(&mut ab, 20, 7);
            }
        }
        f_bytes(&mut n, 5, &ab);
    }
    n
}

/// An INT64 initializer with data (for Reshape targets), stored as raw_data.
fn int_init(name: &str, vals: &[i64]) -> Vec<u8> {
    let mut t = Vec::new();
    f_int(&mut t, 1, vals.len() as i64);
    f_int(&mut t, 2, 7);
    f_bytes(&mut t, 8, name.as_bytes());
    let raw: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
    f_bytes(&mut t, 9, &raw);
    t
}

/// Graph under construction; weights are declared graph inputs (shapes, no data).
#[derive(Default)]
struct G {
    nodes: Vec<Vec<u8>>,
    inputs: Vec<Vec<u8>>,
    inits: Vec<Vec<u8>>,
    n: usize,
}

impl G {
    fn tmp(&mut self) -> String {
        self.n += 1;
        format!("t{}", self.n)
    }
    fn weight(&mut self, dims: &[i64]) -> String {
        let w = format!("w{}", self.n + 1);
        self.n += 1;
        self.inputs.push(vi(&w, &shape(dims)));
        w
    }
    fn op(&mut self, op: &str, inputs: &[&str], attrs: &[A]) -> String {
        let o = self.tmp();
        let name = format!("{}_{}", op.to_lowercase(), self.n);
        self.nodes.push(node(op, &name, inputs, &[&o], attrs));
        o
    }
    #[allow(clippy::too_many_arguments)]
    fn conv(&mut self, x: &str, c: i64, k: i64, ks: [i64; 2], st: i64, pad: i64, g: i64) -> String {
        let w = self.weight(&[k, c / g, ks[0], ks[1]]);
        self.op(
            "Conv",
            &[x, &w],
            &[
                A::Is("strides", vec![st, st]),
                A::Is("pads", vec![pad, pad, pad, pad]),
                A::I("group", g),
            ],
        )
    }
    fn model(&self) -> Vec<u8> {
        let mut g = Vec::new();
        for n in &self.nodes {
            f_bytes(&mut g, 1, n);
        }
        f_bytes(&mut g, 2, b"test");
        for t in &self.inits {
            f_bytes(&mut g, 5, t);
        }
        for i in &self.inputs {
            f_bytes(&mut g, 11, i);
        }
        let mut m = Vec::new();
        f_int(&mut m, 1, 8);
        f_bytes(&mut m, 2, b"dosa-tests");
        f_bytes(&mut m, 7, &g);
        let mut op = Vec::new();
        f_int(&mut op, 2, 17);
        f_bytes(&mut m, 8, &op);
        m
    }
}

// --- Models. ---------------------------------------------------------------------------------

/// ResNet-50 v1.5 (stride on the 3x3 conv), batch symbolic, weights declared without data.
fn resnet50() -> Vec<u8> {
    let mut g = G::default();
    g.inputs
        .push(vi("x", &[D::P("N"), D::V(3), D::V(224), D::V(224)]));
    let mut x = g.conv("x", 3, 64, [7, 7], 2, 3, 1);
    x = g.op("BatchNormalization", &[&x], &[]);
    x = g.op("Relu", &[&x], &[]);
    x = g.op(
        "MaxPool",
        &[&x],
        &[
            A::Is("kernel_shape", vec![3, 3]),
            A::Is("strides", vec![2, 2]),
            A::Is("pads", vec![1, 1, 1, 1]),
        ],
    );
    let mut cin = 64;
    for (stage, (&blocks, &w)) in [3, 4, 6, 3].iter().zip(&[64, 128, 256, 512]).enumerate() {
        for b in 0..blocks {
            let s = if b == 0 && stage > 0 { 2 } else { 1 };
            let mut y = g.conv(&x, cin, w, [1, 1], 1, 0, 1);
            y = g.op("Relu", &[&y], &[]);
            y = g.conv(&y, w, w, [3, 3], s, 1, 1);
            y = g.op("Relu", &[&y], &[]);
            y = g.conv(&y, w, 4 * w, [1, 1], 1, 0, 1);
            let short = if b == 0 {
                g.conv(&x, cin, 4 * w, [1, 1], s, 0, 1)
            } else {
                x.clone()
            };
            y = g.op("Add", &[&y, &short], &[]);
            x = g.op("Relu", &[&y], &[]);
            cin = 4 * w;
        }
    }
    x = g.op("GlobalAveragePool", &[&x], &[]);
    x = g.op("Flatten", &[&x], &[]);
    let w = g.weight(&[1000, 2048]);
    g.op("Gemm", &[&x, &w], &[A::I("transB", 1)]);
    g.model()
}

/// A transformer encoder block: input [B, 128, 768] with B symbolic, 12 heads.
fn transformer() -> Vec<u8> {
    let mut g = G::default();
    g.inputs
        .push(vi("x", &[D::P("batch"), D::V(128), D::V(768)]));
    g.inits.push(int_init("heads", &[0, 128, 12, 64]));
    g.inits.push(int_init("merge", &[0, 128, 768]));
    let mut proj = Vec::new();
    for _ in 0..3 {
        let w = g.weight(&[768, 768]);
        let y = g.op("MatMul", &["x", &w], &[]);
        proj.push(g.op("Reshape", &[&y, "heads"], &[]));
    }
    let q = g.op("Transpose", &[&proj[0]], &[A::Is("perm", vec![0, 2, 1, 3])]);
    let k = g.op("Transpose", &[&proj[1]], &[A::Is("perm", vec![0, 2, 3, 1])]);
    let v = g.op("Transpose", &[&proj[2]], &[A::Is("perm", vec![0, 2, 1, 3])]);
    let s = g.op("MatMul", &[&q, &k], &[]);
    let s = g.op("Softmax", &[&s], &[A::I("axis", -1)]);
    let o = g.op("MatMul", &[&s, &v], &[]);
    let o = g.op("Transpose", &[&o], &[A::Is("perm", vec![0, 2, 1, 3])]);
    let o = g.op("Reshape", &[&o, "merge"], &[]);
    let w = g.weight(&[768, 768]);
    let o = g.op("MatMul", &[&o, &w], &[]);
    let o = g.op("Add", &["x", &o], &[]);
    let o = g.op("LayerNormalization", &[&o], &[]);
    let w1 = g.weight(&[768, 3072]);
    let h = g.op("MatMul", &[&o, &w1], &[]);
    let h = g.op("Gelu", &[&h], &[]);
    let w2 = g.weight(&[3072, 768]);
    g.op("MatMul", &[&h, &w2], &[]);
    g.model()
}

/// Depthwise, grouped, dilated and non-square convs on a 1x32x112x112 input.
fn convs() -> Vec<u8> {
    let mut g = G::default();
    g.inputs.push(vi("x", &shape(&[1, 32, 112, 112])));
    let x = g.conv("x", 32, 32, [3, 3], 2, 1, 32); // depthwise -> 56x56
    let x = g.conv(&x, 32, 64, [1, 1], 1, 0, 4); // grouped
    let w = g.weight(&[64, 64, 3, 3]);
    let x = g.op(
        "Conv",
        &[&x, &w],
        &[
            A::Is("dilations", vec![2, 2]),
            A::Is("pads", vec![2, 2, 2, 2]),
        ],
    );
    // Kernel 1 high, 7 wide; stride 1 down, 2 across; padding only across.
    let w = g.weight(&[16, 64, 1, 7]);
    g.op(
        "Conv",
        &[&x, &w],
        &[
            A::Is("strides", vec![1, 2]),
            A::Is("pads", vec![0, 3, 0, 3]),
        ],
    );
    g.model()
}

fn one_op_model(op: &str) -> Vec<u8> {
    let mut g = G::default();
    g.inputs.push(vi("x", &shape(&[1, 8])));
    g.op(op, &["x"], &[]);
    g.model()
}

// --- Checks. ---------------------------------------------------------------------------------

/// A layer's identity without its name: kind-free sizes, strides, dilations, count.
fn key(l: &Layer) -> ([u64; 7], [u64; 4], u64) {
    (
        l.dims,
        [l.wstride, l.hstride, l.wdilation, l.hdilation],
        l.count,
    )
}

/// The imported network has the example file's layers ([`key`]: sizes, strides, dilations and
/// counts), in any order.
fn assert_same_layers(imp: &dosa::syntax::onnx::Imported, example: &str) {
    let text = std::fs::read_to_string(example).unwrap();
    let ex = dosa::syntax::load_text(example, &text).unwrap();
    let mut want: Vec<_> = ex.networks[0].layers.iter().map(key).collect();
    let mut got: Vec<_> = imp.network.layers.iter().map(key).collect();
    want.sort();
    got.sort();
    assert_eq!(got, want);
}

#[test]
fn resnet50_matches_the_example_network() {
    let imp = network_from_onnx("resnet50", &resnet50(), 1).unwrap();
    assert_same_layers(&imp, "examples/resnet50.dosa");
    // 53 convs + 1 Gemm in all.
    let total: u64 = imp.network.layers.iter().map(|l| l.count).sum();
    assert_eq!(total, 54);
    let fc = imp
        .network
        .layers
        .iter()
        .find(|l| l.kind == LayerKind::Matmul);
    assert_eq!(fc.unwrap().dims, [1, 1, 1, 1, 2048, 1000, 1]);
    // The other ops are noted, with their counts.
    let n = imp.notes.join("\n");
    for s in [
        "Relu x49",
        "Add x16",
        "MaxPool x1",
        "BatchNormalization x1",
        "Flatten x1",
    ] {
        assert!(n.contains(s), "{s} missing from {n}");
    }
}

/// Models written by the official `onnx` library (`tests/fixtures/onnx/make_with_onnx_lib.py`,
/// checked there by onnx.checker and strict shape inference), an encoder independent of the
/// writer above. ResNet-50 imports to the example network's layers; at batch 4 every conv's N is
/// 4 and the fc's M is 4.
#[test]
fn onnx_library_resnet50_matches_the_example_network() {
    let bytes = std::fs::read("tests/fixtures/onnx/onnxlib_resnet50.onnx").unwrap();
    let imp = network_from_onnx("resnet50", &bytes, 1).unwrap();
    assert_same_layers(&imp, "examples/resnet50.dosa");
    let four = network_from_onnx("resnet50", &bytes, 4).unwrap();
    for l in &four.network.layers {
        match l.kind {
            LayerKind::Matmul => assert_eq!(l.dims[2] * l.dims[3], 4, "{l:?}"),
            _ => assert_eq!(l.dims[6], 4, "{l:?}"),
        }
    }
}

/// A BERT-base encoder layer as PyTorch's exporter writes it: every Reshape target is built at
/// run time (`Shape -> Gather -> Unsqueeze -> Concat`, the head size from a `Div`), so the
/// per-head MatMuls are only found by folding that arithmetic. The layers are `examples/bert.dosa`'s
/// shapes, with a real layer's counts: four 768x768 projections, 12 heads of QK^T and of
/// attention x V, the two FFN matmuls.
#[test]
fn onnx_library_bert_layer_folds_runtime_reshapes() {
    let bytes = std::fs::read("tests/fixtures/onnx/onnxlib_bert_layer.onnx").unwrap();
    let imp = network_from_onnx("bert", &bytes, 1).unwrap();
    let got: Vec<([u64; 7], u64)> = imp
        .network
        .layers
        .iter()
        .map(|l| {
            assert_eq!(l.kind, LayerKind::Matmul);
            (l.dims, l.count)
        })
        .collect();
    let mm = |m: u64, k: u64, n: u64, count: u64| (Layer::matmul("x", m, k, n).dims, count);
    assert_eq!(
        got,
        [
            mm(128, 768, 768, 4),
            mm(128, 64, 128, 12),
            mm(128, 128, 64, 12),
            mm(128, 768, 3072, 1),
            mm(128, 3072, 768, 1),
        ]
    );
    let text = std::fs::read_to_string("examples/bert.dosa").unwrap();
    let ex = dosa::syntax::load_text("bert.dosa", &text).unwrap();
    let mut want: Vec<[u64; 7]> = ex.networks[0].layers.iter().map(|l| l.dims).collect();
    let mut shapes: Vec<[u64; 7]> = got.iter().map(|g| g.0).collect();
    want.sort();
    shapes.sort();
    assert_eq!(shapes, want, "the same layer shapes as the example");
    // At batch 8 the projections fold the batch into M; the heads multiply the count.
    let eight = network_from_onnx("bert", &bytes, 8).unwrap();
    let counts: Vec<u64> = eight.network.layers.iter().map(|l| l.count).collect();
    assert_eq!(counts, [4, 96, 96, 1, 1]);
}

#[test]
fn dynamic_batch_takes_the_batch_flag() {
    let imp = network_from_onnx("r", &resnet50(), 8).unwrap();
    let convs = imp
        .network
        .layers
        .iter()
        .filter(|l| l.kind == LayerKind::Conv);
    assert!(convs.clone().count() > 20);
    assert!(convs.into_iter().all(|l| l.dims[6] == 8));
    // The Gemm's M is the batch.
    let fc = imp
        .network
        .layers
        .iter()
        .find(|l| l.kind == LayerKind::Matmul);
    assert_eq!(fc.unwrap().dims[2], 8);
}

#[test]
fn transformer_block_batched_matmuls() {
    let imp = network_from_onnx("bert", &transformer(), 2).unwrap();
    let l = &imp.network.layers;
    let find = |dims: [u64; 7]| l.iter().find(|l| l.dims == dims).map(|l| l.count);
    // Q, K, V and output projections: shared weights, batch 2 folded into M = 2 * 128.
    assert_eq!(find([1, 1, 256, 1, 768, 768, 1]), Some(4));
    // Q x K^T and scores x V: one per (batch, head) pair.
    assert_eq!(find([1, 1, 128, 1, 64, 128, 1]), Some(24));
    assert_eq!(find([1, 1, 128, 1, 128, 64, 1]), Some(24));
    assert_eq!(find([1, 1, 256, 1, 768, 3072, 1]), Some(1));
    assert_eq!(find([1, 1, 256, 1, 3072, 768, 1]), Some(1));
    assert_eq!(l.len(), 5, "{l:?}");
    assert!(l.iter().all(|l| l.kind == LayerKind::Matmul));
}

#[test]
fn grouped_depthwise_dilated_and_rectangular_convs() {
    let imp = network_from_onnx("c", &convs(), 1).unwrap();
    let l = &imp.network.layers;
    assert_eq!(l.len(), 4, "{l:?}");
    // Depthwise: 32 groups of one channel each, stride 2 -> 56x56.
    assert_eq!(l[0].dims, [3, 3, 56, 56, 1, 1, 1]);
    assert_eq!((l[0].count, l[0].wstride, l[0].hstride), (32, 2, 2));
    // Group 4: 4 convs of 8 -> 16 channels.
    assert_eq!(l[1].dims, [1, 1, 56, 56, 8, 16, 1]);
    assert_eq!(l[1].count, 4);
    // Dilation 2 with pads 2 keeps 56x56.
    assert_eq!(l[2].dims, [3, 3, 56, 56, 64, 64, 1]);
    assert_eq!((l[2].wdilation, l[2].hdilation), (2, 2));
    // Width is R/P/wstride: kernel 7 wide, 1 high; output 28 wide, 56 high.
    assert_eq!(l[3].dims, [7, 1, 28, 56, 64, 16, 1]);
    assert_eq!((l[3].wstride, l[3].hstride), (2, 1));
    assert!(imp.notes.iter().any(|n| n.contains("group 32")));
}

fn err(bytes: &[u8]) -> String {
    network_from_onnx("m", bytes, 1).unwrap_err()
}

#[test]
fn bad_files_are_clear_errors() {
    assert!(err(b"hello, this is not a model\n").contains("not an ONNX model"));
    assert!(err(b"").contains("not an ONNX model"));
    let m = transformer();
    assert!(
        err(&m[..m.len() / 2]).contains("truncated"),
        "{}",
        err(&m[..m.len() / 2])
    );
    let e = err(&one_op_model("Relu"));
    assert!(
        e.contains("no Conv, Gemm or MatMul") && e.contains("Relu x1"),
        "{e}"
    );
    // A symbolic size off the batch axis cannot be guessed.
    let mut g = G::default();
    g.inputs.push(vi("x", &[D::V(1), D::P("seq"), D::V(8)]));
    let w = g.weight(&[8, 8]);
    g.op("MatMul", &["x", &w], &[]);
    assert!(err(&g.model()).contains("`seq` at axis 1"));
    // A Conv after an op whose shape is unknown names the input.
    let mut g = G::default();
    g.inputs.push(vi("x", &shape(&[1, 3, 8, 8])));
    let y = g.op("Resize", &["x"], &[]);
    let w = g.weight(&[4, 3, 3, 3]);
    g.op("Conv", &[&y, &w], &[]);
    assert!(err(&g.model()).contains("input `t1` is unknown"));
}

#[test]
fn no_prefix_or_corruption_panics() {
    let m = transformer();
    for n in 0..m.len() {
        let _ = network_from_onnx("m", &m[..n], 1);
    }
    for i in (0..m.len()).step_by(7) {
        let mut c = m.clone();
        c[i] ^= 0xff;
        let _ = network_from_onnx("m", &c, 1);
    }
}

// --- The command. ----------------------------------------------------------------------------

fn dosa(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dosa"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn cli_writes_a_network_that_checks_and_nothing_on_errors() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("resnet50.onnx");
    std::fs::write(&model, resnet50()).unwrap();
    let out = dir.path().join("r.dosa");
    let r = dosa(&[
        "import",
        "onnx",
        model.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--batch",
        "2",
    ]);
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("network resnet50 {"));
    assert!(text.contains("# Note: ops that are not layers"));
    assert!(String::from_utf8_lossy(&r.stderr).contains("Relu x49"));
    assert_eq!(
        dosa(&["check", out.to_str().unwrap()]).status.code(),
        Some(0)
    );

    let bad = dir.path().join("bad.onnx");
    for bytes in [
        b"not a model".to_vec(),
        one_op_model("Relu"),
        resnet50()[..999].to_vec(),
    ] {
        std::fs::write(&bad, bytes).unwrap();
        let o = dir.path().join("bad.dosa");
        let r = dosa(&[
            "import",
            "onnx",
            bad.to_str().unwrap(),
            "-o",
            o.to_str().unwrap(),
        ]);
        assert_eq!(r.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&r.stderr).contains("nothing written"));
        assert!(!o.exists());
    }
    let r = dosa(&["import", "onnx", "/no/such/file.onnx"]);
    assert_eq!(r.status.code(), Some(2));
}

// --- Committed fixtures. ---------------------------------------------------------------------

/// The models above as files, to try the command by hand (`dosa import onnx
/// tests/fixtures/onnx/resnet50.onnx`); regenerate with
/// `DOSA_WRITE_FIXTURES=1 cargo test --test onnx_import fixtures`.
#[test]
fn fixtures_are_the_generated_models() {
    let dir = std::path::Path::new("tests/fixtures/onnx");
    for (name, bytes) in [
        ("resnet50.onnx", resnet50()),
        ("transformer_block.onnx", transformer()),
        ("convs.onnx", convs()),
    ] {
        let path = dir.join(name);
        if std::env::var_os("DOSA_WRITE_FIXTURES").is_some() {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        }
        let on_disk = std::fs::read(&path).unwrap();
        assert!(
            on_disk == bytes,
            "{} is stale: regenerate it",
            path.display()
        );
    }
}

#[test]
fn a_failed_write_keeps_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("convs.onnx");
    std::fs::write(&model, convs()).unwrap();
    let out = dir.path().join("c.dosa");
    std::fs::write(&out, "old").unwrap();
    let r = Command::new(env!("CARGO_BIN_EXE_dosa"))
        .args([
            "import",
            "onnx",
            model.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ])
        .env("DOSA_FAULT", "enospc@0")
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(3));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "old");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        2,
        "a temp was left"
    );
}
