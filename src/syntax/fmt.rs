//! The canonical printer of `.dosa` syntax trees, used by `dosa fmt` and [`super::program_to_source`].
//!
//! Layout: one statement per line, blocks indented by four spaces, canonical spacing inside
//! statements, names quoted only when they must be, numbers kept as written. Comments are kept:
//! a comment on its own line stays before the statement that follows it, a comment at the end of
//! a line stays at the end of that line. A single blank line between statements is kept; runs of
//! blank lines shrink to one; top-level blocks are always separated by a blank line.

use super::ast::*;
use super::lexer::{name_source, quote, Comment};

/// Print `file` canonically; `src` and `comments` are the text it was parsed from (may be empty).
pub fn format_file(file: &File, src: &str, comments: &[Comment]) -> String {
    let mut p = Printer {
        out: String::new(),
        src,
        comments,
        next: 0,
        last_end: 0,
        indent: 0,
        block_start: true,
        marks: Vec::new(),
    };
    let mut prev_block = false;
    for (i, item) in file.items.iter().enumerate() {
        let is_block = matches!(item, Item::Arch(_) | Item::Network(_) | Item::Search(_));
        let force_blank = !p.block_start && (is_block || prev_block);
        let next = file.items.get(i + 1).map_or(usize::MAX, |n| n.span().lo);
        p.item(item, force_blank, next);
        prev_block = is_block;
    }
    p.flush_before(usize::MAX, false);
    if !p.out.is_empty() && !p.out.ends_with('\n') {
        p.out.push('\n');
    }
    align_trailing(&p.out, &p.marks)
}

/// Line up the trailing comments of consecutive lines (as gofmt does), so hand-written
/// comment columns survive formatting.
fn align_trailing(out: &str, marks: &[usize]) -> String {
    let mut lines: Vec<(&str, Option<&str>)> = Vec::new();
    let mut start = 0;
    let mut m = marks.iter().peekable();
    for line in out.split_inclusive('\n') {
        let end = start + line.len();
        let body = line.trim_end_matches('\n');
        while m.peek().is_some_and(|&&x| x < start) {
            m.next();
        }
        match m.peek() {
            Some(&&x) if x < end => {
                lines.push((
                    out[start..x].trim_end(),
                    Some(out[x..start + body.len()].trim_start()),
                ));
                m.next();
            }
            _ => lines.push((body, None)),
        }
        start = end;
    }
    let mut res = String::with_capacity(out.len());
    let mut i = 0;
    while i < lines.len() {
        if lines[i].1.is_none() {
            res.push_str(lines[i].0);
            res.push('\n');
            i += 1;
            continue;
        }
        let mut j = i;
        while j < lines.len() && lines[j].1.is_some() {
            j += 1;
        }
        let width = lines[i..j]
            .iter()
            .map(|(c, _)| c.chars().count())
            .max()
            .unwrap_or(0);
        for (code, comment) in &lines[i..j] {
            res.push_str(code);
            for _ in code.chars().count()..width {
                res.push(' ');
            }
            res.push(' ');
            res.push_str(comment.unwrap_or(""));
            res.push('\n');
        }
        i = j;
    }
    res
}

struct Printer<'a> {
    out: String,
    src: &'a str,
    comments: &'a [Comment],
    next: usize,
    /// Source offset of the end of the last thing printed (for blank-line detection).
    last_end: usize,
    indent: usize,
    /// Nothing printed yet in the current block (no blank line wanted).
    block_start: bool,
    /// Offsets in `out` where a trailing comment starts (for alignment).
    marks: Vec<usize>,
}

