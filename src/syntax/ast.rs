//! The syntax tree of one `.dosa` file: what the parser builds, the checker lowers and the
//! formatter prints. Every node keeps its byte span so diagnostics can point at it.
//!
//! Spans never take part in equality: two trees compare equal when they say the same thing,
//! which is what "parse(fmt(x)) == parse(x)" means.

use std::fmt;

/// A byte range in one source file.
#[derive(Clone, Copy, Default)]
pub struct Span {
    pub lo: usize,
    pub hi: usize,
}

impl Span {
    /// A span from `lo` to `hi` (byte offsets).
    pub fn new(lo: usize, hi: usize) -> Span {
        Span { lo, hi }
    }
    /// As a range, for codespan labels.
    pub fn range(self) -> std::ops::Range<usize> {
        self.lo..self.hi
    }
}

impl PartialEq for Span {
    /// Spans are positions, not content: trees compare by what they say.
    fn eq(&self, _: &Span) -> bool {
        true
    }
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.lo, self.hi)
    }
}

/// A name: an identifier, or any text in double quotes (layer names like `_outputs_input.80`).
#[derive(Clone, Debug, PartialEq)]
pub struct Name {
    /// The name itself, with escapes decoded.
    pub text: String,
    pub span: Span,
}

/// A bare word the checker interprets: a dim, a tensor, a unit, an enum value like `edp`.
#[derive(Clone, Debug, PartialEq)]
pub struct Word {
    pub text: String,
    pub span: Span,
}

/// A number exactly as written (`64`, `0.5608`, `1e-3`); the checker converts it.
#[derive(Clone, Debug, PartialEq)]
pub struct Num {
    pub text: String,
    pub span: Span,
}

/// A string literal: decoded value plus its span (quotes included) for sub-span diagnostics.
#[derive(Clone, Debug, PartialEq)]
pub struct StrLit {
    pub value: String,
    pub span: Span,
}

/// A number with an optional unit word after it (`64 KiB`, `8 bits`, `0.5608 pJ`).
#[derive(Clone, Debug, PartialEq)]
pub struct Quantity {
    pub num: Num,
    pub unit: Option<Word>,
    pub span: Span,
}

/// One top-level item of a file.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Import(StrLit, Span),
    Arch(ArchDef),
    Network(NetworkDef),
    Map(MapDef),
    Search(SearchDef),
    /// Something the parser could not read (already reported).
    Error(Span),
}

impl Item {
    /// The whole item, for diagnostics and the formatter.
    pub fn span(&self) -> Span {
        match self {
            Item::Import(_, s) | Item::Error(s) => *s,
            Item::Arch(a) => a.span,
            Item::Network(n) => n.span,
            Item::Map(m) => m.span,
            Item::Search(s) => s.span,
        }
    }
}

/// `arch NAME { ... }`.
#[derive(Clone, Debug, PartialEq)]
pub struct ArchDef {
    pub name: Name,
    pub stmts: Vec<ArchStmt>,
    pub span: Span,
}

/// The PE array: `16x16`, `16`, `<= 16` or `free`.
#[derive(Clone, Debug, PartialEq)]
pub enum PeSpec {
    Grid(Num, Num),
    Fixed(Num),
    AtMost(Num),
    Free(Span),
}

/// A statement in an `arch` block.
#[derive(Clone, Debug, PartialEq)]
pub enum ArchStmt {
    Pe(PeSpec, Span),
    PeMin(Num, Span),
    MacEnergy(Quantity, Span),
    Level(LevelDef),
    Error(Span),
}

impl ArchStmt {
    /// The whole statement.
    pub fn span(&self) -> Span {
        match self {
            ArchStmt::Pe(_, s)
            | ArchStmt::PeMin(_, s)
            | ArchStmt::MacEnergy(_, s)
            | ArchStmt::Error(s) => *s,
            ArchStmt::Level(l) => l.span,
        }
    }
}

/// `level NAME { ... }`.
#[derive(Clone, Debug, PartialEq)]
pub struct LevelDef {
    pub name: Name,
    pub stmts: Vec<LevelStmt>,
    pub span: Span,
}

/// Whether a capacity is per instance or summed over all instances.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Each,
    Total,
}

/// `64 KiB`, `<= 64 KiB` or `free`.
#[derive(Clone, Debug, PartialEq)]
pub enum BoundSpec {
    Fixed(Quantity),
    AtMost(Quantity),
    Free(Span),
}

/// Words per cycle: `8`, `2 * pe`, `2 * spatial K`, or a word such as `unlimited`.
#[derive(Clone, Debug, PartialEq)]
pub enum BwSpec {
    Words(Num),
    PerPe(Option<Num>),
    PerSpatial(Option<Num>, Word),
    Named(Word),
}

/// Energy per access: `sram`/`dram`, `100 pJ`, or `1.9 pJ + 0.1 pJ/KiB`.
#[derive(Clone, Debug, PartialEq)]
pub enum EnergySpec {
    Named(Word),
    Const(Quantity),
    Linear(Quantity, Quantity, Word),
}

/// A dim that may be spatial at a level, with an optional bound (`C <= 16`).
#[derive(Clone, Debug, PartialEq)]
pub struct SpatialItem {
    pub dim: Word,
    pub max: Option<Num>,
    pub span: Span,
}

