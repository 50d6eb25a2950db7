//! Stage `syntax`: the `.dosa` language front end.
//!
//! Contract used by every command: [`load_path`] turns a file (with its imports) into a checked
//! [`Program`] or the rendered diagnostics; [`program_to_source`] prints a program back as `.dosa`.
//!
//! Pipeline: [`lexer`] (logos) -> [`parse`] (lalrpop, `grammar/dosa.lalrpop`) -> [`ast`] ->
//! imports resolved here -> [`check`] (semantic checks, lowering to the IR). [`fmt`] prints a
//! syntax tree canonically (`dosa fmt`); [`print`] turns IR back into a tree; [`csv`] imports
//! networks from the reference data's CSV form.

pub mod ast;
pub mod bounds;

pub mod check;
pub mod csv;
pub mod fmt;
pub mod lexer;
pub mod onnx;
pub mod parse;
pub mod print;

use crate::ir::Program;
use codespan_reporting::diagnostic::{Diagnostic, Label, Severity};
use codespan_reporting::files::SimpleFiles;
use codespan_reporting::term;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Source text as the front end reads it: a leading UTF-8 byte-order mark dropped and every
/// line ending (CRLF, or a lone CR as old Mac files have) made `\n`. Spans and line numbers refer
/// to this text, which is also what diagnostics show, so codespan counts lines right for any of
/// the three conventions. `dosa fmt` therefore writes `\n` line endings and no mark.
pub fn normalize_text(text: &str) -> std::borrow::Cow<'_, str> {
    let t = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    if !t.contains('\r') {
        return std::borrow::Cow::Borrowed(t);
    }
    let mut out = String::with_capacity(t.len());
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' {
            out.push('\n');
            if chars.peek() == Some(&'\n') {
                chars.next();
            }
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Everything one load produced: the files read, every diagnostic, and the program if clean.
pub struct Outcome {
    pub files: SimpleFiles<String, String>,
    /// The text of each file, by file id (the same as in `files`).
    pub sources: Vec<String>,
    pub diagnostics: Vec<Diagnostic<usize>>,
    pub program: Option<Program>,
}

impl Outcome {
    /// Number of errors (warnings do not count).
    pub fn error_count(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity >= Severity::Error)
            .count()
    }

    /// The error codes, in order (`"unknown-name"`, `"mapping-product"`, ...), for tests.
    pub fn codes(&self) -> Vec<String> {
        self.diagnostics
            .iter()
            .map(|d| d.code.clone().unwrap_or_default())
            .collect()
    }

    /// All diagnostics rendered as plain text (no color), as `dosa check` prints them.
    pub fn render(&self) -> String {
        let config = term::Config::default();
        let mut out = String::new();
        for d in &self.diagnostics {
            match term::emit_into_string(&config, &self.files, d) {
                Ok(s) => out.push_str(&s),
                Err(_) => {
                    out.push_str(&format!("error: {}\n", d.message));
                }
            }
        }
        out
    }

    /// The program, or the rendered diagnostics.
    pub fn into_result(self) -> Result<Program, String> {
        match (&self.program, self.error_count()) {
            (Some(_), 0) => Ok(self.program.expect("checked above")),
            _ => Err(self.render()),
        }
    }
}

/// Load and check a `.dosa` file; `Err` carries the rendered diagnostics (exit code 1).
pub fn load_path(path: &Path) -> Result<Program, String> {
    check_path(path).into_result()
}

/// Load and check source text named `name` (imports resolve relative to `name`'s folder).
pub fn load_text(name: &str, text: &str) -> Result<Program, String> {
    check_text(name, text).into_result()
}

/// Load `path`, where `-` means standard input (imports then resolve from the current folder).
pub fn load_path_or_stdin(path: &str) -> Result<Program, String> {
    if path == "-" {
        check_stdin().into_result()
    } else {
        load_path(Path::new(path))
    }
}

/// Check standard input, named `<stdin>`; its imports resolve from the current folder.
pub fn check_stdin() -> Outcome {
    match crate::util::read_capped(std::io::stdin()) {
        Ok(bytes) => check_bytes("<stdin>", bytes, None),
        Err(e) => io_outcome("<stdin>", &e),
    }
}

/// Check raw bytes (reporting text that is not UTF-8 as a diagnostic).
pub fn check_bytes(name: &str, bytes: Vec<u8>, canon: Option<PathBuf>) -> Outcome {
    match String::from_utf8(bytes) {
        Ok(text) => check_root(name, text, canon),
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            not_utf8(name, text, valid)
        }
    }
}

/// Like [`load_path`], with the structured diagnostics (for tests and tools).
pub fn check_path(path: &Path) -> Outcome {
    let display = path.display().to_string();
    match crate::util::read_file_capped(path) {
        Ok(bytes) => check_bytes(&display, bytes, std::fs::canonicalize(path).ok()),
        Err(e) => io_outcome(&display, &e),
    }
}

