//! Semantic checks and lowering: from the ASTs of a file and its imports to a checked [`Program`].
//!
//! Every problem becomes a codespan diagnostic with the offending span; the checker keeps going
//! after an error so that one run reports all of them. A [`Program`] comes out only when there
//! was no error at all.
//!
//! One file per concept, each an `impl Checker` block: `numbers` (decimals, units, bounds),
//! `arch`, `network`, `mapping` (the compact form, partial tiles, Gemmini's rules) and
//! `search` (the search block); this file holds the checker itself and the whole-program pass.

use super::ast::*;
use super::lexer::decode_string;
use crate::ir::{
    gemmini_arch, parse_compact, AccessEnergy, Arch, Bandwidth, Bound, Dim, HardwareMode, HwBounds,
    Instances, Layer, LayerKind, LayerMapping, Level, Mapping, Mapspace, Network, Objective,
    Predictor, Program, SearchSpec, SpatialDim, Tensor, TensorSet,
};
use codespan_reporting::diagnostic::{Diagnostic, Label};
use std::collections::BTreeMap;

/// The checker's state: the sources (for string sub-spans) and the diagnostics so far.
pub struct Checker<'a> {
    sources: &'a [String],
    pub diags: Vec<Diagnostic<usize>>,
    /// Warnings, kept apart so that "no new diagnostics" keeps meaning "no new errors".
    pub warnings: Vec<Diagnostic<usize>>,
}

/// Where a layer was defined, so mapping errors can point back at it.
#[derive(Clone)]
struct LayerSite {
    file: usize,
    name: Span,
    /// The `P=56` parameter that set each dim, when written.
    dims: [Option<Span>; 7],
    /// `None` when the layer itself had errors (its mappings are then not checked against it).
    layer: Option<Layer>,
}

struct NetSite {
    name: String,
    file: usize,
    span: Span,
    layers: Vec<(String, LayerSite)>,
    /// Position in `layers` by name (networks can be long).
    index: BTreeMap<String, usize>,
}

impl NetSite {
    fn layer(&self, name: &str) -> Option<&LayerSite> {
        self.index.get(name).map(|&i| &self.layers[i].1)
    }
}

/// A level's `capacity` statement: the bound, `each`/`total`, and the statement's span.
type CapacityStmt<'a> = (&'a BoundSpec, Option<(Scope, Span)>, Span);

/// The largest energy (per access or per MAC, pJ) a program may give: beyond it the model's
/// products with access counts and latencies can overflow `f64`.
const MAX_PJ: f64 = 1e100;

const DIM_HINT: &str = "dims are R S (filter width, height), P Q (output width, height), C (input channels), K (output channels) and N (batch)";

mod arch;
mod mapping;
mod network;
mod numbers;
mod search;

pub use mapping::{locate_words, FactorWord};
use numbers::bound_text;
pub use numbers::{exact_scaled, Exact};

