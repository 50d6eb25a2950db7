//! Search bounds that no design can meet (`max_pe 1`, `max_scratchpad 1 B`), found before any
//! search runs and reported at the bound's value ([`crate::search::design::unmeetable_bounds`]
//! decides, so the command-line flags get the same verdict).

use super::ast::{SearchDef, SearchKey, SearchStmt, SearchVal};
use crate::ir::{Arch, HwBounds};
use crate::search::design::{unmeetable_bounds, BoundKind};
use codespan_reporting::diagnostic::{Diagnostic, Label};

/// One `unmeetable-bound` diagnostic per bound of search block `sd` (in file `f`) that no design
/// on `arch` meets; `bounds` are the block's lowered bounds.
pub fn unmeetable(
    f: usize,
    sd: &SearchDef,
    arch: &Arch,
    bounds: &HwBounds,
) -> Vec<Diagnostic<usize>> {
    let mut out = Vec::new();
    for u in unmeetable_bounds(arch, bounds) {
        let key = match u.kind {
            BoundKind::Pe => SearchKey::MaxPe,
            BoundKind::Scratchpad => SearchKey::MaxScratchpad,
            BoundKind::Accumulator => SearchKey::MaxAccumulator,
        };
        let Some((val, span)) = sd.stmts.iter().find_map(|s| match s {
            SearchStmt::Set(k, v, span) if *k == key => Some((v, *span)),
            _ => None,
        }) else {
            continue;
        };
        let (at, text) = match val {
            SearchVal::Num(n) => (n.span, n.text.clone()),
            SearchVal::Quantity(q) => (
                q.span,
                format!(
                    "{} {}",
                    q.num.text,
                    q.unit.as_ref().map_or("", |u| u.text.as_str())
                ),
            ),
            _ => (span, String::new()),
        };
        out.push(
            Diagnostic::error()
                .with_code("unmeetable-bound")
                .with_message(format!(
                    "`{} {}` cannot be met by any design",
                    key.keyword(),
                    text.trim_end()
                ))
                .with_labels(vec![
                    Label::primary(f, at.range()).with_message(format!("at least {}", u.least))
                ])
                .with_notes(vec![
                    u.why.clone(),
                    format!(
                        "hint: write `{} {}` or more, or leave the bound out",
                        key.keyword(),
                        u.least
                    ),
                ]),
        );
    }
    out
}
