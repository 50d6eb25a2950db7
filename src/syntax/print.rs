//! IR back to `.dosa`: build the syntax tree a program would have been written as, then print it
//! with the canonical formatter, so generated files (`result.dosa`) look hand-formatted.

use super::ast::*;
use crate::ir::{
    AccessEnergy, Arch, Bandwidth, Bound, Instances, Layer, LayerKind, Level, Network, Program,
    SearchSpec,
};

fn sp() -> Span {
    Span::default()
}

fn name(s: &str) -> Name {
    Name {
        text: s.to_string(),
        span: sp(),
    }
}

fn word(s: &str) -> Word {
    Word {
        text: s.to_string(),
        span: sp(),
    }
}

fn num(s: impl ToString) -> Num {
    Num {
        text: s.to_string(),
        span: sp(),
    }
}

fn qty(n: impl ToString, unit: &str) -> Quantity {
    Quantity {
        num: num(n),
        unit: Some(word(unit)),
        span: sp(),
    }
}

/// A real as the shortest decimal that reads back to the same `f64` (Rust's `Display`).
fn real(x: f64) -> String {
    format!("{x}")
}

/// Bytes in the largest binary unit that divides them exactly.
fn bytes_qty(b: u64) -> Quantity {
    for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if b >= 1 << shift && b % (1 << shift) == 0 {
            return qty(b >> shift, unit);
        }
    }
    qty(b, "B")
}

fn level(l: &Level) -> LevelDef {
    let mut s = vec![LevelStmt::Keeps(
        l.keeps
            .iter()
            .map(|t| word(&t.letter().to_string()))
            .collect(),
        sp(),
    )];
    s.push(LevelStmt::Word(qty(l.word_bits, "bits"), sp()));
    let scope = (l.instances != Instances::Single).then_some((Scope::Each, sp()));
    let bound = match l.capacity {
        Bound::Fixed(b) => Some(BoundSpec::Fixed(bytes_qty(b))),
        Bound::AtMost(b) => Some(BoundSpec::AtMost(bytes_qty(b))),
        // A backing level is free unless it says otherwise.
        Bound::Free if l.is_backing => None,
        Bound::Free => Some(BoundSpec::Free(sp())),
    };
    if let Some(b) = bound {
        let scope = if matches!(b, BoundSpec::Free(_)) {
            None
        } else {
            scope
        };
        s.push(LevelStmt::Capacity(b, scope, sp()));
    }
    if l.double_buffered {
        s.push(LevelStmt::DoubleBuffered(sp()));
    }
    let inst = match l.instances {
        Instances::PerPe => "per_pe",
        Instances::PerColumn => "per_column",
        Instances::Single => "single",
    };
    s.push(LevelStmt::Instances(word(inst), sp()));
    if let Some(b) = l.bandwidth {
        let spec = match b {
            Bandwidth::Words(w) => BwSpec::Words(num(real(w))),
            Bandwidth::PerPeDim(c) => BwSpec::PerPe(Some(num(real(c)))),
            Bandwidth::PerSpatial(c, d) => {
                BwSpec::PerSpatial(Some(num(real(c))), word(&d.to_string()))
            }
        };
        s.push(LevelStmt::Bandwidth(spec, sp()));
    }
    let energy = if l.energy == AccessEnergy::timeloop_sram(l.word_bits) {
        EnergySpec::Named(word("sram"))
    } else if l.energy == AccessEnergy::timeloop_dram(l.word_bits) {
        EnergySpec::Named(word("dram"))
    } else {
        match l.energy {
            AccessEnergy::Const(c) => EnergySpec::Const(qty(real(c), "pJ")),
            AccessEnergy::Linear { base, per_kib } => {
                EnergySpec::Linear(qty(real(base), "pJ"), qty(real(per_kib), "pJ"), word("KiB"))
            }
        }
    };
    s.push(LevelStmt::Energy(energy, sp()));
    if !l.spatial.is_empty() {
        let items = l
            .spatial
            .iter()
            .map(|sd| SpatialItem {
                dim: word(&sd.dim.to_string()),
                max: sd.max.map(num),
                span: sp(),
            })
            .collect();
        s.push(LevelStmt::Spatial(items, sp()));
    }
    if let Some(t) = &l.temporal {
        let ws = if t.is_empty() {
            vec![word("none")]
        } else {
            t.iter().map(|d| word(&d.to_string())).collect()
        };
        s.push(LevelStmt::Temporal(ws, sp()));
    }
    if l.is_backing {
        s.push(LevelStmt::Backing(sp()));
    }
    LevelDef {
        name: name(&l.name),
        stmts: s,
        span: sp(),
    }
}