fn io_outcome(display: &str, e: &std::io::Error) -> Outcome {
    let mut files = SimpleFiles::new();
    let id = files.add(display.to_string(), String::new());
    Outcome {
        files,
        sources: vec![String::new()],
        diagnostics: vec![Diagnostic::error()
            .with_code("io")
            .with_message(format!("cannot read `{display}`: {}", io_message(e)))
            .with_labels(vec![Label::primary(id, 0..0)])],
        program: None,
    }
}

/// Like [`load_text`], with the structured diagnostics.
pub fn check_text(name: &str, text: &str) -> Outcome {
    check_root(name, text.to_string(), None)
}

fn not_utf8(display: &str, text: String, valid: usize) -> Outcome {
    let mut files = SimpleFiles::new();
    // Byte offsets of the lossy text match the original up to the first bad byte.
    let id = files.add(display.to_string(), text.clone());
    let at = text.floor_char_boundary_compat(valid);
    Outcome {
        files,
        sources: vec![text],
        diagnostics: vec![Diagnostic::error()
            .with_code("encoding")
            .with_message(format!("`{display}` is not UTF-8 text"))
            .with_labels(vec![
                Label::primary(id, at..at).with_message("invalid UTF-8 here")
            ])],
        program: None,
    }
}

trait FloorBoundary {
    fn floor_char_boundary_compat(&self, i: usize) -> usize;
}

impl FloorBoundary for String {
    fn floor_char_boundary_compat(&self, i: usize) -> usize {
        let mut i = i.min(self.len());
        while !self.is_char_boundary(i) {
            i -= 1;
        }
        i
    }
}

fn io_message(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => {
            let s = e.to_string();
            // Drop the platform-specific "(os error N)" suffix.
            s.split(" (os error").next().unwrap_or(&s).to_string()
        }
    }
}

/// Reads a root file and its imports, depth first, each file once.
struct Loader {
    files: SimpleFiles<String, String>,
    sources: Vec<String>,
    diagnostics: Vec<Diagnostic<usize>>,
    /// Parsed files by id (empty until parsed).
    trees: Vec<ast::File>,
    /// Items in load order: an import's items come where the import stands.
    order: Vec<(usize, usize)>,
    /// Canonical paths of the files being loaded (for cycle detection) with their display names.
    stack: Vec<(PathBuf, String)>,
    done: BTreeSet<PathBuf>,
    /// Whether a missing import or syntax error makes semantic checks meaningless.
    blocked: bool,
}

impl Loader {
    fn add(&mut self, display: &str, text: String) -> usize {
        let text = match normalize_text(&text) {
            std::borrow::Cow::Borrowed(t) if t.len() == text.len() => text,
            t => t.into_owned(),
        };
        let id = self.files.add(display.to_string(), text.clone());
        self.sources.push(text);
        self.trees.push(ast::File::default());
        id
    }

    fn visit(&mut self, id: usize, display: &str, canon: Option<PathBuf>) {
        let parsed = parse::parse(&self.sources[id], id);
        if !parsed.is_clean() {
            self.blocked = true;
        }
        self.diagnostics.extend(parsed.diagnostics);
        self.trees[id] = parsed.file;
        if let Some(c) = &canon {
            self.stack.push((c.clone(), display.to_string()));
        }
        let dir = Path::new(display)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let real_dir = canon
            .as_ref()
            .and_then(|c| c.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| dir.clone());
        let n = self.trees[id].items.len();
        for i in 0..n {
            let ast::Item::Import(lit, _) = &self.trees[id].items[i] else {
                self.order.push((id, i));
                continue;
            };
            let lit = lit.clone();
            let shown = normalize(&dir.join(&lit.value)).display().to_string();
            let target = real_dir.join(&lit.value);
            let read = std::fs::canonicalize(&target).and_then(|c| {
                if c.is_dir() {
                    Err(std::io::Error::other("it is a folder"))
                } else {
                    Ok(c)
                }
            });
            let c = match read {
                Ok(c) => c,
                Err(e) => {
                    self.blocked = true;
                    let d = Diagnostic::error()
                        .with_code("import-missing")
                        .with_message(format!("cannot import `{}`: {}", lit.value, io_message(&e)))
                        .with_labels(vec![Label::primary(id, lit.span.range())
                            .with_message(format!("looked for `{shown}`"))])
                        .with_notes(vec![
                            "hint: imports are relative to the folder of the importing file".into(),
                        ]);
                    self.diagnostics.push(d);
                    continue;
                }
            };
            if let Some(pos) = self.stack.iter().position(|(p, _)| *p == c) {
                let mut chain: Vec<&str> =
                    self.stack[pos..].iter().map(|(_, d)| d.as_str()).collect();
                chain.push(&self.stack[pos].1);
                let d = Diagnostic::error()
                    .with_code("import-cycle")
                    .with_message(format!("import cycle: {}", chain.join(" -> ")))
                    .with_labels(vec![Label::primary(id, lit.span.range())
                        .with_message("this import closes the cycle")])
                    .with_notes(vec![
                        "hint: move what both files need into a third file that imports nothing"
                            .into(),
                    ]);
                self.diagnostics.push(d);
                continue;
            }
            if self.done.contains(&c) {
                continue; // diamond: already loaded
            }
            self.done.insert(c.clone());
            let text = match crate::util::read_file_capped(&c).map(String::from_utf8) {
                Ok(Ok(t)) => t,
                Ok(Err(_)) => {
                    self.blocked = true;
                    self.diagnostics.push(
                        Diagnostic::error()
                            .with_code("import-missing")
                            .with_message(format!(
                                "cannot import `{}`: it is not UTF-8 text",
                                lit.value
                            ))
                            .with_labels(vec![Label::primary(id, lit.span.range())]),
                    );
                    continue;
                }
                Err(e) => {
                    self.blocked = true;
                    self.diagnostics.push(
                        Diagnostic::error()
                            .with_code("import-missing")
                            .with_message(format!(
                                "cannot import `{}`: {}",
                                lit.value,
                                io_message(&e)
                            ))
                            .with_labels(vec![Label::primary(id, lit.span.range())]),
                    );
                    continue;
                }
            };
            let child = self.add(&shown, text);
            self.visit(child, &shown, Some(c));
        }
        if canon.is_some() {
            self.stack.pop();
        }
    }
}