impl Printer<'_> {
    /// Whether the source has a blank line between the last thing printed and `lo`.
    fn blank_in_source(&self, lo: usize) -> bool {
        self.src
            .get(self.last_end..lo)
            .is_some_and(|gap| gap.matches('\n').count() >= 2)
    }

    fn start_line(&mut self, lo: usize, force_blank: bool) {
        if !self.block_start
            && (force_blank || self.blank_in_source(lo))
            && !self.out.ends_with("\n\n")
        {
            self.out.push('\n');
        }
        for _ in 0..self.indent {
            self.out.push_str("    ");
        }
        self.block_start = false;
    }

    /// Print the comments that start before `pos` on their own lines; the first one gets the
    /// blank line `force_blank` asks for. Returns whether anything was printed.
    fn flush_before(&mut self, pos: usize, mut force_blank: bool) -> bool {
        let mut printed = false;
        while let Some(c) = self.comments.get(self.next) {
            if c.lo >= pos {
                break;
            }
            self.start_line(c.lo, force_blank);
            force_blank = false;
            printed = true;
            self.out.push_str(&c.text);
            self.out.push('\n');
            self.last_end = c.hi;
            self.next += 1;
        }
        printed
    }

    /// End the current line, attaching a comment that followed `end` on the same source line
    /// (and before `limit`, where the next statement starts). Comments inside the statement
    /// (before `end`) follow on their own lines.
    fn end_line(&mut self, end: usize, limit: usize) {
        let inside_from = self.next;
        while self.comments.get(self.next).is_some_and(|c| c.lo < end) {
            self.next += 1;
        }
        let inside = &self.comments[inside_from..self.next];
        let mut trailing = None;
        if let Some(c) = self.comments.get(self.next) {
            let gap = self.src.get(end..c.lo).unwrap_or("\n");
            if !gap.contains('\n') && c.lo < limit {
                trailing = Some(c);
                self.next += 1;
            }
        }
        if let Some(c) = trailing {
            self.marks.push(self.out.len());
            self.out.push(' ');
            self.out.push_str(&c.text);
            self.last_end = c.hi;
        } else {
            self.last_end = end.max(self.last_end);
        }
        self.out.push('\n');
        for c in inside {
            for _ in 0..self.indent {
                self.out.push_str("    ");
            }
            self.out.push_str(&c.text);
            self.out.push('\n');
        }
    }

    /// A one-line statement; `limit` is where the next statement starts. Comments inside the
    /// statement (`map # c` newline `n.a "..."`) go on their own lines before it, where a second
    /// run finds them again (printing them after the statement was not a fixpoint).
    fn line(&mut self, span: Span, text: &str, force_blank: bool, limit: usize) {
        let printed = self.flush_before(span.hi, force_blank);
        let force_blank = force_blank && !printed;
        self.start_line(span.lo, force_blank);
        self.out.push_str(text);
        self.end_line(span.hi, limit);
    }

    /// A block: header line, body (printed by `body`), closing brace. `first` is where the
    /// first statement inside starts, `limit` where the statement after the block starts.
    #[allow(clippy::too_many_arguments)]
    fn block(
        &mut self,
        span: Span,
        header: &str,
        header_end: usize,
        first: Option<usize>,
        force_blank: bool,
        limit: usize,
        body: impl FnOnce(&mut Self),
    ) {
        // Comments inside the header (`network # c` newline `n {`) go before it, as for lines.
        let printed = self.flush_before(header_end, force_blank);
        let force_blank = force_blank && !printed;
        self.start_line(span.lo, force_blank);
        self.out.push_str(header);
        self.out.push_str(" {");
        // A comment right after `{` on the header's line stays there.
        let close = span.hi.saturating_sub(1);
        self.end_line(header_end, first.unwrap_or(close));
        self.indent += 1;
        self.block_start = true;
        body(self);
        self.flush_before(close, false);
        self.indent -= 1;
        for _ in 0..self.indent {
            self.out.push_str("    ");
        }
        self.out.push('}');
        self.block_start = false;
        self.end_line(span.hi, limit);
    }

    fn item(&mut self, item: &Item, force_blank: bool, limit: usize) {
        match item {
            Item::Import(p, span) => self.line(
                *span,
                &format!("import {}", quote(&p.value)),
                force_blank,
                limit,
            ),
            Item::Arch(a) => {
                let header = format!("arch {}", name_source(&a.name.text));
                let first = a.stmts.first().map(|s| s.span().lo);
                let close = a.span.hi.saturating_sub(1);
                self.block(
                    a.span,
                    &header,
                    a.name.span.hi + 1,
                    first,
                    force_blank,
                    limit,
                    |p| {
                        for (i, s) in a.stmts.iter().enumerate() {
                            let next = a.stmts.get(i + 1).map_or(close, |n| n.span().lo);
                            p.arch_stmt(s, next);
                        }
                    },
                );
            }
            Item::Network(n) => {
                let header = format!("network {}", name_source(&n.name.text));
                let first = n.layers.first().map(|l| l.span().lo);
                let close = n.span.hi.saturating_sub(1);
                self.block(
                    n.span,
                    &header,
                    n.name.span.hi + 1,
                    first,
                    force_blank,
                    limit,
                    |p| {
                        for (i, l) in n.layers.iter().enumerate() {
                            let next = n.layers.get(i + 1).map_or(close, |n| n.span().lo);
                            p.line(l.span(), &layer_text(l, p.src), false, next);
                        }
                    },
                );
            }
            Item::Map(m) => {
                let target = match &m.network {
                    Some(n) => format!("{}.{}", name_source(&n.text), name_source(&m.layer.text)),
                    None => name_source(&m.layer.text),
                };
                self.line(
                    m.span,
                    &format!(
                        "map {target} {}",
                        match &m.mapping {
                            MapSpec::Compact(s) => quote(&s.value),
                            MapSpec::Word(w) => w.text.clone(),
                        }
                    ),
                    force_blank,
                    limit,
                );
            }
            Item::Search(s) => {
                let first = s.stmts.first().map(|st| st.span().lo);
                let close = s.span.hi.saturating_sub(1);
                self.block(
                    s.span,
                    "search",
                    s.span.lo + "search".len(),
                    first,
                    force_blank,
                    limit,
                    |p| {
                        for (i, st) in s.stmts.iter().enumerate() {
                            let text = match st {
                                SearchStmt::Set(k, v, _) => {
                                    format!("{} {}", k.keyword(), search_val(v))
                                }
                                SearchStmt::Error(sp) => raw(p.src, *sp),
                            };
                            let next = s.stmts.get(i + 1).map_or(close, |n| n.span().lo);
                            p.line(st.span(), &text, false, next);
                        }
                    },
                );
            }
            Item::Error(span) => self.line(*span, &raw(self.src, *span), force_blank, limit),
        }
    }

    fn arch_stmt(&mut self, s: &ArchStmt, limit: usize) {
        let text = match s {
            ArchStmt::Pe(spec, _) => format!(
                "pe {}",
                match spec {
                    PeSpec::Grid(a, b) => format!("{}x{}", a.text, b.text),
                    PeSpec::Fixed(n) => n.text.clone(),
                    PeSpec::AtMost(n) => format!("<= {}", n.text),
                    PeSpec::Free(_) => "free".into(),
                }
            ),
            ArchStmt::PeMin(n, _) => format!("pe_min {}", n.text),
            ArchStmt::MacEnergy(q, _) => format!("mac_energy {}", qty(q)),
            ArchStmt::Level(l) => {
                let header = format!("level {}", name_source(&l.name.text));
                let first = l.stmts.first().map(|st| st.span().lo);
                let close = l.span.hi.saturating_sub(1);
                self.block(
                    l.span,
                    &header,
                    l.name.span.hi + 1,
                    first,
                    false,
                    limit,
                    |p| {
                        for (i, st) in l.stmts.iter().enumerate() {
                            let text = level_stmt(st, p.src);
                            let next = l.stmts.get(i + 1).map_or(close, |n| n.span().lo);
                            p.line(st.span(), &text, false, next);
                        }
                    },
                );
                return;
            }
            ArchStmt::Error(sp) => raw(self.src, *sp),
        };
        self.line(s.span(), &text, false, limit);
    }
}

