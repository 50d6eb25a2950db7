//! Random layers for property tests: a conv with a square kernel and stride, or a matmul, each
//! size drawn from the caller's lists.
#![allow(dead_code)]

use dosa::ir::Layer;
use proptest::prelude::*;

/// Convs `R=S` from `kernels`, `P=Q` from `maps`, `C` from `cs`, `K` from `ks`, stride 1 or 2;
/// or matmuls `M x C -> K` with `M` from `maps` (sizes below 2 raised to 2).
pub fn layer_strategy(
    kernels: Vec<u64>,
    maps: Vec<u64>,
    cs: Vec<u64>,
    ks: Vec<u64>,
) -> impl Strategy<Value = Layer> {
    (
        prop::sample::select(kernels),
        prop::sample::select(maps),
        prop::sample::select(cs),
        prop::sample::select(ks),
        prop::sample::select(vec![1u64, 2]),
        any::<bool>(),
    )
        .prop_map(|(r, pq, c, k, stride, matmul)| {
            if matmul {
                Layer::matmul("mm", pq.max(2), c.max(2), k.max(2))
            } else {
                Layer::conv("conv", [r, r, pq, pq, c, k, 1], stride, stride)
            }
        })
}