impl<'a> Checker<'a> {
    /// A checker over the given file sources (indexed by file id).
    pub fn new(sources: &'a [String]) -> Checker<'a> {
        Checker {
            sources,
            diags: Vec::new(),
            warnings: Vec::new(),
        }
    }

    pub(super) fn error(
        &mut self,
        code: &str,
        file: usize,
        span: Span,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> usize {
        let label = label.into();
        let mut l = Label::primary(file, span.range());
        if !label.is_empty() {
            l = l.with_message(label);
        }
        self.diags.push(
            Diagnostic::error()
                .with_code(code)
                .with_message(message.into())
                .with_labels(vec![l]),
        );
        self.diags.len() - 1
    }

    pub(super) fn note(&mut self, idx: usize, note: impl Into<String>) {
        self.diags[idx].notes.push(note.into());
    }

    pub(super) fn hint(&mut self, idx: usize, hint: impl Into<String>) {
        self.diags[idx].notes.push(format!("hint: {}", hint.into()));
    }

    pub(super) fn secondary(
        &mut self,
        idx: usize,
        file: usize,
        span: Span,
        message: impl Into<String>,
    ) {
        self.diags[idx]
            .labels
            .push(Label::secondary(file, span.range()).with_message(message.into()));
    }

    // ---------------------------------------------------------------- program

    /// Check and lower the items of a file and its imports (each with its file id, in load order).
    pub fn program(&mut self, items: &[(usize, &Item)]) -> Option<Program> {
        let errors_before = self.diags.len();
        // Architecture: at most one, else the built-in Gemmini.
        let mut arch: Option<Arch> = None;
        let mut arch_ok = true;
        let mut first_arch: Option<(usize, &ArchDef)> = None;
        for (f, item) in items {
            if let Item::Arch(a) = item {
                if let Some((ff, first)) = first_arch {
                    let i = self.error(
                        "multiple-arch",
                        *f,
                        a.name.span,
                        format!("a second architecture `{}`", a.name.text),
                        "second architecture",
                    );
                    self.secondary(
                        i,
                        ff,
                        first.name.span,
                        format!("`{}` is defined here", first.name.text),
                    );
                    self.note(i, "a program describes one architecture; keep each in its own file and import one");
                    continue;
                }
                first_arch = Some((*f, a));
                arch = self.arch(*f, a);
                arch_ok = arch.is_some();
            }
        }
        if first_arch.is_none() {
            arch = Some(gemmini_arch());
        }
        // Networks.
        let mut networks = Vec::new();
        let mut sites: Vec<NetSite> = Vec::new();
        for (f, item) in items {
            if let Item::Network(nd) = item {
                let (net, site) = self.network(*f, nd);
                if let Some(prev) = sites.iter().find(|s| s.name == site.name) {
                    let i = self.error(
                        "duplicate",
                        *f,
                        nd.name.span,
                        format!("network `{}` is defined twice", nd.name.text),
                        "defined again here",
                    );
                    let (pf, ps) = (prev.file, prev.span);
                    self.secondary(i, pf, ps, "first defined here");
                    continue;
                }
                if let Some(n) = net {
                    networks.push(n);
                }
                sites.push(site);
            }
        }
        // Mappings.
        let mut mappings: Vec<LayerMapping> = Vec::new();
        let mut mapped: Vec<(String, String, usize, Span)> = Vec::new();
        for (f, item) in items {
            if let Item::Map(md) = item {
                let arch_ref = if arch_ok { arch.as_ref() } else { None };
                let Some((net, layer, m, auto)) = self.mapping(*f, md, arch_ref, &sites) else {
                    continue;
                };
                if let Some((_, _, pf, ps)) =
                    mapped.iter().find(|(n, l, _, _)| *n == net && *l == layer)
                {
                    let i = self.error(
                        "duplicate",
                        *f,
                        md.span,
                        format!("layer `{net}.{layer}` is mapped twice"),
                        "mapped again here",
                    );
                    let (pf, ps) = (*pf, *ps);
                    self.secondary(i, pf, ps, "first mapped here");
                    continue;
                }
                mapped.push((net.clone(), layer.clone(), *f, md.span));
                if let (Some(a), false) = (arch_ref, auto) {
                    let l = networks
                        .iter()
                        .find(|n| n.name == net)
                        .and_then(|n| n.layers.iter().find(|l| l.name == layer));
                    if let Some(l) = l {
                        self.gemmini_rules(*f, md, a, l, &m);
                    }
                }
                mappings.push(LayerMapping {
                    network: net,
                    layer,
                    mapping: m,
                    auto,
                });
            }
        }
        // Search settings: at most one block.
        let mut search = SearchSpec::default();
        let mut first_search: Option<(usize, Span)> = None;
        for (f, item) in items {
            if let Item::Search(sd) = item {
                if let Some((ff, fs)) = first_search {
                    let kw = |sp: Span| Span::new(sp.lo, sp.lo + "search".len());
                    let i = self.error(
                        "duplicate",
                        *f,
                        kw(sd.span),
                        "a second `search` block",
                        "second block",
                    );
                    self.secondary(i, ff, kw(fs), "first block");
                    continue;
                }
                first_search = Some((*f, sd.span));
                if let Some(s) = self.search(*f, sd) {
                    if let Some(a) = arch.as_ref().filter(|_| arch_ok) {
                        let d = super::bounds::unmeetable(*f, sd, a, &s.bounds);
                        self.diags.extend(d);
                    }
                    search = s;
                }
            }
        }
        // A program that describes its own chip (an `arch` fixing the array and every buffer)
        // is searched for mappings on that chip, unless its search block says `hardware free`
        // or bounds a co-design (`max_*`).
        let fixed = arch
            .as_ref()
            .is_some_and(|a| crate::search::design::fixed_hardware(a).is_some());
        let b = search.bounds;
        let bounded = b.pe_max.is_some() || b.sp_max_kib.is_some() || b.acc_max_kib.is_some();
        // Resolved here, so that a printed program (which always spells out its arch) keeps it.
        if search.hardware.is_none() {
            search.hardware = Some(if first_arch.is_some() && fixed && !bounded {
                HardwareMode::Fixed
            } else {
                HardwareMode::Free
            });
        }
        if self.diags.len() > errors_before {
            return None;
        }
        Some(Program {
            arch: arch?,
            networks,
            mappings,
            search,
        })
    }
}

/// The closest candidate by edit distance, if close enough to be a likely typo.
pub fn suggest<'c>(name: &str, candidates: impl Iterator<Item = &'c str>) -> Option<&'c str> {
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .filter(|c| *c != name)
        .map(|c| (edit_distance(&name.to_lowercase(), &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_scaling() {
        assert_eq!(exact_scaled("64", 1024), Ok(65536));
        assert_eq!(exact_scaled("1.5", 1024), Ok(1536));
        assert_eq!(exact_scaled("0.5", 1), Err(Exact::Fraction));
        assert_eq!(exact_scaled("2e3", 1), Ok(2000));
        assert_eq!(exact_scaled("1e-3", 1000), Ok(1));
        assert_eq!(
            exact_scaled("18446744073709551616", 1),
            Err(Exact::Overflow)
        );
        assert_eq!(exact_scaled("16", 1 << 60), Err(Exact::Overflow));
        assert_eq!(exact_scaled("0.0", 1024), Ok(0));
        assert_eq!(
            exact_scaled("1e99999999999999999999", 1),
            Err(Exact::Overflow)
        );
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            suggest("resnet", ["resnet50", "bert"].into_iter()),
            Some("resnet50")
        );
        assert_eq!(suggest("unet", ["resnet50", "bert"].into_iter()), None);
        assert_eq!(
            suggest("resnt50", ["resnet50", "bert"].into_iter()),
            Some("resnet50")
        );
        assert_eq!(
            suggest("strid", ["stride", "count"].into_iter()),
            Some("stride")
        );
    }

    #[test]
    fn words_of_a_mapping() {
        let t = "L3[WIO] K8 Q28 - L2[WI] N1 K4X - L1[O] C3X - L0[W] P16";
        let w = locate_words(t);
        let k4 = w.iter().find(|w| w.factor == Some((Dim::K, true))).unwrap();
        assert_eq!(&t[k4.lo..k4.hi], "K4X");
        assert_eq!(k4.level, 2);
        let l0 = w
            .iter()
            .find(|w| w.level == 0 && w.factor.is_none())
            .unwrap();
        assert_eq!(&t[l0.lo..l0.hi], "L0[W]");
    }
}
