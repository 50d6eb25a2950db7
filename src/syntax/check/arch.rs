//! The architecture: levels, capacities, energies, bandwidths, spatial and temporal dims.

use super::*;

impl<'a> Checker<'a> {
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
            mapspace: Default::default(),
        })
    }

    pub(super) fn level(&mut self, f: usize, ld: &LevelDef, pe: Option<Bound>) -> Option<Level> {
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

    pub(super) fn word_bits(&mut self, f: usize, q: &Quantity) -> Option<u32> {
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

    pub(super) fn capacity(
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

    pub(super) fn bandwidth(&mut self, f: usize, b: &BwSpec) -> Option<Bandwidth> {
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

    pub(super) fn energy(&mut self, f: usize, e: &EnergySpec, bits: u32) -> Option<AccessEnergy> {
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

    pub(super) fn temporal(&mut self, f: usize, ws: &[Word], span: Span) -> Option<Vec<Dim>> {
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
}