fn raw(src: &str, span: Span) -> String {
    src.get(span.range()).unwrap_or("").trim().to_string()
}

fn qty(q: &Quantity) -> String {
    match &q.unit {
        Some(u) => format!("{} {}", q.num.text, u.text),
        None => q.num.text.clone(),
    }
}

fn words(ws: &[Word]) -> String {
    ws.iter()
        .map(|w| w.text.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn with_list(kw: &str, list: String) -> String {
    if list.is_empty() {
        kw.to_string()
    } else {
        format!("{kw} {list}")
    }
}

fn level_stmt(s: &LevelStmt, src: &str) -> String {
    match s {
        LevelStmt::Keeps(ts, _) => with_list("keeps", words(ts)),
        LevelStmt::Word(q, _) => format!("word {}", qty(q)),
        LevelStmt::Capacity(b, scope, _) => {
            let mut t = match b {
                BoundSpec::Fixed(q) => format!("capacity {}", qty(q)),
                BoundSpec::AtMost(q) => format!("capacity <= {}", qty(q)),
                BoundSpec::Free(_) => "capacity free".into(),
            };
            match scope {
                Some((Scope::Each, _)) => t.push_str(" each"),
                Some((Scope::Total, _)) => t.push_str(" total"),
                None => {}
            }
            t
        }
        LevelStmt::DoubleBuffered(_) => "double_buffered".into(),
        LevelStmt::Instances(w, _) => format!("instances {}", w.text),
        LevelStmt::Bandwidth(b, _) => format!(
            "bandwidth {}",
            match b {
                BwSpec::Words(n) => n.text.clone(),
                BwSpec::PerPe(Some(n)) => format!("{} * pe", n.text),
                BwSpec::PerPe(None) => "pe".into(),
                BwSpec::PerSpatial(Some(n), d) => format!("{} * spatial {}", n.text, d.text),
                BwSpec::PerSpatial(None, d) => format!("spatial {}", d.text),
                BwSpec::Named(w) => w.text.clone(),
            }
        ),
        LevelStmt::Energy(e, _) => format!(
            "energy {}",
            match e {
                EnergySpec::Named(w) => w.text.clone(),
                EnergySpec::Const(q) => qty(q),
                EnergySpec::Linear(a, b, per) => format!("{} + {}/{}", qty(a), qty(b), per.text),
            }
        ),
        LevelStmt::Spatial(items, _) => with_list(
            "spatial",
            items
                .iter()
                .map(|it| match &it.max {
                    Some(m) => format!("{} <= {}", it.dim.text, m.text),
                    None => it.dim.text.clone(),
                })
                .collect::<Vec<_>>()
                .join(", "),
        ),
        LevelStmt::Temporal(ws, _) => with_list("temporal", words(ws)),
        LevelStmt::Backing(_) => "backing".into(),
        LevelStmt::Error(sp) => raw(src, *sp),
    }
}

fn layer_text(l: &LayerDef, src: &str) -> String {
    match l {
        LayerDef::Layer {
            kind, name, params, ..
        } => {
            let mut t = format!(
                "{} {}",
                match kind {
                    LayerKw::Conv => "conv",
                    LayerKw::Matmul => "matmul",
                },
                name_source(&name.text)
            );
            for p in params {
                t.push_str(&format!(" {}={}", p.key.text, p.value.text));
            }
            t
        }
        LayerDef::Error(sp) => raw(src, *sp),
    }
}

fn search_val(v: &SearchVal) -> String {
    match v {
        SearchVal::Word(w) => w.text.clone(),
        SearchVal::Num(n) => n.text.clone(),
        SearchVal::Quantity(q) => qty(q),
        SearchVal::Str(s) => quote(&s.value),
    }
}

#[cfg(test)]
mod tests {
    use crate::syntax::{format_source, Formatted};

    fn fmt(s: &str) -> String {
        match format_source("t.dosa", s) {
            Formatted::Ok(f) => f,
            Formatted::Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn comments_stay_with_the_statement_they_follow() {
        let src = "arch a { # header\n pe 4x4 mac_energy 1 pJ # mac\n level D { keeps W, I, O word 8 bits energy dram backing } # after D\n # before close\n}\n# tail\n";
        let want = "arch a { # header\n    pe 4x4\n    mac_energy 1 pJ # mac\n    level D {\n        keeps W, I, O\n        word 8 bits\n        energy dram\n        backing\n    } # after D\n    # before close\n}\n# tail\n";
        let got = fmt(src);
        assert_eq!(got, want);
        assert_eq!(fmt(&got), got);
    }

    #[test]
    fn comments_inside_a_header_or_statement_go_before_it() {
        let src = "network # a\nn { conv # b\n x P=2 }\nmap # c\n n.x \"L0[WIO] P2\"\n";
        let want = "# a\nnetwork n {\n    # b\n    conv x P=2\n}\n\n# c\nmap n.x \"L0[WIO] P2\"\n";
        let got = fmt(src);
        assert_eq!(got, want);
        assert_eq!(fmt(&got), got);
    }

    #[test]
    fn blank_lines_are_kept_once_and_blocks_are_separated() {
        let src = "import \"a.dosa\"\n\n\n\nimport \"b.dosa\"\nimport \"c.dosa\"\nnetwork n { conv a C=1 }\nmap n.a \"L0[WIO] N1\"\n";
        let want = "import \"a.dosa\"\n\nimport \"b.dosa\"\nimport \"c.dosa\"\n\nnetwork n {\n    conv a C=1\n}\n\nmap n.a \"L0[WIO] N1\"\n";
        assert_eq!(fmt(src), want);
    }

    #[test]
    fn names_are_quoted_only_when_needed() {
        let src = "network \"plain\" { conv \"a.b\" C=1 conv \"model\" C=1 conv \"x\\\"y\" C=1 }\n";
        let want = "network plain {\n    conv \"a.b\" C=1\n    conv \"model\" C=1\n    conv \"x\\\"y\" C=1\n}\n";
        assert_eq!(fmt(src), want);
    }
}
