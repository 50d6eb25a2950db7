//! Fuzz (proptest) of the parser, the formatter and the evaluator on mutated real programs:
//! whatever the bytes, checking never panics and renders its diagnostics; what formats is a
//! fixpoint that parses and loads the same; what loads evaluates (with and without Timeloop's
//! rounding) without a panic and with finite numbers only. `CASES` cases per property in CI
//! (README "Tests"); the valid-program round trips are in `syntax_roundtrip.rs`.

use dosa::syntax::{check_text, format_source, load_text, parse_tree, Formatted};
use dosa::util::Rng;
use proptest::prelude::*;

/// Cases per property, in CI and in the README.
const CASES: u32 = 256;

/// Programs with every statement kind (arch, networks, search, mappings) to mutate.
const SEEDS: [&str; 5] = [
    include_str!("../examples/tutorial.dosa"),
    include_str!("../examples/timeloop_rows.dosa"),
    include_str!("odd/comments_everywhere.dosa"),
    include_str!("odd/unicode_names.dosa"),
    include_str!("odd/endings_crlf.dosa"),
];

/// Tokens worth splicing in: numbers at the edges of what the model takes, keywords, brackets.
const TOKENS: [&str; 24] = [
    "0",
    "1",
    "-1",
    "1e308",
    "1e-300",
    "18446744073709551616",
    "0.5",
    "NaN",
    "inf",
    "KiB",
    "{",
    "}",
    "\"",
    "#",
    "\n",
    "\r",
    "\u{FEFF}",
    "map",
    "network",
    "level",
    "X",
    " - ",
    "L0[W]",
    "ü",
];

/// A mutated copy of one seed program: 1 to 4 edits (replace a number, delete a span, splice a
/// token, duplicate or drop a line), all fixed by `seed`.
fn mutate(seed: u64) -> String {
    let mut rng = Rng::new(seed);
    let mut text: Vec<char> = SEEDS[rng.below(SEEDS.len() as u64) as usize]
        .chars()
        .collect();
    for _ in 0..=rng.below(4) {
        let n = text.len().max(1) as u64;
        let at = rng.below(n) as usize;
        match rng.below(5) {
            0 => {
                // Replace the number at or after `at`, if any.
                if let Some(start) = (at..text.len()).find(|&i| text[i].is_ascii_digit()) {
                    let end = (start..text.len())
                        .find(|&i| !text[i].is_ascii_digit() && text[i] != '.')
                        .unwrap_or(text.len());
                    let t = TOKENS[rng.below(9) as usize];
                    text.splice(start..end, t.chars());
                }
            }
            1 => {
                let len = rng.below(16) as usize;
                let end = (at + len).min(text.len());
                text.drain(at.min(end)..end);
            }
            2 => {
                let t = TOKENS[rng.below(TOKENS.len() as u64) as usize];
                let at = at.min(text.len());
                text.splice(at..at, t.chars());
            }
            3 => {
                let s: String = text.iter().collect();
                let lines: Vec<&str> = s.split('\n').collect();
                let i = rng.below(lines.len() as u64) as usize;
                let mut out: Vec<&str> = lines.clone();
                out.insert(i, lines[i]);
                text = out.join("\n").chars().collect();
            }
            _ => {
                let s: String = text.iter().collect();
                let mut lines: Vec<&str> = s.split('\n').collect();
                let i = rng.below(lines.len() as u64) as usize;
                lines.remove(i);
                text = lines.join("\n").chars().collect();
            }
        }
    }
    text.into_iter().collect()
}

/// Every number in a JSON value (serde_json writes a non-finite float as `null`).
fn assert_no_null(v: &serde_json::Value, path: &str) {
    match v {
        serde_json::Value::Null => panic!("null (a non-finite number?) at {path}"),
        serde_json::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                assert_no_null(x, &format!("{path}[{i}]"));
            }
        }
        serde_json::Value::Object(o) => {
            for (k, x) in o {
                assert_no_null(x, &format!("{path}.{k}"));
            }
        }
        serde_json::Value::Number(n) => {
            assert!(n.as_f64().is_some_and(f64::is_finite), "{path}: {n}")
        }
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_parser_never_panics_and_reports_what_it_rejects(seed in any::<u64>()) {
        let text = mutate(seed);
        let o = check_text("m.dosa", &text);
        let rendered = o.render();
        let loaded = load_text("m.dosa", &text);
        // Errors are reported with text; a clean check loads.
        if o.error_count() > 0 {
            prop_assert!(rendered.contains("error"), "{}", rendered);
            prop_assert!(loaded.is_err());
        } else {
            prop_assert!(loaded.is_ok(), "{}", text);
        }
    }

    #[test]
    fn what_formats_is_a_fixpoint_that_means_the_same(seed in any::<u64>()) {
        let text = mutate(seed);
        if let Formatted::Ok(f) = format_source("m.dosa", &text) {
            match format_source("f.dosa", &f) {
                Formatted::Ok(again) => prop_assert_eq!(&again, &f),
                Formatted::Err(e) => prop_assert!(false, "formatted text does not format: {}\n{}", e, f),
            }
            prop_assert_eq!(parse_tree(&f), parse_tree(&text));
            prop_assert_eq!(load_text("f.dosa", &f).ok(), load_text("m.dosa", &text).ok());
        }
    }

    #[test]
    fn what_loads_evaluates_to_finite_numbers_or_errors(seed in any::<u64>()) {
        let text = mutate(seed);
        if let Ok(p) = load_text("m.dosa", &text) {
            for timeloop in [false, true] {
                match dosa::model::report::evaluate_program_with(&p, timeloop) {
                    Ok(r) => {
                        let v = serde_json::to_value(&r).expect("the report serialises");
                        assert_no_null(&v, "report");
                    }
                    Err(errs) => prop_assert!(!errs.is_empty() && errs.iter().all(|e| !e.is_empty())),
                }
            }
        }
    }
}

#[test]
fn the_mutations_reach_every_stage() {
    // Of the CASES mutants, some are rejected, some load, and some of those evaluate: otherwise
    // the properties above test nothing.
    let (mut rejected, mut loaded, mut evaluated) = (0, 0, 0);
    for seed in 0..CASES as u64 {
        match load_text("m.dosa", &mutate(seed)) {
            Err(_) => rejected += 1,
            Ok(p) => {
                loaded += 1;
                evaluated +=
                    usize::from(dosa::model::report::evaluate_program_with(&p, false).is_ok());
            }
        }
    }
    eprintln!("{CASES} mutants: {rejected} rejected, {loaded} loaded, {evaluated} evaluated");
    assert!(rejected > CASES as usize / 10, "{rejected} rejected");
    assert!(loaded > CASES as usize / 10, "{loaded} loaded");
    assert!(evaluated > CASES as usize / 20, "{evaluated} evaluated");
}

#[test]
fn the_readme_states_the_case_count() {
    let readme = include_str!("../README.md");
    let flat = readme.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains(&format!("`tests/fuzz.rs` runs {CASES} proptest cases")),
        "README and CASES disagree"
    );
}
