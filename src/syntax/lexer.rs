//! Tokens of the `.dosa` language (a logos lexer feeding the lalrpop parser).
//!
//! Comments and lexical errors are collected on the side instead of being passed to the parser:
//! the formatter needs the comments, and a bad character should not stop the parse.

use logos::Logos;

/// One token. Keywords are reserved; any name may still be written in double quotes.
#[derive(Logos, Clone, Copy, Debug, PartialEq, Eq)]
#[logos(skip r"[ \t\r\n\f]+")]
pub enum Tok<'i> {
    #[token("import")]
    Import,
    #[token("arch")]
    Arch,
    #[token("network")]
    Network,
    #[token("map")]
    Map,
    #[token("search")]
    Search,
    #[token("level")]
    Level,
    #[token("pe")]
    Pe,
    #[token("pe_min")]
    PeMin,
    #[token("mac_energy")]
    MacEnergy,
    #[token("keeps")]
    Keeps,
    #[token("word")]
    Word,
    #[token("capacity")]
    Capacity,
    #[token("double_buffered")]
    DoubleBuffered,
    #[token("instances")]
    Instances,
    #[token("bandwidth")]
    Bandwidth,
    #[token("energy")]
    Energy,
    #[token("spatial")]
    Spatial,
    #[token("temporal")]
    Temporal,
    #[token("backing")]
    Backing,
    #[token("each")]
    Each,
    #[token("total")]
    Total,
    #[token("free")]
    Free,
    #[token("conv")]
    Conv,
    #[token("matmul")]
    Matmul,
    #[token("objective")]
    Objective,
    #[token("starts")]
    Starts,
    #[token("steps")]
    Steps,
    #[token("round_every")]
    RoundEvery,
    #[token("lr")]
    Lr,
    #[token("seed")]
    Seed,
    #[token("max_pe")]
    MaxPe,
    #[token("max_scratchpad")]
    MaxScratchpad,
    #[token("max_accumulator")]
    MaxAccumulator,
    #[token("predictor")]
    Predictor,
    #[token("model")]
    Model,
    #[token("hardware")]
    Hardware,
    #[token("mapspace")]
    Mapspace,
    #[token("{")]
    LBrace,
    #[token("}")]
    RBrace,
    #[token("=")]
    Eq,
    #[token(",")]
    Comma,
    #[token(".")]
    Dot,
    #[token("*")]
    Star,
    #[token("+")]
    Plus,
    #[token("/")]
    Slash,
    #[token("<=")]
    Le,
    #[regex(r"[A-Za-z_][A-Za-z0-9_]*", |lex| lex.slice())]
    Ident(&'i str),
    #[regex(r"[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?", |lex| lex.slice())]
    Number(&'i str),
    /// `16x16`: a PE array.
    #[regex(r"[0-9]+x[0-9]+", |lex| lex.slice())]
    Grid(&'i str),
    /// A string literal, quotes included.
    #[regex(r#""([^"\\\n]|\\[^\n])*""#, |lex| lex.slice())]
    Str(&'i str),
    /// A string missing its closing quote (reported, then parsed as if closed).
    #[regex(r#""([^"\\\n]|\\[^\n])*"#, |lex| lex.slice())]
    Unterminated(&'i str),
    #[regex(r"#[^\n]*", allow_greedy = true, callback = |lex| lex.slice())]
    Comment(&'i str),
}

/// The words the lexer reserves; a name equal to one of these must be quoted.
pub const KEYWORDS: &[&str] = &[
    "import",
    "arch",
    "network",
    "map",
    "search",
    "level",
    "pe",
    "pe_min",
    "mac_energy",
    "keeps",
    "word",
    "capacity",
    "double_buffered",
    "instances",
    "bandwidth",
    "energy",
    "spatial",
    "temporal",
    "backing",
    "each",
    "total",
    "free",
    "conv",
    "matmul",
    "objective",
    "starts",
    "steps",
    "round_every",
    "lr",
    "seed",
    "max_pe",
    "max_scratchpad",
    "max_accumulator",
    "predictor",
    "model",
    "hardware",
    "mapspace",
];

/// Whether `s` can be written without quotes.
pub fn is_bare_name(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_') && !KEYWORDS.contains(&s)
}

/// Never produced: lexical errors are collected, not handed to the parser. lalrpop needs a type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LexError;

/// A lexical problem with its byte range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LexProblem {
    pub lo: usize,
    pub hi: usize,
    pub message: String,
    pub hint: Option<String>,
}

/// A comment with its byte range; the text includes the leading `#`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comment {
    pub lo: usize,
    pub hi: usize,
    pub text: String,
}

/// The token stream of a file plus what was set aside.
pub struct Lexed<'i> {
    pub tokens: Vec<(usize, Tok<'i>, usize)>,
    pub comments: Vec<Comment>,
    pub problems: Vec<LexProblem>,
}

/// Split `src` into tokens, comments and problems.
pub fn lex(src: &str) -> Lexed<'_> {
    let mut out = Lexed {
        tokens: Vec::new(),
        comments: Vec::new(),
        problems: Vec::new(),
    };
    let mut lexer = Tok::lexer(src);
    while let Some(tok) = lexer.next() {
        let span = lexer.span();
        match tok {
            Ok(Tok::Comment(text)) => out.comments.push(Comment {
                lo: span.start,
                hi: span.end,
                text: text.trim_end().to_string(),
            }),
            Ok(Tok::Unterminated(raw)) => {
                out.problems.push(LexProblem {
                    lo: span.start,
                    hi: span.end,
                    message: "this string has no closing `\"`".into(),
                    hint: Some("strings end on the line they start".into()),
                });
                check_escapes(raw, span.start, &mut out.problems);
                out.tokens.push((span.start, Tok::Str(raw), span.end));
            }
            Ok(Tok::Str(raw)) => {
                check_escapes(raw, span.start, &mut out.problems);
                out.tokens.push((span.start, Tok::Str(raw), span.end));
            }
            Ok(t) => out.tokens.push((span.start, t, span.end)),
            Err(()) => {
                let c = src[span.start..].chars().next().unwrap_or(' ');
                let hi = span.start + c.len_utf8();
                let hint = match c {
                    '-' => Some("numbers cannot be negative; a compact mapping goes in a string: `map net.layer \"L3[WIO] ...\"`".into()),
                    ':' | ';' => Some("statements need no separators; write one per line".into()),
                    '/' => Some("comments start with `#`".into()),
                    _ => None,
                };
                // Merge a run of bad characters into one problem.
                match out.problems.last_mut() {
                    Some(p)
                        if p.hi == span.start && p.message.starts_with("unexpected character") =>
                    {
                        p.hi = span.end.max(hi);
                        p.message = "unexpected characters".into();
                    }
                    _ => out.problems.push(LexProblem {
                        lo: span.start,
                        hi: span.end.max(hi),
                        message: format!("unexpected character `{}`", c.escape_debug()),
                        hint,
                    }),
                }
            }
        }
    }
    out
}

/// Report escapes other than `\\ \" \n \t \r \u{...}` inside a raw string literal.
fn check_escapes(raw: &str, base: usize, problems: &mut Vec<LexProblem>) {
    if let Err((at, len, msg)) = decode_string(raw) {
        problems.push(LexProblem {
            lo: base + at,
            hi: base + at + len,
            message: msg,
            hint: Some("strings know the escapes \\\\ \\\" \\n \\t \\r and \\u{HEX}".into()),
        });
    }
}

/// Decode a raw string literal (quotes included, closing quote optional).
///
/// Returns the value and, for every byte of the value plus one past the end, the byte offset in
/// `raw` it came from, so that errors inside a mapping string can point at the source. A bad
/// escape is reported as `(offset, len, message)`.
pub fn decode_string(raw: &str) -> Result<(String, Vec<usize>), (usize, usize, String)> {
    let body_end = if raw.len() >= 2 && raw.ends_with('"') && !ends_with_escaped_quote(raw) {
        raw.len() - 1
    } else {
        raw.len()
    };
    let mut value = String::new();
    let mut offsets = Vec::new();
    let mut i = 1;
    let bytes = raw.as_bytes();
    while i < body_end {
        let c = raw[i..].chars().next().unwrap_or(' ');
        if c != '\\' {
            for _ in 0..c.len_utf8() {
                offsets.push(i);
            }
            value.push(c);
            i += c.len_utf8();
            continue;
        }
        let start = i;
        let next = raw[i + 1..].chars().next();
        let decoded = match next {
            Some('\\') => Some(('\\', 2)),
            Some('"') => Some(('"', 2)),
            Some('n') => Some(('\n', 2)),
            Some('t') => Some(('\t', 2)),
            Some('r') => Some(('\r', 2)),
            Some('u') if bytes.get(i + 2) == Some(&b'{') => {
                let close = raw[i..].find('}').map(|j| i + j);
                close.and_then(|cl| {
                    u32::from_str_radix(&raw[i + 3..cl], 16)
                        .ok()
                        .and_then(char::from_u32)
                        .map(|ch| (ch, cl + 1 - i))
                })
            }
            _ => None,
        };
        match decoded {
            Some((ch, len)) => {
                for _ in 0..ch.len_utf8() {
                    offsets.push(start);
                }
                value.push(ch);
                i += len;
            }
            None => {
                let len = 1 + next.map_or(0, char::len_utf8);
                return Err((
                    start,
                    len,
                    format!("unknown escape `{}`", &raw[start..start + len]),
                ));
            }
        }
    }
    offsets.push(i);
    Ok((value, offsets))
}

/// Whether the final `"` of `raw` is escaped (`"abc\"` is unterminated).
fn ends_with_escaped_quote(raw: &str) -> bool {
    let body = &raw.as_bytes()[1..raw.len() - 1];
    body.iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 1
}

/// Decode leniently (bad escapes kept as written); the lexer has already reported them.
pub fn decode_lenient(raw: &str) -> String {
    match decode_string(raw) {
        Ok((v, _)) => v,
        Err(_) => {
            let inner = raw.strip_prefix('"').unwrap_or(raw);
            inner.strip_suffix('"').unwrap_or(inner).to_string()
        }
    }
}

/// Write `s` as a string literal that [`decode_string`] reads back exactly.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A name as it must be written: bare when possible, else quoted.
pub fn name_source(s: &str) -> String {
    if is_bare_name(s) {
        s.to_string()
    } else {
        quote(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_numbers_grids_and_names() {
        let l = lex("arch x { pe 16x16 word 8bits } # c\n\"a.b\" 1.5e3 archer");
        let toks: Vec<_> = l.tokens.iter().map(|t| t.1).collect();
        assert_eq!(
            toks,
            vec![
                Tok::Arch,
                Tok::Ident("x"),
                Tok::LBrace,
                Tok::Pe,
                Tok::Grid("16x16"),
                Tok::Word,
                Tok::Number("8"),
                Tok::Ident("bits"),
                Tok::RBrace,
                Tok::Str("\"a.b\""),
                Tok::Number("1.5e3"),
                Tok::Ident("archer"),
            ]
        );
        assert_eq!(l.comments.len(), 1);
        assert_eq!(l.comments[0].text, "# c");
        assert!(l.problems.is_empty());
    }

    #[test]
    fn strings_round_trip_through_quote() {
        for s in [
            "plain",
            "with \"quotes\" and \\",
            "new\nline\ttab",
            "\u{1}ctl",
            "ünï",
        ] {
            let q = quote(s);
            let (v, offs) = decode_string(&q).unwrap();
            assert_eq!(v, s);
            assert_eq!(offs.len(), v.len() + 1);
        }
    }

    #[test]
    fn decode_offsets_point_into_raw() {
        let (v, offs) = decode_string(r#""a\"b""#).unwrap();
        assert_eq!(v, "a\"b");
        assert_eq!(offs, vec![1, 2, 4, 5]);
    }

    #[test]
    fn bad_escapes_and_unterminated_strings_are_problems() {
        let l = lex("\"a\\qb\" \"open\nx");
        assert_eq!(l.problems.len(), 2);
        assert_eq!(l.problems[0].lo, 2);
        assert!(l.problems[1].message.contains("closing"));
        assert!(decode_string("\"abc\\\"").is_ok()); // unterminated: body runs to the end
    }

    #[test]
    fn bare_names() {
        assert!(is_bare_name("conv1"));
        assert!(!is_bare_name("8_2_conv"));
        assert!(!is_bare_name("a.b"));
        assert!(!is_bare_name("model"));
        assert!(!is_bare_name(""));
    }
}
