//! Lex and parse one file into its AST, turning lexical and syntax errors into diagnostics.

use super::ast::File;
use super::lexer::{lex, Comment, LexError, Tok};
use codespan_reporting::diagnostic::{Diagnostic, Label};
use lalrpop_util::{ErrorRecovery, ParseError};

lalrpop_util::lalrpop_mod!(
    #[allow(clippy::all, clippy::pedantic, unused)]
    grammar,
    "/dosa.rs"
);

/// A parsed file: its tree (possibly with `Error` nodes), its comments and its diagnostics.
pub struct Parsed {
    pub file: File,
    pub comments: Vec<Comment>,
    pub diagnostics: Vec<Diagnostic<usize>>,
}

impl Parsed {
    /// Whether the tree is complete (no lexical or syntax error).
    pub fn is_clean(&self) -> bool {
        self.diagnostics.is_empty()
    }
}

/// Parse `src`, the text of file `file_id` (used in the diagnostics' labels).
pub fn parse(src: &str, file_id: usize) -> Parsed {
    let lexed = lex(src);
    let mut diagnostics: Vec<Diagnostic<usize>> = lexed
        .problems
        .iter()
        .map(|p| {
            let d = Diagnostic::error()
                .with_code("lex")
                .with_message(p.message.clone())
                .with_labels(vec![Label::primary(file_id, p.lo..p.hi)]);
            match &p.hint {
                Some(h) => d.with_notes(vec![format!("hint: {h}")]),
                None => d,
            }
        })
        .collect();
    let mut recovered: Vec<ErrorRecovery<usize, Tok<'_>, LexError>> = Vec::new();
    let result = grammar::FileParser::new().parse(&mut recovered, lexed.tokens.into_iter().map(Ok));
    for r in &recovered {
        diagnostics.push(syntax_diagnostic(&r.error, src, file_id));
    }
    let file = match result {
        Ok(f) => f,
        Err(e) => {
            diagnostics.push(syntax_diagnostic(&e, src, file_id));
            File::default()
        }
    };
    // Recovery can report the same spot twice (once while recovering, once at the end).
    diagnostics.dedup_by(|a, b| a.message == b.message && label_range(a) == label_range(b));
    Parsed {
        file,
        comments: lexed.comments,
        diagnostics,
    }
}

fn label_range(d: &Diagnostic<usize>) -> Option<std::ops::Range<usize>> {
    d.labels.first().map(|l| l.range.clone())
}

/// How a token is named in "expected ..." lists.
fn describe_expected(e: &str) -> String {
    match e {
        "Ident" => "a name".into(),
        "Number" => "a number".into(),
        "Grid" => "a PE array like `16x16`".into(),
        "Str" => "a string".into(),
        s => format!("`{}`", s.trim_matches('"')),
    }
}

/// How a found token is described.
fn describe_found(t: &Tok<'_>, src: &str, lo: usize, hi: usize) -> String {
    match t {
        Tok::Ident(s) => format!("name `{s}`"),
        Tok::Number(s) => format!("number `{s}`"),
        Tok::Str(_) => "a string".into(),
        _ => format!("`{}`", src.get(lo..hi).unwrap_or("?")),
    }
}

fn expected_list(expected: &[String]) -> String {
    let mut items: Vec<String> = expected.iter().map(|e| describe_expected(e)).collect();
    items.dedup();
    match items.len() {
        0 => "nothing more".into(),
        1 => items.remove(0),
        _ => {
            let last = items.pop().unwrap_or_default();
            format!("{} or {}", items.join(", "), last)
        }
    }
}

fn syntax_diagnostic(
    e: &ParseError<usize, Tok<'_>, LexError>,
    src: &str,
    file_id: usize,
) -> Diagnostic<usize> {
    let d = Diagnostic::error().with_code("syntax");
    match e {
        ParseError::UnrecognizedToken {
            token: (lo, t, hi),
            expected,
        } => {
            let mut d = d
                .with_message(format!("unexpected {}", describe_found(t, src, *lo, *hi)))
                .with_labels(vec![Label::primary(file_id, *lo..*hi)
                    .with_message(format!("expected {}", expected_list(expected)))]);
            if let Some(h) = hint_for(t, expected) {
                d = d.with_notes(vec![format!("hint: {h}")]);
            }
            d
        }
        ParseError::UnrecognizedEof { location, expected } => {
            let at = (*location).min(src.len());
            d.with_message("unexpected end of file")
                .with_labels(vec![Label::primary(file_id, at..at)
                    .with_message(format!("expected {}", expected_list(expected)))])
                .with_notes(vec!["hint: is a closing `}` missing?".into()])
        }
        ParseError::InvalidToken { location } => d
            .with_message("invalid token")
            .with_labels(vec![Label::primary(file_id, *location..*location)]),
        ParseError::ExtraToken { token: (lo, t, hi) } => d
            .with_message(format!("unexpected {}", describe_found(t, src, *lo, *hi)))
            .with_labels(vec![Label::primary(file_id, *lo..*hi)]),
        ParseError::User { .. } => d.with_message("lexical error"),
    }
}

/// A hint for common slips, judged from the token found and what was expected.
fn hint_for(t: &Tok<'_>, expected: &[String]) -> Option<String> {
    let expects = |s: &str| expected.iter().any(|e| e == s);
    match t {
        Tok::Ident(_) if expects("\"=\"") => None,
        Tok::Ident(_) if expects("\",\"") => Some("separate list items with commas: `keeps W, I, O`".into()),
        Tok::Ident(_) if expects("\"keeps\"") => {
            Some("a level block holds `keeps`, `word`, `capacity`, `double_buffered`, `instances`, `bandwidth`, `energy`, `spatial`, `temporal` and `backing`".into())
        }
        Tok::Ident(_) if expects("\"conv\"") => Some("a network holds lines like `conv NAME R=3 S=3 P=56 Q=56 C=64 K=64` or `matmul NAME M=128 K=768 N=768`".into()),
        Tok::Ident(_) if expects("\"objective\"") => Some(
            "a search block holds `objective`, `starts`, `steps`, `round_every`, `lr`, `seed`, `max_pe`, `max_scratchpad`, `max_accumulator`, `predictor` and `model`".into(),
        ),
        Tok::Ident(_) if expects("\"pe\"") => Some("an arch block holds `pe`, `pe_min`, `mac_energy` and `level` blocks".into()),
        Tok::Ident(_) if expects("\"import\"") => {
            Some("a file holds `import`, `arch`, `network`, `map` and `search` items".into())
        }
        Tok::Str(_) if expects("Ident") => None,
        t if keyword_text(t).is_some() && expects("Ident") => Some(format!(
            "`{}` is a keyword; write a name that is a keyword in double quotes",
            keyword_text(t).unwrap_or_default()
        )),
        _ => None,
    }
}

fn keyword_text(t: &Tok<'_>) -> Option<&'static str> {
    let name = format!("{t:?}");
    super::lexer::KEYWORDS
        .iter()
        .copied()
        .find(|k| k.replace('_', "").eq_ignore_ascii_case(&name))
}