/// The `arch` block that lowers back to `arch`.
pub fn arch_def(a: &Arch) -> ArchDef {
    let pe = match a.pe_dim {
        Bound::Fixed(n) => PeSpec::Grid(num(n), num(n)),
        Bound::AtMost(n) => PeSpec::AtMost(num(n)),
        Bound::Free => PeSpec::Free(sp()),
    };
    let mut stmts = vec![
        ArchStmt::Pe(pe, sp()),
        ArchStmt::PeMin(num(a.pe_min), sp()),
        ArchStmt::MacEnergy(qty(real(a.mac_energy_pj), "pJ"), sp()),
    ];
    stmts.extend(a.levels.iter().map(|l| ArchStmt::Level(level(l))));
    ArchDef {
        name: name(&a.name),
        stmts,
        span: sp(),
    }
}

fn param(k: &str, v: u64) -> Param {
    Param {
        key: word(k),
        value: num(v),
        span: sp(),
    }
}

/// One layer line. Matmuls print as `matmul M= K= N=`; conv strides and dilations print as
/// `stride=`/`dilation=` when equal in both directions, and only when not 1; so does `count`.
pub fn layer_def(l: &Layer) -> LayerDef {
    let mut params = Vec::new();
    let kind = match l.kind {
        LayerKind::Matmul => {
            params.push(param("M", l.dims[2]));
            params.push(param("K", l.dims[4]));
            params.push(param("N", l.dims[5]));
            LayerKw::Matmul
        }
        LayerKind::Conv => {
            for d in crate::ir::Dim::ALL {
                params.push(param(&d.to_string(), l.dim(d)));
            }
            for (both, w, h, wv, hv) in [
                ("stride", "wstride", "hstride", l.wstride, l.hstride),
                (
                    "dilation",
                    "wdilation",
                    "hdilation",
                    l.wdilation,
                    l.hdilation,
                ),
            ] {
                if wv == hv {
                    if wv != 1 {
                        params.push(param(both, wv));
                    }
                } else {
                    params.push(param(w, wv));
                    params.push(param(h, hv));
                }
            }
            LayerKw::Conv
        }
    };
    if l.count != 1 {
        params.push(param("count", l.count));
    }
    LayerDef::Layer {
        kind,
        name: name(&l.name),
        params,
        span: sp(),
    }
}

/// The `network` block of `n`.
pub fn network_def(n: &Network) -> NetworkDef {
    NetworkDef {
        name: name(&n.name),
        layers: n.layers.iter().map(layer_def).collect(),
        span: sp(),
    }
}

/// The `search` block of `s`, every setting spelled out.
pub fn search_def(s: &SearchSpec) -> SearchDef {
    let set = |k: SearchKey, v: SearchVal| SearchStmt::Set(k, v, sp());
    let mut stmts = vec![
        set(
            SearchKey::Objective,
            SearchVal::Word(word(s.objective.name())),
        ),
        set(SearchKey::Starts, SearchVal::Num(num(s.starts))),
        set(SearchKey::Steps, SearchVal::Num(num(s.steps))),
        set(SearchKey::RoundEvery, SearchVal::Num(num(s.round_every))),
        set(SearchKey::Lr, SearchVal::Num(num(real(s.lr)))),
        set(SearchKey::Seed, SearchVal::Num(num(s.seed))),
    ];
    if let Some(p) = s.bounds.pe_max {
        stmts.push(set(SearchKey::MaxPe, SearchVal::Num(num(p))));
    }
    if let Some(k) = s.bounds.sp_max_kib {
        stmts.push(set(
            SearchKey::MaxScratchpad,
            SearchVal::Quantity(qty(real(k), "KiB")),
        ));
    }
    if let Some(k) = s.bounds.acc_max_kib {
        stmts.push(set(
            SearchKey::MaxAccumulator,
            SearchVal::Quantity(qty(real(k), "KiB")),
        ));
    }
    if let Some(h) = s.hardware {
        stmts.push(set(SearchKey::Hardware, SearchVal::Word(word(h.name()))));
    }
    if !s.mapspace.is_gemmini() {
        stmts.push(set(
            SearchKey::Mapspace,
            SearchVal::Word(word(s.mapspace.name())),
        ));
    }
    stmts.push(set(
        SearchKey::Predictor,
        SearchVal::Word(word(s.predictor.name())),
    ));
    if let Some(m) = &s.model {
        stmts.push(set(
            SearchKey::Model,
            SearchVal::Str(StrLit {
                value: m.clone(),
                span: sp(),
            }),
        ));
    }
    SearchDef { stmts, span: sp() }
}

/// The whole program as a syntax tree: arch, networks, mappings, search.
pub fn program_def(p: &Program) -> File {
    let mut items = vec![Item::Arch(arch_def(&p.arch))];
    items.extend(p.networks.iter().map(|n| Item::Network(network_def(n))));
    items.extend(p.mappings.iter().map(|m| {
        Item::Map(MapDef {
            network: Some(name(&m.network)),
            layer: name(&m.layer),
            mapping: if m.auto {
                MapSpec::Word(Word {
                    text: "auto".to_string(),
                    span: sp(),
                })
            } else {
                MapSpec::Compact(StrLit {
                    value: m.mapping.to_string(),
                    span: sp(),
                })
            },
            span: sp(),
        })
    }));
    items.push(Item::Search(search_def(&p.search)));
    File { items }
}