/// A statement in a `level` block.
#[derive(Clone, Debug, PartialEq)]
pub enum LevelStmt {
    Keeps(Vec<Word>, Span),
    Word(Quantity, Span),
    Capacity(BoundSpec, Option<(Scope, Span)>, Span),
    DoubleBuffered(Span),
    Instances(Word, Span),
    Bandwidth(BwSpec, Span),
    Energy(EnergySpec, Span),
    Spatial(Vec<SpatialItem>, Span),
    Temporal(Vec<Word>, Span),
    Backing(Span),
    Error(Span),
}

impl LevelStmt {
    /// The whole statement.
    pub fn span(&self) -> Span {
        match self {
            LevelStmt::Keeps(_, s)
            | LevelStmt::Word(_, s)
            | LevelStmt::Capacity(_, _, s)
            | LevelStmt::DoubleBuffered(s)
            | LevelStmt::Instances(_, s)
            | LevelStmt::Bandwidth(_, s)
            | LevelStmt::Energy(_, s)
            | LevelStmt::Spatial(_, s)
            | LevelStmt::Temporal(_, s)
            | LevelStmt::Backing(s)
            | LevelStmt::Error(s) => *s,
        }
    }

    /// The keyword that starts the statement (for "given twice" diagnostics).
    pub fn keyword(&self) -> &'static str {
        match self {
            LevelStmt::Keeps(..) => "keeps",
            LevelStmt::Word(..) => "word",
            LevelStmt::Capacity(..) => "capacity",
            LevelStmt::DoubleBuffered(..) => "double_buffered",
            LevelStmt::Instances(..) => "instances",
            LevelStmt::Bandwidth(..) => "bandwidth",
            LevelStmt::Energy(..) => "energy",
            LevelStmt::Spatial(..) => "spatial",
            LevelStmt::Temporal(..) => "temporal",
            LevelStmt::Backing(..) => "backing",
            LevelStmt::Error(..) => "",
        }
    }
}

/// `network NAME { conv ... matmul ... }`.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkDef {
    pub name: Name,
    pub layers: Vec<LayerDef>,
    pub span: Span,
}

/// Convolution or matrix multiply, as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerKw {
    Conv,
    Matmul,
}

/// `KEY=VALUE` in a layer (`P=112`, `stride=2`, `count=3`).
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    pub key: Word,
    pub value: Num,
    pub span: Span,
}

/// `conv NAME PARAM*` or `matmul NAME PARAM*`; `Error` for an unreadable line.
#[derive(Clone, Debug, PartialEq)]
pub enum LayerDef {
    Layer {
        kind: LayerKw,
        name: Name,
        params: Vec<Param>,
        span: Span,
    },
    Error(Span),
}

impl LayerDef {
    /// The whole line.
    pub fn span(&self) -> Span {
        match self {
            LayerDef::Layer { span, .. } | LayerDef::Error(span) => *span,
        }
    }
}

/// `map NETWORK.LAYER "compact mapping"` (the network may be left out when the layer is unique).
#[derive(Clone, Debug, PartialEq)]
pub struct MapDef {
    pub network: Option<Name>,
    pub layer: Name,
    pub mapping: MapSpec,
    pub span: Span,
}

/// What a `map` statement gives a layer: a mapping in the compact form, or a bare word the
/// checker interprets (`auto`: Gemmini's own tiler picks the tiles, as `tiled_conv_auto` does).
#[derive(Clone, Debug, PartialEq)]
pub enum MapSpec {
    Compact(StrLit),
    Word(Word),
}

impl MapSpec {
    /// The whole mapping as written, for diagnostics.
    pub fn span(&self) -> Span {
        match self {
            MapSpec::Compact(s) => s.span,
            MapSpec::Word(w) => w.span,
        }
    }
}

/// `search { ... }`.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchDef {
    pub stmts: Vec<SearchStmt>,
    pub span: Span,
}

/// Which search setting a statement sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SearchKey {
    Objective,
    Starts,
    Steps,
    RoundEvery,
    Lr,
    Seed,
    MaxPe,
    MaxScratchpad,
    MaxAccumulator,
    Hardware,
    Mapspace,
    Predictor,
    Model,
}

impl SearchKey {
    /// The keyword as written.
    pub fn keyword(self) -> &'static str {
        match self {
            SearchKey::Objective => "objective",
            SearchKey::Starts => "starts",
            SearchKey::Steps => "steps",
            SearchKey::RoundEvery => "round_every",
            SearchKey::Lr => "lr",
            SearchKey::Seed => "seed",
            SearchKey::MaxPe => "max_pe",
            SearchKey::MaxScratchpad => "max_scratchpad",
            SearchKey::MaxAccumulator => "max_accumulator",
            SearchKey::Hardware => "hardware",
            SearchKey::Mapspace => "mapspace",
            SearchKey::Predictor => "predictor",
            SearchKey::Model => "model",
        }
    }
}

/// The value of a search setting.
#[derive(Clone, Debug, PartialEq)]
pub enum SearchVal {
    Word(Word),
    Num(Num),
    Quantity(Quantity),
    Str(StrLit),
}

/// A statement in a `search` block.
#[derive(Clone, Debug, PartialEq)]
pub enum SearchStmt {
    Set(SearchKey, SearchVal, Span),
    Error(Span),
}

impl SearchStmt {
    /// The whole statement.
    pub fn span(&self) -> Span {
        match self {
            SearchStmt::Set(_, _, s) | SearchStmt::Error(s) => *s,
        }
    }
}

/// A whole file: its items in order.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct File {
    pub items: Vec<Item>,
}
