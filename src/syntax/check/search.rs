//! The `search` block: objective, budgets, bounds, hardware mode, predictor.

use super::*;

impl<'a> Checker<'a> {
    // ---------------------------------------------------------------- search

    pub(super) fn search(&mut self, f: usize, sd: &SearchDef) -> Option<SearchSpec> {
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
                (SearchKey::Mapspace, SearchVal::Word(w)) => {
                    if let Some(m) = self.choice(
                        f,
                        w,
                        "mapspace",
                        &[("gemmini", Mapspace::Gemmini), ("free", Mapspace::Free)],
                    ) {
                        spec.mapspace = m;
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
}