/// `a/b/../c` as `a/c`, lexically (for display only: identity uses canonical paths).
fn normalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component<'_>> = Vec::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.last(), Some(Component::Normal(_))) => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.iter().collect()
}

fn check_root(display: &str, text: String, canon: Option<PathBuf>) -> Outcome {
    let mut l = Loader {
        files: SimpleFiles::new(),
        sources: Vec::new(),
        diagnostics: Vec::new(),
        trees: Vec::new(),
        order: Vec::new(),
        stack: Vec::new(),
        done: BTreeSet::new(),
        blocked: false,
    };
    if let Some(c) = &canon {
        l.done.insert(c.clone());
    }
    let id = l.add(display, text);
    l.visit(id, display, canon);
    let program = if l.blocked {
        None
    } else {
        let items: Vec<(usize, &ast::Item)> = l
            .order
            .iter()
            .map(|&(f, i)| (f, &l.trees[f].items[i]))
            .collect();
        let mut checker = check::Checker::new(&l.sources);
        let p = checker.program(&items);
        l.diagnostics.extend(checker.diags);
        l.diagnostics.extend(checker.warnings);
        p
    };
    let clean = l.diagnostics.iter().all(|d| d.severity < Severity::Error);
    Outcome {
        files: l.files,
        sources: l.sources,
        diagnostics: l.diagnostics,
        program: program.filter(|_| clean),
    }
}

/// Print a program as canonical `.dosa` source that [`load_path`] reads back to the same IR.
pub fn program_to_source(program: &Program) -> String {
    fmt::format_file(&print::program_def(program), "", &[])
}

/// The result of formatting one source text.
pub enum Formatted {
    /// The canonical text.
    Ok(String),
    /// The text does not parse; the rendered diagnostics.
    Err(String),
}

/// Format raw bytes (text that is not UTF-8 is reported like any other error).
pub fn format_bytes(name: &str, bytes: Vec<u8>) -> Formatted {
    match String::from_utf8(bytes) {
        Ok(text) => format_source(name, &text),
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            Formatted::Err(not_utf8(name, text, valid).render())
        }
    }
}

/// Format `.dosa` source canonically, keeping comments (imports are not followed).
pub fn format_source(name: &str, text: &str) -> Formatted {
    let text = &*normalize_text(text);
    let parsed = parse::parse(text, 0);
    if !parsed.is_clean() {
        let mut files = SimpleFiles::new();
        files.add(name.to_string(), text.to_string());
        let o = Outcome {
            files,
            sources: vec![text.to_string()],
            diagnostics: parsed.diagnostics,
            program: None,
        };
        return Formatted::Err(o.render());
    }
    Formatted::Ok(fmt::format_file(&parsed.file, text, &parsed.comments))
}

/// Parse source text into its syntax tree (`None` if it has syntax errors); spans are ignored by
/// the tree's equality, so this is what "parse(fmt(x)) == parse(x)" compares.
pub fn parse_tree(text: &str) -> Option<ast::File> {
    let p = parse::parse(&normalize_text(text), 0);
    p.is_clean().then_some(p.file)
}
