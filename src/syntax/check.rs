//! Semantic checks and lowering: from the ASTs of a file and its imports to a checked [`Program`].
//!
//! Every problem becomes a codespan diagnostic with the offending span; the checker keeps going
//! after an error so that one run reports all of them. A [`Program`] comes out only when there
//! was no error at all.

use super::ast::*;
use super::lexer::decode_string;
use crate::ir::{
    gemmini_arch, parse_compact, AccessEnergy, Arch, Bandwidth, Bound, Dim, HardwareMode, HwBounds,
    Instances, Layer, LayerKind, LayerMapping, Level, Mapping, Network, Objective, Predictor,
    Program, SearchSpec, SpatialDim, Tensor, TensorSet,
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

impl<'a> Checker<'a> {
    /// A checker over the given file sources (indexed by file id).
    pub fn new(sources: &'a [String]) -> Checker<'a> {
        Checker {
            sources,
            diags: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn error(
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

    fn note(&mut self, idx: usize, note: impl Into<String>) {
        self.diags[idx].notes.push(note.into());
    }

    fn hint(&mut self, idx: usize, hint: impl Into<String>) {
        self.diags[idx].notes.push(format!("hint: {}", hint.into()));
    }

    fn secondary(&mut self, idx: usize, file: usize, span: Span, message: impl Into<String>) {
        self.diags[idx]
            .labels
            .push(Label::secondary(file, span.range()).with_message(message.into()));
    }

    // ---------------------------------------------------------------- numbers and units

    fn whole(&mut self, f: usize, n: &Num, what: &str) -> Option<u64> {
        if !n.text.bytes().all(|b| b.is_ascii_digit()) {
            let i = self.error(
                "not-integer",
                f,
                n.span,
                format!("{what} must be a whole number, not `{}`", n.text),
                "",
            );
            self.hint(i, "write digits only, like `64`");
            return None;
        }
        match n.text.parse::<u64>() {
            Ok(v) => Some(v),
            Err(_) => {
                let i = self.error(
                    "overflow",
                    f,
                    n.span,
                    format!("`{}` does not fit in 64 bits", n.text),
                    "too large",
                );
                self.note(i, format!("{what} must be at most {}", u64::MAX));
                None
            }
        }
    }

    fn positive(&mut self, f: usize, n: &Num, what: &str) -> Option<u64> {
        let v = self.whole(f, n, what)?;
        if v == 0 {
            self.error(
                "non-positive",
                f,
                n.span,
                format!("{what} must be at least 1"),
                "zero",
            );
            return None;
        }
        Some(v)
    }

    fn positive_u32(&mut self, f: usize, n: &Num, what: &str) -> Option<u32> {
        let v = self.positive(f, n, what)?;
        match u32::try_from(v) {
            Ok(v) => Some(v),
            Err(_) => {
                self.error(
                    "overflow",
                    f,
                    n.span,
                    format!("{what} `{}` does not fit in 32 bits", n.text),
                    format!("at most {}", u32::MAX),
                );
                None
            }
        }
    }

    fn real(&mut self, f: usize, n: &Num, what: &str) -> Option<f64> {
        match n.text.parse::<f64>() {
            Ok(v) if v.is_finite() => Some(v),
            _ => {
                self.error(
                    "overflow",
                    f,
                    n.span,
                    format!("{what} `{}` is too large", n.text),
                    "not a finite number",
                );
                None
            }
        }
    }

    fn positive_real(&mut self, f: usize, n: &Num, what: &str) -> Option<f64> {
        let v = self.real(f, n, what)?;
        if v <= 0.0 {
            self.error(
                "non-positive",
                f,
                n.span,
                format!("{what} must be greater than 0"),
                "zero",
            );
            return None;
        }
        Some(v)
    }

    fn unit<'q>(
        &mut self,
        f: usize,
        q: &'q Quantity,
        what: &str,
        units: &str,
        example: &str,
    ) -> Option<&'q Word> {
        match &q.unit {
            Some(u) => Some(u),
            None => {
                let i = self.error(
                    "missing-unit",
                    f,
                    q.span,
                    format!("{what} needs a unit"),
                    format!("write `{example}`"),
                );
                self.note(i, format!("units here: {units}"));
                None
            }
        }
    }

    fn unknown_unit(&mut self, f: usize, u: &Word, what: &str, units: &[&str], hint: &str) {
        let i = self.error(
            "unknown-unit",
            f,
            u.span,
            format!("unknown unit `{}` for {what}", u.text),
            "",
        );
        self.note(i, format!("units here: {}", units.join(", ")));
        let alias = match u.text.as_str() {
            "KB" | "kB" | "kb" | "K" | "k" | "Kb" | "kib" | "KIB" => Some("KiB"),
            "MB" | "mB" | "mb" | "M" | "mib" | "MIB" => Some("MiB"),
            "GB" | "gb" | "G" | "gib" | "GIB" => Some("GiB"),
            "byte" | "bytes" | "b" => Some("B"),
            "pj" | "PJ" => Some("pJ"),
            _ => None,
        }
        .filter(|a| units.contains(a));
        if let Some(a) = alias {
            self.hint(i, format!("did you mean `{a}`?"));
        } else if let Some(s) = suggest(&u.text, units.iter().copied()) {
            self.hint(i, format!("did you mean `{s}`?"));
        } else if !hint.is_empty() {
            self.hint(i, hint);
        }
    }

    /// A size in bytes (`64 KiB`, `1.5 KiB`, `512 B`), exact.
    fn bytes(&mut self, f: usize, q: &Quantity, what: &str) -> Option<u64> {
        const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
        let u = self.unit(f, q, what, "B, KiB, MiB, GiB", "64 KiB")?;
        let mult: u64 = match u.text.as_str() {
            "B" => 1,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            _ => {
                self.unknown_unit(f, u, what, &UNITS, "sizes use binary units: 1 KiB = 1024 B");
                return None;
            }
        };
        match exact_scaled(&q.num.text, mult) {
            Ok(0) => {
                self.error(
                    "non-positive",
                    f,
                    q.span,
                    format!("{what} must be at least 1 B"),
                    "zero",
                );
                None
            }
            Ok(v) => Some(v),
            Err(Exact::Fraction) => {
                self.error(
                    "fractional-bytes",
                    f,
                    q.span,
                    format!(
                        "{what} `{} {}` is not a whole number of bytes",
                        q.num.text, u.text
                    ),
                    "",
                );
                None
            }
            Err(Exact::Overflow) => {
                self.error(
                    "overflow",
                    f,
                    q.span,
                    format!("{what} does not fit in 64 bits of bytes"),
                    "too large",
                );
                None
            }
        }
    }

    /// A size in KiB as a real number (search bounds).
    fn kib(&mut self, f: usize, q: &Quantity, what: &str) -> Option<f64> {
        const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
        let u = self.unit(f, q, what, "B, KiB, MiB, GiB", "512 KiB")?;
        let scale = match u.text.as_str() {
            "B" => 1.0 / 1024.0,
            "KiB" => 1.0,
            "MiB" => 1024.0,
            "GiB" => 1024.0 * 1024.0,
            _ => {
                self.unknown_unit(f, u, what, &UNITS, "sizes use binary units: 1 KiB = 1024 B");
                return None;
            }
        };
        let v = self.positive_real(f, &q.num, what)? * scale;
        if !v.is_finite() {
            self.error("overflow", f, q.span, format!("{what} is too large"), "");
            return None;
        }
        Some(v)
    }

    /// An energy in pJ.
    fn pj(&mut self, f: usize, q: &Quantity, what: &str) -> Option<f64> {
        let u = self.unit(f, q, what, "pJ", "0.5 pJ")?;
        if u.text != "pJ" {
            self.unknown_unit(
                f,
                u,
                what,
                &["pJ"],
                "energies are written in picojoules: `pJ`",
            );
            return None;
        }
        let v = self.real(f, &q.num, what)?;
        if v.abs() > MAX_PJ {
            let i = self.error(
                "overflow",
                f,
                q.span,
                format!("{what} `{} pJ` is too large", q.num.text),
                "beyond 1e100 pJ",
            );
            self.note(i, "the model multiplies energies by access counts (up to about 1e39 for a network) and by latencies; an energy this large makes them overflow to infinity");
            return None;
        }
        Some(v)
    }

    fn dim(&mut self, f: usize, w: &Word) -> Option<Dim> {
        let mut chars = w.text.chars();
        if let (Some(c), None) = (chars.next(), chars.next()) {
            if let Some(d) = Dim::from_letter(c) {
                return Some(d);
            }
        }
        let i = self.error(
            "unknown-dim",
            f,
            w.span,
            format!("unknown dim `{}`", w.text),
            "not a dim",
        );
        self.note(i, DIM_HINT);
        None
    }

    fn tensor(&mut self, f: usize, w: &Word) -> Option<Tensor> {
        let mut chars = w.text.chars();
        if let (Some(c), None) = (chars.next(), chars.next()) {
            if let Some(t) = Tensor::from_letter(c) {
                return Some(t);
            }
        }
        let i = self.error(
            "unknown-tensor",
            f,
            w.span,
            format!("unknown tensor `{}`", w.text),
            "",
        );
        self.note(i, "tensors are W (weights), I (inputs) and O (outputs)");
        None
    }

    fn choice<T: Copy>(
        &mut self,
        f: usize,
        w: &Word,
        what: &str,
        options: &[(&str, T)],
    ) -> Option<T> {
        if let Some((_, v)) = options.iter().find(|(n, _)| *n == w.text) {
            return Some(*v);
        }
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        let i = self.error(
            "unknown-value",
            f,
            w.span,
            format!("unknown {what} `{}`", w.text),
            "",
        );
        self.note(i, format!("expected one of: {}", names.join(", ")));
        if let Some(s) = suggest(&w.text, names.iter().copied()) {
            self.hint(i, format!("did you mean `{s}`?"));
        }
        None
    }

    /// Report a statement given twice in one block; returns whether it was a repeat.
    fn repeated(
        &mut self,
        seen: &mut BTreeMap<&'static str, Span>,
        key: &'static str,
        f: usize,
        span: Span,
    ) -> bool {
        if let Some(first) = seen.get(key).copied() {
            let i = self.error(
                "duplicate",
                f,
                span,
                format!("`{key}` is given twice"),
                "given again here",
            );
            self.secondary(i, f, first, "first given here");
            return true;
        }
        seen.insert(key, span);
        false
    }

    // ---------------------------------------------------------------- architecture

    /// Lower an `arch` block.
    pub fn arch(&mut self, f: usize, def: &ArchDef) -> Option<Arch> {
        let errors_before = self.diags.len();
        let mut seen = BTreeMap::new();
        let mut pe: Option<Bound> = None;
        let mut pe_span = def.name.span;
        let mut pe_min: Option<u64> = None;
        let mut mac: Option<f64> = None;
        let mut level_defs: Vec<&LevelDef> = Vec::new();
        for stmt in &def.stmts {
            match stmt {
                ArchStmt::Pe(spec, span) => {
                    if self.repeated(&mut seen, "pe", f, *span) {
                        continue;
                    }
                    pe_span = *span;
                    pe = match spec {
                        PeSpec::Grid(a, b) => {
                            let (x, y) = (
                                self.positive(f, a, "the PE array side"),
                                self.positive(f, b, "the PE array side"),
                            );
                            match (x, y) {
                                (Some(x), Some(y)) if x != y => {
                                    let i = self.error(
                                        "pe-square",
                                        f,
                                        *span,
                                        format!("the PE array must be square, not {x}x{y}"),
                                        "not square",
                                    );
                                    self.note(i, "Gemmini spreads C over the rows and K over the columns of a square array");
                                    None
                                }
                                (Some(x), Some(_)) => Some(Bound::Fixed(x)),
                                _ => None,
                            }
                        }
                        PeSpec::Fixed(n) => {
                            self.positive(f, n, "the PE array side").map(Bound::Fixed)
                        }
                        PeSpec::AtMost(n) => {
                            self.positive(f, n, "the PE array bound").map(Bound::AtMost)
                        }
                        PeSpec::Free(_) => Some(Bound::Free),
                    };
                }
                ArchStmt::PeMin(n, span) => {
                    if !self.repeated(&mut seen, "pe_min", f, *span) {
                        pe_min = self.positive(f, n, "pe_min");
                    }
                }
                ArchStmt::MacEnergy(q, span) => {
                    if !self.repeated(&mut seen, "mac_energy", f, *span) {
                        mac = self.pj(f, q, "the MAC energy");
                    }
                }
                ArchStmt::Level(l) => level_defs.push(l),
                ArchStmt::Error(_) => {}
            }
        }
        let name = &def.name;
        if !seen.contains_key("pe") {
            let i = self.error(
                "missing-setting",
                f,
                name.span,
                format!("architecture `{}` does not give its PE array", name.text),
                "",
            );
            self.hint(
                i,
                "add `pe 16x16` (fixed), `pe <= 32` (bounded) or `pe free`",
            );
        }
        if !seen.contains_key("mac_energy") {
            let i = self.error(
                "missing-setting",
                f,
                name.span,
                format!("architecture `{}` does not give its MAC energy", name.text),
                "",
            );
            self.hint(i, "add `mac_energy 0.5608 pJ` (Timeloop's 8-bit MAC)");
        }
        let pe_min = pe_min.unwrap_or(2);
        if let (Some(Bound::Fixed(p) | Bound::AtMost(p)), true) = (pe, seen.contains_key("pe")) {
            if p < pe_min {
                let i = self.error(
                    "pe-min",
                    f,
                    pe_span,
                    format!("the PE array ({p}) is smaller than pe_min ({pe_min})"),
                    "",
                );
                self.hint(i, "lower `pe_min` or enlarge the array");
            }
        }
        if level_defs.is_empty() {
            let i = self.error(
                "no-levels",
                f,
                name.span,
                format!("architecture `{}` has no storage level", name.text),
                "",
            );
            self.hint(
                i,
                "list the levels innermost first, the backing store (DRAM) last",
            );
        }
        let mut levels = Vec::new();
        let mut names: BTreeMap<&str, Span> = BTreeMap::new();
        for ld in &level_defs {
            if let Some(first) = names.get(ld.name.text.as_str()) {
                let i = self.error(
                    "duplicate",
                    f,
                    ld.name.span,
                    format!("level `{}` is defined twice", ld.name.text),
                    "defined again here",
                );
                self.secondary(i, f, *first, "first defined here");
            } else {
                names.insert(&ld.name.text, ld.name.span);
            }
            levels.push(self.level(f, ld, pe));
        }
        // The backing store must be the last level, and exactly one.
        let n = level_defs.len();
        for (i, (ld, l)) in level_defs.iter().zip(&levels).enumerate() {
            let Some(l) = l else { continue };
            if l.is_backing && i + 1 != n {
                let d = self.error(
                    "backing-not-last",
                    f,
                    ld.name.span,
                    format!(
                        "backing level `{}` is not the outermost level",
                        ld.name.text
                    ),
                    "",
                );
                self.note(
                    d,
                    "levels are listed innermost first; the backing store (DRAM) comes last",
                );
            }
            if i + 1 == n && !l.is_backing {
                let d = self.error(
                    "no-backing",
                    f,
                    ld.name.span,
                    format!(
                        "the outermost level `{}` is not marked `backing`",
                        ld.name.text
                    ),
                    "",
                );
                self.hint(d, "the last level holds whole tensors and takes the remaining factors: add `backing`");
            }
            if l.is_backing && l.keeps != TensorSet([true; 3]) {
                let d = self.error(
                    "backing-keeps",
                    f,
                    ld.name.span,
                    format!("backing level `{}` must keep W, I and O", ld.name.text),
                    format!("keeps only {}", l.keeps.letters()),
                );
                self.hint(d, "write `keeps W, I, O`");
            }
        }
        if self.diags.len() > errors_before {
            return None;
        }
        Some(Arch {
            name: name.text.clone(),
            pe_dim: pe?,
            pe_min,
            levels: levels.into_iter().collect::<Option<Vec<_>>>()?,
            mac_energy_pj: mac?,
        })
    }

    fn level(&mut self, f: usize, ld: &LevelDef, pe: Option<Bound>) -> Option<Level> {
        let errors_before = self.diags.len();
        let mut seen = BTreeMap::new();
        let mut keeps = TensorSet::default();
        let mut keeps_span = None;
        let mut bits: Option<u32> = None;
        let mut capacity: Option<CapacityStmt<'_>> = None;
        let mut double_buffered = false;
        let mut instances = Instances::Single;
        let mut bandwidth = None;
        let mut energy: Option<&EnergySpec> = None;
        let mut spatial = Vec::new();
        let mut temporal = None;
        let mut backing = false;
        for stmt in &ld.stmts {
            let span = stmt.span();
            let key = stmt.keyword();
            if key.is_empty() || self.repeated(&mut seen, key, f, span) {
                continue;
            }
            match stmt {
                LevelStmt::Keeps(ts, _) => {
                    keeps_span = Some(span);
                    for t in ts {
                        if let Some(t2) = self.tensor(f, t) {
                            if keeps.contains(t2) {
                                self.error(
                                    "duplicate",
                                    f,
                                    t.span,
                                    format!("tensor {t2:?} is listed twice"),
                                    "again here",
                                );
                            }
                            keeps = keeps.with(t2);
                        }
                    }
                }
                LevelStmt::Word(q, _) => bits = self.word_bits(f, q),
                LevelStmt::Capacity(b, s, span) => capacity = Some((b, *s, *span)),
                LevelStmt::DoubleBuffered(_) => double_buffered = true,
                LevelStmt::Instances(w, _) => {
                    instances = self
                        .choice(
                            f,
                            w,
                            "`instances` value",
                            &[
                                ("single", Instances::Single),
                                ("per_pe", Instances::PerPe),
                                ("per_column", Instances::PerColumn),
                            ],
                        )
                        .unwrap_or(Instances::Single)
                }
                LevelStmt::Bandwidth(b, _) => bandwidth = self.bandwidth(f, b),
                LevelStmt::Energy(e, _) => energy = Some(e),
                LevelStmt::Spatial(items, _) => {
                    for it in items {
                        let Some(d) = self.dim(f, &it.dim) else {
                            continue;
                        };
                        let max = it
                            .max
                            .as_ref()
                            .and_then(|m| self.positive(f, m, "a spatial bound"));
                        if spatial.iter().any(|s: &SpatialDim| s.dim == d) {
                            self.error(
                                "duplicate",
                                f,
                                it.dim.span,
                                format!("dim {d} is listed twice"),
                                "again here",
                            );
                        }
                        spatial.push(SpatialDim { dim: d, max });
                    }
                }
                LevelStmt::Temporal(ws, _) => temporal = self.temporal(f, ws, span),
                LevelStmt::Backing(_) => backing = true,
                LevelStmt::Error(_) => {}
            }
        }
        let lname = &ld.name;
        if keeps.is_empty() {
            let i = self.error(
                "empty-keeps",
                f,
                keeps_span.unwrap_or(lname.span),
                format!("level `{}` keeps no tensor", lname.text),
                "",
            );
            self.hint(
                i,
                "say which tensors it holds: `keeps W`, `keeps W, I` or `keeps W, I, O`",
            );
        }
        if !seen.contains_key("word") {
            let i = self.error(
                "missing-setting",
                f,
                lname.span,
                format!("level `{}` does not give its word width", lname.text),
                "",
            );
            self.hint(i, "add `word 8 bits`");
        }
        if !seen.contains_key("energy") {
            let i = self.error(
                "missing-setting",
                f,
                lname.span,
                format!("level `{}` does not give its access energy", lname.text),
                "",
            );
            self.hint(i, "add `energy sram` (Timeloop's SRAM formula), `energy dram`, `energy 100 pJ` or `energy 1.9 pJ + 0.1 pJ/KiB`");
        }
        let cap = match capacity {
            None if backing => Some(Bound::Free),
            None => {
                let i = self.error(
                    "missing-setting",
                    f,
                    lname.span,
                    format!("level `{}` does not give its capacity", lname.text),
                    "",
                );
                self.hint(i, "add `capacity 64 KiB`, `capacity <= 512 KiB` or `capacity free` (derived by the search)");
                None
            }
            Some((b, scope, span)) => self.capacity(f, b, scope, span, instances, pe),
        };
        let energy = match (energy, bits) {
            (Some(e), Some(bits)) => self.energy(f, e, bits),
            _ => None,
        };
        if self.diags.len() > errors_before {
            return None;
        }
        Some(Level {
            name: lname.text.clone(),
            keeps,
            word_bits: bits?,
            capacity: cap?,
            double_buffered,
            instances,
            bandwidth,
            energy: energy?,
            spatial,
            temporal,
            is_backing: backing,
        })
    }

    fn word_bits(&mut self, f: usize, q: &Quantity) -> Option<u32> {
        let u = self.unit(f, q, "the word width", "bits, B", "8 bits")?;
        let mult = match u.text.as_str() {
            "bits" | "bit" => 1,
            "B" => 8,
            _ => {
                self.unknown_unit(f, u, "the word width", &["bits", "B"], "");
                return None;
            }
        };
        let v = self.positive(f, &q.num, "the word width")?;
        match v.checked_mul(mult).and_then(|v| u32::try_from(v).ok()) {
            Some(b) => Some(b),
            None => {
                self.error(
                    "overflow",
                    f,
                    q.span,
                    "the word width does not fit in 32 bits",
                    "too large",
                );
                None
            }
        }
    }

    fn capacity(
        &mut self,
        f: usize,
        b: &BoundSpec,
        scope: Option<(Scope, Span)>,
        span: Span,
        instances: Instances,
        pe: Option<Bound>,
    ) -> Option<Bound> {
        let (q, make): (&Quantity, fn(u64) -> Bound) = match b {
            BoundSpec::Free(_) => return Some(Bound::Free),
            BoundSpec::Fixed(q) => (q, Bound::Fixed),
            BoundSpec::AtMost(q) => (q, Bound::AtMost),
        };
        let bytes = self.bytes(f, q, "a capacity")?;
        if instances == Instances::Single {
            return Some(make(bytes));
        }
        let per = match instances {
            Instances::PerPe => "PE",
            _ => "PE column",
        };
        match scope {
            None => {
                let i = self.error(
                    "capacity-scope",
                    f,
                    span,
                    format!("is this the size of one instance or of all of them? (one instance per {per})"),
                    "add `each` or `total`",
                );
                self.note(
                    i,
                    format!("`{} {} each` is the size of one instance; `... total` is summed over every {per}", q.num.text, q.unit.as_ref().map_or("", |u| u.text.as_str())),
                );
                None
            }
            Some((Scope::Each, _)) => Some(make(bytes)),
            Some((Scope::Total, sspan)) => {
                let Some(Bound::Fixed(p)) = pe else {
                    let i = self.error(
                        "capacity-total",
                        f,
                        sspan,
                        format!("a `total` capacity needs a fixed PE array to know how many instances share it (one per {per})"),
                        "",
                    );
                    self.hint(i, "give the size of one instance with `each`, or fix the array with `pe 16x16`");
                    return None;
                };
                let count = match instances {
                    Instances::PerPe => p.checked_mul(p),
                    _ => Some(p),
                };
                match count {
                    Some(c) if bytes % c == 0 => Some(make(bytes / c)),
                    Some(c) => {
                        let i = self.error(
                            "capacity-total",
                            f,
                            q.span,
                            format!("{bytes} B do not split evenly over {c} instances"),
                            "",
                        );
                        self.hint(i, "give the size of one instance with `each`");
                        None
                    }
                    None => {
                        self.error("overflow", f, span, "the instance count overflows", "");
                        None
                    }
                }
            }
        }
    }

    fn bandwidth(&mut self, f: usize, b: &BwSpec) -> Option<Bandwidth> {
        let coef = |c: &mut Self, n: &Option<Num>| match n {
            Some(n) => c.positive_real(f, n, "a bandwidth"),
            None => Some(1.0),
        };
        match b {
            BwSpec::Words(n) => self
                .positive_real(f, n, "a bandwidth")
                .map(Bandwidth::Words),
            BwSpec::PerPe(n) => coef(self, n).map(Bandwidth::PerPeDim),
            BwSpec::PerSpatial(n, d) => {
                let c = coef(self, n);
                let d = self.dim(f, d);
                Some(Bandwidth::PerSpatial(c?, d?))
            }
            BwSpec::Named(w) => {
                if w.text != "unlimited" {
                    let i = self.error(
                        "unknown-value",
                        f,
                        w.span,
                        format!("unknown bandwidth `{}`", w.text),
                        "",
                    );
                    self.note(i, "a bandwidth is words per cycle: `8`, `2 * pe`, `2 * spatial K` or `unlimited`");
                }
                None
            }
        }
    }

    fn energy(&mut self, f: usize, e: &EnergySpec, bits: u32) -> Option<AccessEnergy> {
        match e {
            EnergySpec::Named(w) => self.choice(
                f,
                w,
                "energy model",
                &[
                    ("sram", AccessEnergy::timeloop_sram(bits)),
                    ("dram", AccessEnergy::timeloop_dram(bits)),
                ],
            ),
            EnergySpec::Const(q) => self.pj(f, q, "an access energy").map(AccessEnergy::Const),
            EnergySpec::Linear(a, b, per) => {
                let base = self.pj(f, a, "an access energy");
                let slope = self.pj(f, b, "an access energy");
                if per.text != "KiB" {
                    self.unknown_unit(
                        f,
                        per,
                        "an energy slope",
                        &["KiB"],
                        "the slope is per KiB of one instance: `0.1 pJ/KiB`",
                    );
                    return None;
                }
                Some(AccessEnergy::Linear {
                    base: base?,
                    per_kib: slope?,
                })
            }
        }
    }

    fn temporal(&mut self, f: usize, ws: &[Word], span: Span) -> Option<Vec<Dim>> {
        if let [w] = ws {
            match w.text.as_str() {
                "all" => return None,
                "none" => return Some(Vec::new()),
                _ => {}
            }
        }
        if ws.is_empty() {
            let i = self.error("empty-list", f, span, "`temporal` lists no dim", "");
            self.hint(
                i,
                "write `temporal P, Q`, `temporal none` or `temporal all`",
            );
            return None;
        }
        let mut out = Vec::new();
        for w in ws {
            if w.text == "all" || w.text == "none" {
                self.error(
                    "unknown-dim",
                    f,
                    w.span,
                    format!("`{}` cannot be mixed with dims", w.text),
                    "",
                );
                continue;
            }
            if let Some(d) = self.dim(f, w) {
                if out.contains(&d) {
                    self.error(
                        "duplicate",
                        f,
                        w.span,
                        format!("dim {d} is listed twice"),
                        "again here",
                    );
                }
                out.push(d);
            }
        }
        Some(out)
    }

    // ---------------------------------------------------------------- networks

    fn network(&mut self, f: usize, nd: &NetworkDef) -> (Option<Network>, NetSite) {
        let errors_before = self.diags.len();
        let mut site = NetSite {
            name: nd.name.text.clone(),
            file: f,
            span: nd.name.span,
            layers: Vec::new(),
            index: BTreeMap::new(),
        };
        let mut layers = Vec::new();
        for ld in &nd.layers {
            let LayerDef::Layer {
                kind, name, params, ..
            } = ld
            else {
                continue;
            };
            if name.text.is_empty() {
                self.error(
                    "empty-name",
                    f,
                    name.span,
                    "a layer name cannot be empty",
                    "",
                );
            }
            let lsite = self.layer(f, *kind, name, params);
            if let Some(first) = site.layer(&name.text) {
                let i = self.error(
                    "duplicate",
                    f,
                    name.span,
                    format!(
                        "layer `{}` is defined twice in network `{}`",
                        name.text, nd.name.text
                    ),
                    "defined again here",
                );
                let first = first.name;
                self.secondary(i, f, first, "first defined here");
                continue;
            }
            if let Some(l) = &lsite.layer {
                layers.push(l.clone());
            }
            site.index.insert(name.text.clone(), site.layers.len());
            site.layers.push((name.text.clone(), lsite));
        }
        if nd.layers.is_empty() {
            let i = self.error(
                "empty-network",
                f,
                nd.name.span,
                format!("network `{}` has no layers", nd.name.text),
                "",
            );
            self.hint(
                i,
                "add layers like `conv conv1 R=3 S=3 P=56 Q=56 C=64 K=64`",
            );
        }
        if nd.name.text.is_empty() {
            self.error(
                "empty-name",
                f,
                nd.name.span,
                "a network name cannot be empty",
                "",
            );
        }
        let net = (self.diags.len() == errors_before).then(|| Network {
            name: nd.name.text.clone(),
            layers,
        });
        (net, site)
    }

    fn layer(&mut self, f: usize, kind: LayerKw, name: &Name, params: &[Param]) -> LayerSite {
        let errors_before = self.diags.len();
        let mut dims = [1u64; 7];
        let mut dim_spans: [Option<Span>; 7] = [None; 7];
        // wstride, hstride, wdilation, hdilation, count
        let mut extra = [1u64; 5];
        let mut extra_spans: [Option<Span>; 5] = [None; 5];
        for p in params {
            let key = p.key.text.as_str();
            // Which slots the key sets: dims by index, extras by 7 + index.
            let slots: Vec<usize> = match (kind, key) {
                (LayerKw::Conv, k)
                    if k.len() == 1
                        && Dim::from_letter(k.chars().next().unwrap_or(' ')).is_some() =>
                {
                    vec![Dim::from_letter(k.chars().next().unwrap_or(' ')).map_or(0, Dim::index)]
                }
                (LayerKw::Matmul, "M" | "m") => vec![Dim::P.index()],
                (LayerKw::Matmul, "K" | "k") => vec![Dim::C.index()],
                (LayerKw::Matmul, "N" | "n") => vec![Dim::K.index()],
                (LayerKw::Conv, "stride") => vec![7, 8],
                (LayerKw::Conv, "wstride") => vec![7],
                (LayerKw::Conv, "hstride") => vec![8],
                (LayerKw::Conv, "dilation") => vec![9, 10],
                (LayerKw::Conv, "wdilation") => vec![9],
                (LayerKw::Conv, "hdilation") => vec![10],
                (_, "count") => vec![11],
                _ => {
                    let (code, what, known): (&str, String, &[&str]) = match kind {
                        LayerKw::Conv if key.len() == 1 => {
                            ("unknown-dim", format!("unknown dim `{key}`"), &[])
                        }
                        LayerKw::Conv => (
                            "unknown-param",
                            format!("unknown conv parameter `{key}`"),
                            &[
                                "stride",
                                "wstride",
                                "hstride",
                                "dilation",
                                "wdilation",
                                "hdilation",
                                "count",
                            ],
                        ),
                        LayerKw::Matmul => (
                            "unknown-param",
                            format!("unknown matmul parameter `{key}`"),
                            &["M", "K", "N", "count"],
                        ),
                    };
                    let i = self.error(code, f, p.key.span, what, "");
                    match kind {
                        LayerKw::Conv if code == "unknown-dim" => self.note(i, DIM_HINT),
                        LayerKw::Conv => self.note(
                            i,
                            "a conv takes the dims R S P Q C K N and stride, wstride, hstride, dilation, wdilation, hdilation, count",
                        ),
                        LayerKw::Matmul => self.note(
                            i,
                            "a matmul A[M,K] x B[K,N] takes M, K, N and count (it becomes P=M, C=K, K=N)",
                        ),
                    }
                    if let Some(s) = suggest(key, known.iter().copied()) {
                        self.hint(i, format!("did you mean `{s}`?"));
                    }
                    continue;
                }
            };
            let what = format!("`{key}`");
            let Some(v) = self.positive(f, &p.value, &what) else {
                continue;
            };
            for s in slots {
                let prev = if s < 7 {
                    dim_spans[s]
                } else {
                    extra_spans[s - 7]
                };
                if let Some(prev) = prev {
                    let i = self.error(
                        "duplicate",
                        f,
                        p.span,
                        format!("`{key}` sets a value set before"),
                        "set again here",
                    );
                    self.secondary(i, f, prev, "first set here");
                    break;
                }
                if s < 7 {
                    dims[s] = v;
                    dim_spans[s] = Some(p.span);
                } else {
                    extra[s - 7] = v;
                    extra_spans[s - 7] = Some(p.span);
                }
            }
        }
        // Overflow of the loop nest and of the input window.
        let macs = dims
            .iter()
            .try_fold(1u128, |acc, &d| acc.checked_mul(d as u128));
        if macs.is_none_or(|m| m > u64::MAX as u128) {
            let i = self.error(
                "overflow",
                f,
                name.span,
                format!("layer `{}` has more than 2^64 MACs", name.text),
                "",
            );
            self.note(
                i,
                format!("R*S*P*Q*C*K*N = {}", dims.map(|d| d.to_string()).join("*")),
            );
        }
        let window = |out: u64, stride: u64, filt: u64, dil: u64| {
            ((out as u128 - 1) * stride as u128 + (filt as u128 - 1) * dil as u128 + 1)
                <= u64::MAX as u128
        };
        if !window(dims[2], extra[0], dims[0], extra[2])
            || !window(dims[3], extra[1], dims[1], extra[3])
        {
            self.error(
                "overflow",
                f,
                name.span,
                format!(
                    "the input window of layer `{}` is larger than 2^64",
                    name.text
                ),
                "",
            );
        }
        let ok = self.diags.len() == errors_before && !name.text.is_empty();
        LayerSite {
            file: f,
            name: name.span,
            dims: dim_spans,
            layer: ok.then(|| Layer {
                name: name.text.clone(),
                kind: match kind {
                    LayerKw::Conv => LayerKind::Conv,
                    LayerKw::Matmul => LayerKind::Matmul,
                },
                dims,
                wstride: extra[0],
                hstride: extra[1],
                wdilation: extra[2],
                hdilation: extra[3],
                count: extra[4],
            }),
        }
    }

    // ---------------------------------------------------------------- mappings

    fn mapping(
        &mut self,
        f: usize,
        md: &MapDef,
        arch: Option<&Arch>,
        nets: &[NetSite],
    ) -> Option<(String, String, Mapping, bool)> {
        let (net, site) = self.resolve(f, md, nets)?;
        let lit = match &md.mapping {
            MapSpec::Compact(s) => s,
            MapSpec::Word(w) => {
                let m = self.auto_mapping(f, w, arch, site)?;
                return Some((net.to_string(), md.layer.text.clone(), m, true));
            }
        };
        // Decode the string against its source so sub-spans point at the right bytes.
        let raw = self
            .sources
            .get(f)
            .and_then(|s| s.get(lit.span.range()))
            .unwrap_or("\"\"");
        let Ok((text, offsets)) = decode_string(raw) else {
            return None; // the lexer reported the bad escape
        };
        let base = lit.span.lo;
        let at = |i: usize| base + offsets[i.min(offsets.len() - 1)];
        let sub = |lo: usize, hi: usize| {
            let a = at(lo);
            let b = at(hi).max(a);
            Span::new(a, if b == a && hi > lo { a + 1 } else { b })
        };
        let m = match parse_compact(&text) {
            Ok(m) => m,
            Err(e) => {
                let i = self.error(
                    "mapping-syntax",
                    f,
                    sub(e.at, e.at + e.len),
                    format!("bad mapping: {}", e.message),
                    "",
                );
                self.note(i, "the compact form lists levels outermost first: `L3[WIO] K8 Q28 - L2[WI] N1 K4X - L1[O] C3X - L0[W] P16`");
                return None;
            }
        };
        let words = locate_words(&text);
        let word_span = |level: usize, dim: Option<(Dim, bool)>| {
            words
                .iter()
                .find(|w| w.level == level && w.factor == dim)
                .map(|w| sub(w.lo, w.hi))
        };
        let whole = lit.span;
        let errors_before = self.diags.len();
        if let Some(arch) = arch {
            let n = arch.levels.len();
            if m.levels.len() != n {
                let i = self.error(
                    "mapping-levels",
                    f,
                    whole,
                    format!(
                        "the mapping has {} levels but architecture `{}` has {n}",
                        m.levels.len(),
                        arch.name
                    ),
                    "",
                );
                let names: Vec<String> = arch
                    .levels
                    .iter()
                    .enumerate()
                    .map(|(k, l)| format!("L{k} {}", l.name))
                    .collect();
                self.note(
                    i,
                    format!(
                        "levels of `{}`, innermost first: {}",
                        arch.name,
                        names.join(", ")
                    ),
                );
            } else {
                self.mapping_vs_arch(f, &m, arch, whole, &word_span);
            }
        }
        if let Some(layer) = &site.layer {
            self.mapping_products(f, md, &m, layer, site, whole, &words, &sub);
        }
        (self.diags.len() == errors_before)
            .then(|| (net.to_string(), md.layer.text.clone(), m, false))
    }

    /// On an architecture that fixes a Gemmini configuration (array and buffers), a mapping that
    /// Gemmini's C library cannot run is reported (a warning: the cost model still evaluates it,
    /// as Timeloop would; `emit gemmini` refuses it).
    fn gemmini_rules(&mut self, f: usize, md: &MapDef, arch: &Arch, layer: &Layer, m: &Mapping) {
        use crate::gemmini::{rules, tiler};
        let Some(lv) = rules::target(arch) else {
            return;
        };
        let fixed = matches!(arch.pe_dim, Bound::Fixed(_))
            && [lv.acc, lv.spad]
                .iter()
                .all(|&i| matches!(arch.levels[i].capacity, Bound::Fixed(_)));
        if !fixed {
            return;
        }
        if let Err(why) = rules::check(arch, layer, m, &tiler::gemmini_params(arch)) {
            self.warnings.push(
                Diagnostic::warning()
                    .with_code("gemmini-rules")
                    .with_message(format!(
                        "Gemmini's C library cannot run this mapping of `{}`",
                        layer.name
                    ))
                    .with_labels(vec![
                        Label::primary(f, md.mapping.span().range()).with_message(why)
                    ])
                    .with_notes(vec![
                        "hint: `dosa emit gemmini` refuses it; `dosa search` finds mappings that run, or write `auto` for Gemmini's own tiler".to_string(),
                    ]),
            );
        }
    }

    /// `map net.layer auto`: Gemmini's own tiler picks the tiles on the architecture's
    /// configuration; the mapping kept is its tiles with partial last tiles (`K4+`).
    fn auto_mapping(
        &mut self,
        f: usize,
        w: &Word,
        arch: Option<&Arch>,
        site: &LayerSite,
    ) -> Option<Mapping> {
        use crate::gemmini::tiler::{auto_mapping, auto_tile, gemmini_params};
        if w.text != "auto" {
            let i = self.error(
                "mapping-syntax",
                f,
                w.span,
                format!("`{}` is not a mapping", w.text),
                "expected a quoted mapping or `auto`",
            );
            self.hint(
                i,
                "write the mapping in quotes (`\"L3[WIO] K8 - L2[WI] K16X - L1[O] C16X - L0[W] P16\"`), or `auto` for Gemmini's own tiler",
            );
            return None;
        }
        let (arch, layer) = (arch?, site.layer.as_ref()?);
        let tiles = auto_tile(layer, &gemmini_params(arch));
        match auto_mapping(layer, &tiles, arch) {
            Ok(m) => Some(m),
            Err(e) => {
                let i = self.error(
                    "auto-not-gemmini",
                    f,
                    w.span,
                    "`auto` needs a Gemmini-shaped architecture",
                    "Gemmini's tiler cannot run here",
                );
                self.note(i, e.to_string());
                None
            }
        }
    }

    fn resolve<'n>(
        &mut self,
        f: usize,
        md: &MapDef,
        nets: &'n [NetSite],
    ) -> Option<(&'n str, &'n LayerSite)> {
        let lname = &md.layer.text;
        match &md.network {
            Some(nn) => {
                let Some(net) = nets.iter().find(|n| n.name == nn.text) else {
                    let i = self.error(
                        "unknown-name",
                        f,
                        nn.span,
                        format!("no network named `{}`", nn.text),
                        "",
                    );
                    match suggest(&nn.text, nets.iter().map(|n| n.name.as_str())) {
                        Some(s) => self.hint(i, format!("did you mean `{s}`?")),
                        None if nets.is_empty() => {
                            self.hint(i, "no network is defined; did you forget an `import`?")
                        }
                        None => {
                            let names: Vec<&str> = nets.iter().map(|n| n.name.as_str()).collect();
                            self.note(i, format!("networks: {}", names.join(", ")))
                        }
                    }
                    return None;
                };
                let Some(site) = net.layer(lname) else {
                    let i = self.error(
                        "unknown-name",
                        f,
                        md.layer.span,
                        format!("network `{}` has no layer named `{lname}`", net.name),
                        "",
                    );
                    if let Some(s) = suggest(lname, net.layers.iter().map(|(n, _)| n.as_str())) {
                        self.hint(i, format!("did you mean `{s}`?"));
                    }
                    self.secondary(i, net.file, net.span, "network defined here");
                    return None;
                };
                Some((net.name.as_str(), site))
            }
            None => {
                let hits: Vec<(&NetSite, &LayerSite)> = nets
                    .iter()
                    .filter_map(|n| n.layer(lname).map(|s| (n, s)))
                    .collect();
                match hits.as_slice() {
                    [(n, s)] => Some((n.name.as_str(), s)),
                    [] => {
                        let i = self.error(
                            "unknown-name",
                            f,
                            md.layer.span,
                            format!("no network has a layer named `{lname}`"),
                            "",
                        );
                        let all = nets
                            .iter()
                            .flat_map(|n| n.layers.iter().map(|(l, _)| l.as_str()));
                        if let Some(s) = suggest(lname, all) {
                            self.hint(i, format!("did you mean `{s}`?"));
                        }
                        None
                    }
                    many => {
                        let names: Vec<&str> = many.iter().map(|(n, _)| n.name.as_str()).collect();
                        let i = self.error(
                            "ambiguous-name",
                            f,
                            md.layer.span,
                            format!(
                                "layer `{lname}` is in several networks: {}",
                                names.join(", ")
                            ),
                            "",
                        );
                        self.hint(
                            i,
                            format!(
                                "name the network: `map {}.{} ...`",
                                super::lexer::name_source(names[0]),
                                super::lexer::name_source(lname)
                            ),
                        );
                        None
                    }
                }
            }
        }
    }

    fn mapping_vs_arch(
        &mut self,
        f: usize,
        m: &Mapping,
        arch: &Arch,
        whole: Span,
        word_span: &dyn Fn(usize, Option<(Dim, bool)>) -> Option<Span>,
    ) {
        let pe_max = arch.pe_dim.max();
        // Outermost first, the order of the text.
        for (k, (lm, level)) in m.levels.iter().zip(&arch.levels).enumerate().rev() {
            if lm.keeps != level.keeps {
                let i = self.error(
                    "mapping-keeps",
                    f,
                    word_span(k, None).unwrap_or(whole),
                    format!(
                        "L{k} keeps [{}] in the mapping but level `{}` keeps [{}]",
                        lm.keeps.letters(),
                        level.name,
                        level.keeps.letters()
                    ),
                    format!("should be L{k}[{}]", level.keeps.letters()),
                );
                let kept: Vec<String> = arch
                    .levels
                    .iter()
                    .enumerate()
                    .rev()
                    .map(|(j, l)| format!("L{j}[{}] {}", l.keeps.letters(), l.name))
                    .collect();
                self.note(
                    i,
                    format!(
                        "levels of `{}`, outermost first: {}",
                        arch.name,
                        kept.join(", ")
                    ),
                );
            }
            for d in Dim::ALL {
                let s = lm.spatial[d.index()];
                if s > 1 {
                    let span = word_span(k, Some((d, true))).unwrap_or(whole);
                    match level.spatial.iter().find(|sd| sd.dim == d) {
                        None => {
                            let i = self.error(
                                "mapping-spatial",
                                f,
                                span,
                                format!("{d} may not be spatial at L{k} (`{}`)", level.name),
                                "spatial factor not allowed here",
                            );
                            let where_ok: Vec<String> = arch
                                .levels
                                .iter()
                                .enumerate()
                                .filter(|(_, l)| l.allows_spatial(d))
                                .map(|(j, l)| format!("L{j} ({})", l.name))
                                .collect();
                            if where_ok.is_empty() {
                                self.note(
                                    i,
                                    format!(
                                        "architecture `{}` never spreads {d} spatially",
                                        arch.name
                                    ),
                                );
                            } else {
                                self.note(
                                    i,
                                    format!("{d} may be spatial at {}", where_ok.join(", ")),
                                );
                            }
                        }
                        Some(sd) => {
                            if let Some(max) = sd.max.filter(|&mx| s > mx) {
                                self.error(
                                    "spatial-bound",
                                    f,
                                    span,
                                    format!("spatial factor {d}{s}X at L{k} (`{}`) exceeds its bound {max}", level.name),
                                    format!("at most {max}"),
                                );
                            } else if let Some(pe) = pe_max.filter(|&p| s > p) {
                                let i = self.error(
                                    "spatial-bound",
                                    f,
                                    span,
                                    format!("spatial factor {d}{s}X needs {s} PEs along one side, but the PE array is at most {pe}x{pe}"),
                                    format!("at most {pe}"),
                                );
                                self.note(
                                    i,
                                    format!(
                                        "architecture `{}` has `pe {}`",
                                        arch.name,
                                        bound_text(arch.pe_dim)
                                    ),
                                );
                            }
                        }
                    }
                }
                let t = lm.temporal[d.index()];
                if t > 1 && !level.allows_temporal(d) {
                    let allowed = level.temporal.clone().unwrap_or_default();
                    let i = self.error(
                        "mapping-temporal",
                        f,
                        word_span(k, Some((d, false))).unwrap_or(whole),
                        format!("L{k} (`{}`) may not hold a temporal {d} factor", level.name),
                        "not allowed here",
                    );
                    if allowed.is_empty() {
                        self.note(
                            i,
                            format!("level `{}` holds no temporal factor", level.name),
                        );
                    } else {
                        let names: Vec<String> = allowed.iter().map(|d| d.to_string()).collect();
                        self.note(
                            i,
                            format!(
                                "level `{}` may hold only temporal {} factors",
                                level.name,
                                names.join(", ")
                            ),
                        );
                    }
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn mapping_products(
        &mut self,
        f: usize,
        md: &MapDef,
        m: &Mapping,
        layer: &Layer,
        site: &LayerSite,
        whole: Span,
        words: &[FactorWord],
        sub: &dyn Fn(usize, usize) -> Span,
    ) {
        for d in Dim::ALL {
            let mut parts = Vec::new();
            let mut product: Option<u128> = Some(1);
            for (k, lm) in m.levels.iter().enumerate().rev() {
                for (v, sp) in [
                    (lm.temporal[d.index()], false),
                    (lm.spatial[d.index()], true),
                ] {
                    if v > 1 {
                        parts.push(format!("{v}{} (L{k})", if sp { " spatial" } else { "" }));
                        product = product.and_then(|p| p.checked_mul(v as u128));
                    }
                }
            }
            let size = layer.dim(d);
            if product == Some(size as u128) {
                continue;
            }
            if m.partial[d.index()] {
                self.partial_count(f, md, m, layer, d, words, sub);
                continue;
            }
            let shown = product.map_or("more than 2^128".to_string(), |p| p.to_string());
            // A matmul's dims are written M, K, N: say which one this is.
            let written = match (layer.kind, d) {
                (LayerKind::Matmul, Dim::P) => "M".to_string(),
                (LayerKind::Matmul, Dim::C) => "K".to_string(),
                (LayerKind::Matmul, Dim::K) => "N".to_string(),
                _ => d.to_string(),
            };
            let message = if written == d.to_string() {
                format!(
                    "the factors of {d} multiply to {shown}, but layer `{}` has {d} = {size}",
                    md.layer.text
                )
            } else {
                format!(
                    "the factors of {d} multiply to {shown}, but matmul `{}` has {written} = {size} (dim {d} of the mapping)",
                    md.layer.text
                )
            };
            let factor_words: Vec<Span> = words
                .iter()
                .filter(|w| matches!(w.factor, Some((dd, _)) if dd == d))
                .map(|w| sub(w.lo, w.hi))
                .collect();
            let i = match factor_words.split_first() {
                None => self.error(
                    "mapping-product",
                    f,
                    whole,
                    message,
                    format!("no factor of {d} (1)"),
                ),
                Some((first, rest)) => {
                    let i = self.error(
                        "mapping-product",
                        f,
                        *first,
                        message,
                        format!("a factor of {d}"),
                    );
                    for w in rest {
                        self.diags[i].labels.push(
                            Label::primary(f, w.range()).with_message(format!("a factor of {d}")),
                        );
                    }
                    i
                }
            };
            let def = site.dims[d.index()].unwrap_or(site.name);
            let label = if site.dims[d.index()].is_some() {
                format!("{written} = {size} here")
            } else {
                format!("{written} = 1 (not given)")
            };
            self.secondary(i, site.file, def, label);
            let expr = if parts.is_empty() {
                "no factor (1)".to_string()
            } else {
                parts.join(" x ")
            };
            self.note(i, format!("{d}: {expr} = {shown}"));
            if layer.kind == LayerKind::Matmul && matches!(d, Dim::P | Dim::C | Dim::K) {
                self.note(i, "a matmul's M, K, N are the dims P, C, K of a mapping");
            }
            if let Some(p) = product.filter(|&p| p < size as u128 && size as u128 % p == 0) {
                self.hint(
                    i,
                    format!(
                        "the backing level takes the rest: multiply its {d} factor by {}",
                        size as u128 / p
                    ),
                );
            } else if let Some((_, false, outer)) = m.outermost(d) {
                let inner = product.unwrap_or(0) / outer as u128;
                if inner > 0 && inner < size as u128 {
                    self.hint(
                        i,
                        format!(
                            "for tiles of {inner} with a partial last one, write the outermost factor as `{d}{}+`",
                            (size as u128).div_ceil(inner)
                        ),
                    );
                }
            }
        }
    }

    /// A dim marked partial (`K64+`): its outermost factor must count the inner tiles, last one
    /// partial, and be temporal.
    #[allow(clippy::too_many_arguments)]
    fn partial_count(
        &mut self,
        f: usize,
        md: &MapDef,
        m: &Mapping,
        layer: &Layer,
        d: Dim,
        words: &[FactorWord],
        sub: &dyn Fn(usize, usize) -> Span,
    ) {
        if crate::model::pieces::check_cover(layer, m).is_ok() {
            return;
        }
        let size = layer.dim(d);
        let Some((level, spatial, factor)) = m.outermost(d) else {
            return;
        };
        let span = words
            .iter()
            .find(|w| w.level == level && w.factor == Some((d, spatial)))
            .map(|w| sub(w.lo, w.hi))
            .unwrap_or(md.span);
        let inner = m.dim_product(d) / factor as u128;
        let (message, hint) = if spatial {
            (
                format!("the partial factor of {d} must be temporal"),
                "the lanes of a spatial factor run together; put the partial count on a temporal factor outside it".to_string(),
            )
        } else {
            let want = (size as u128).div_ceil(inner.max(1));
            (
                format!(
                    "{d}{factor}+ does not count the tiles of `{}`: {size} in tiles of {inner} is ceil({size}/{inner}) = {want}",
                    md.layer.text
                ),
                if want > 1 {
                    format!("write `{d}{want}+`")
                } else {
                    format!("the inner factors of {d} already cover {size}; drop this factor")
                },
            )
        };
        let i = self.error("mapping-partial", f, span, message, "the partial factor");
        self.hint(i, hint);
    }

    // ---------------------------------------------------------------- search

    fn search(&mut self, f: usize, sd: &SearchDef) -> Option<SearchSpec> {
        let errors_before = self.diags.len();
        let mut spec = SearchSpec::default();
        let mut bounds = HwBounds::default();
        let mut seen = BTreeMap::new();
        for stmt in &sd.stmts {
            let SearchStmt::Set(key, val, span) = stmt else {
                continue;
            };
            if self.repeated(&mut seen, key.keyword(), f, *span) {
                continue;
            }
            match (key, val) {
                (SearchKey::Objective, SearchVal::Word(w)) => {
                    if let Some(o) = self.choice(
                        f,
                        w,
                        "objective",
                        &[
                            ("edp", Objective::Edp),
                            ("energy", Objective::Energy),
                            ("latency", Objective::Latency),
                        ],
                    ) {
                        spec.objective = o;
                    }
                }
                (SearchKey::Hardware, SearchVal::Word(w)) => {
                    if let Some(h) = self.choice(
                        f,
                        w,
                        "hardware",
                        &[("free", HardwareMode::Free), ("fixed", HardwareMode::Fixed)],
                    ) {
                        spec.hardware = Some(h);
                    }
                }
                (SearchKey::Predictor, SearchVal::Word(w)) => {
                    if let Some(p) = self.choice(
                        f,
                        w,
                        "predictor",
                        &[
                            ("analytical", Predictor::Analytical),
                            ("dnn", Predictor::Dnn),
                            ("both", Predictor::Both),
                        ],
                    ) {
                        spec.predictor = p;
                    }
                }
                (SearchKey::Starts, SearchVal::Num(n)) => {
                    if let Some(v) = self.positive_u32(f, n, "`starts`") {
                        spec.starts = v;
                    }
                }
                (SearchKey::Steps, SearchVal::Num(n)) => {
                    if let Some(v) = self.positive_u32(f, n, "`steps`") {
                        spec.steps = v;
                    }
                }
                (SearchKey::RoundEvery, SearchVal::Num(n)) => {
                    if let Some(v) = self.positive_u32(f, n, "`round_every`") {
                        spec.round_every = v;
                    }
                }
                (SearchKey::Lr, SearchVal::Num(n)) => {
                    if let Some(v) = self.positive_real(f, n, "the learning rate") {
                        spec.lr = v;
                    }
                }
                (SearchKey::Seed, SearchVal::Num(n)) => {
                    if let Some(v) = self.whole(f, n, "the seed") {
                        spec.seed = v;
                    }
                }
                (SearchKey::MaxPe, SearchVal::Num(n)) => {
                    bounds.pe_max = self.positive(f, n, "`max_pe`")
                }
                (SearchKey::MaxScratchpad, SearchVal::Quantity(q)) => {
                    bounds.sp_max_kib = self.kib(f, q, "`max_scratchpad`")
                }
                (SearchKey::MaxAccumulator, SearchVal::Quantity(q)) => {
                    bounds.acc_max_kib = self.kib(f, q, "`max_accumulator`")
                }
                (SearchKey::Model, SearchVal::Str(s)) => {
                    if s.value.is_empty() {
                        self.error("empty-name", f, s.span, "the model path is empty", "");
                    }
                    spec.model = Some(s.value.clone());
                }
                _ => {}
            }
        }
        spec.bounds = bounds;
        (self.diags.len() == errors_before).then_some(spec)
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

fn bound_text(b: Bound) -> String {
    match b {
        Bound::Fixed(v) => format!("{v}x{v}"),
        Bound::AtMost(v) => format!("<= {v}"),
        Bound::Free => "free".into(),
    }
}

/// A word of a compact mapping string: a level header (`factor: None`) or a factor.
pub struct FactorWord {
    pub level: usize,
    pub factor: Option<(Dim, bool)>,
    pub lo: usize,
    pub hi: usize,
}

/// Find the byte range of every word of a (well-formed) compact mapping, by level.
pub fn locate_words(text: &str) -> Vec<FactorWord> {
    // Split on whitespace, keeping byte offsets.
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let mut start = None;
    for (i, ch) in text.char_indices() {
        if ch.is_whitespace() {
            if let Some(s) = start.take() {
                spans.push((s, i));
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        spans.push((s, text.len()));
    }
    let mut out = Vec::new();
    let mut level = 0usize;
    for (lo, hi) in spans {
        let w = &text[lo..hi];
        if w == "-" {
            continue;
        }
        if let Some(rest) = w.strip_prefix('L') {
            if let Some(open) = rest.find('[') {
                level = rest[..open].parse().unwrap_or(usize::MAX);
                out.push(FactorWord {
                    level,
                    factor: None,
                    lo,
                    hi,
                });
                continue;
            }
        }
        let Some(d) = w.chars().next().and_then(Dim::from_letter) else {
            continue;
        };
        let spatial = w.ends_with('X') || w.ends_with('x');
        out.push(FactorWord {
            level,
            factor: Some((d, spatial)),
            lo,
            hi,
        });
    }
    out
}

/// Why a decimal could not be turned into an exact integer.
#[derive(Debug, PartialEq, Eq)]
pub enum Exact {
    Fraction,
    Overflow,
}

/// `text * mult` exactly, for a decimal `text` like `1.5` or `2e3`; errors if not whole.
pub fn exact_scaled(text: &str, mult: u64) -> Result<u64, Exact> {
    let (mant, exp) = match text.find(['e', 'E']) {
        Some(i) => (
            &text[..i],
            text[i + 1..].parse::<i64>().map_err(|_| Exact::Overflow)?,
        ),
        None => (text, 0),
    };
    let (ip, fp) = mant.split_once('.').unwrap_or((mant, ""));
    let digits = format!("{ip}{fp}");
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Ok(0);
    }
    if digits.len() > 30 {
        return Err(Exact::Overflow);
    }
    let m: u128 = digits.parse().map_err(|_| Exact::Overflow)?;
    let mut v = m.checked_mul(mult as u128).ok_or(Exact::Overflow)?;
    let scale = fp.len() as i64 - exp;
    if scale > 0 {
        match u32::try_from(scale)
            .ok()
            .and_then(|s| 10u128.checked_pow(s))
        {
            Some(d) if v % d == 0 => v /= d,
            _ => return Err(Exact::Fraction),
        }
    } else if scale < 0 {
        let p = u32::try_from(-scale)
            .ok()
            .and_then(|s| 10u128.checked_pow(s))
            .ok_or(Exact::Overflow)?;
        v = v.checked_mul(p).ok_or(Exact::Overflow)?;
    }
    u64::try_from(v).map_err(|_| Exact::Overflow)
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
