//! Mappings: the compact form against the architecture and the layer (products, partial
//! tiles, Gemmini rules, `auto`).

use super::*;

impl<'a> Checker<'a> {
    // ---------------------------------------------------------------- mappings

    pub(super) fn mapping(
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
    pub(super) fn gemmini_rules(
        &mut self,
        f: usize,
        md: &MapDef,
        arch: &Arch,
        layer: &Layer,
        m: &Mapping,
    ) {
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
                        "hint: `dosa emit gemmini` refuses it; `dosa search` (unless told `mapspace free`) finds mappings that run, or write `auto` for Gemmini's own tiler".to_string(),
                    ]),
            );
        }
    }

    /// `map net.layer auto`: Gemmini's own tiler picks the tiles on the architecture's
    /// configuration; the mapping kept is its tiles with partial last tiles (`K4+`).
    pub(super) fn auto_mapping(
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

    pub(super) fn resolve<'n>(
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
                                crate::syntax::lexer::name_source(names[0]),
                                crate::syntax::lexer::name_source(lname)
                            ),
                        );
                        None
                    }
                }
            }
        }
    }

    pub(super) fn mapping_vs_arch(
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
    pub(super) fn mapping_products(
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
    pub(super) fn partial_count(
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
