//! Mappings: per-level tile factors and loop orders, and Timeloop's compact text form.

use super::{Dim, TensorSet};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The factors and loop order one storage level holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LevelMapping {
    /// Tensors the compact form says this level keeps (checked against the architecture).
    pub keeps: TensorSet,
    /// Temporal factor per dim, canonical order.
    pub temporal: [u64; 7],
    /// Spatial factor per dim, canonical order (1 where not spatial).
    pub spatial: [u64; 7],
    /// All seven dims, outermost loop first. Dims with a factor > 1 come first in the order
    /// written; the rest follow in canonical order, so equal mappings compare equal.
    pub order: Vec<Dim>,
}

impl LevelMapping {
    /// A level with every factor 1 (what an unlisted level means).
    pub fn unit(keeps: TensorSet) -> LevelMapping {
        LevelMapping {
            keeps,
            temporal: [1; 7],
            spatial: [1; 7],
            order: Dim::ALL.to_vec(),
        }
    }

    /// The loops that iterate here (factor above 1), outermost first.
    pub fn active_loops(&self) -> Vec<Dim> {
        self.order
            .iter()
            .copied()
            .filter(|d| self.temporal[d.index()] > 1)
            .collect()
    }

    /// Put `order` into the normal form documented on [`LevelMapping::order`].
    pub fn normalize_order(&mut self) {
        let mut out: Vec<Dim> = self.active_loops();
        for d in Dim::ALL {
            if !out.contains(&d) {
                out.push(d);
            }
        }
        self.order = out;
    }
}

/// A complete mapping of one layer: one [`LevelMapping`] per architecture level, innermost first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mapping {
    pub levels: Vec<LevelMapping>,
    /// Per dim: its outermost factor counts tiles with the last one partial (written `K5+`), so
    /// the factors cover the dim (`ceil`) instead of dividing it. See `model::pieces`.
    #[serde(default, skip_serializing_if = "none_partial")]
    pub partial: [bool; 7],
}

fn none_partial(p: &[bool; 7]) -> bool {
    !p.iter().any(|&b| b)
}

impl Mapping {
    /// An exact mapping (every dim divided by its factors) from its levels.
    pub fn new(levels: Vec<LevelMapping>) -> Mapping {
        Mapping {
            levels,
            partial: [false; 7],
        }
    }

    /// Whether any dim has a partial last tile.
    pub fn has_partial(&self) -> bool {
        !none_partial(&self.partial)
    }

    /// The outermost factor > 1 of `d` in tile order, where the lanes of every spatial factor
    /// fill before any temporal loop (as an array does): the highest-level temporal factor, else
    /// the highest-level spatial one. `(level, spatial, factor)`; `None` when `d` is unsplit.
    /// A partial last tile is counted by this factor.
    pub fn outermost(&self, d: Dim) -> Option<(usize, bool, u64)> {
        let top = |spatial: bool| {
            self.levels.iter().enumerate().rev().find_map(|(k, l)| {
                let f = if spatial {
                    l.spatial[d.index()]
                } else {
                    l.temporal[d.index()]
                };
                (f > 1).then_some((k, spatial, f))
            })
        };
        top(false).or_else(|| top(true))
    }

    /// Product of all temporal and spatial factors of `d` (must equal the layer's size).
    pub fn dim_product(&self, d: Dim) -> u128 {
        self.levels
            .iter()
            .map(|l| l.temporal[d.index()] as u128 * l.spatial[d.index()] as u128)
            .product()
    }

    /// Spatial factor of `d` over all levels (the PE array must cover it).
    pub fn spatial(&self, d: Dim) -> u64 {
        self.levels.iter().map(|l| l.spatial[d.index()]).product()
    }
}

/// Why a compact mapping string could not be read; `at` is a byte offset into the string.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct MappingParseError {
    pub at: usize,
    pub len: usize,
    pub message: String,
}

fn err(at: usize, len: usize, message: impl Into<String>) -> MappingParseError {
    MappingParseError {
        at,
        len,
        message: message.into(),
    }
}

/// Parse Timeloop's compact form `L3[WIO] K8 Q28 - L2[WI] N1 K4X - L1[O] ... - L0[W] P16`.
///
/// Levels are written outermost first and named `L<k>`; every level 0..=max must appear once.
/// The result is innermost first. Factors are not checked against a layer here.
pub fn parse_compact(text: &str) -> Result<Mapping, MappingParseError> {
    // Tokenise into (offset, word) pairs, keeping ` - ` separators as "-".
    let mut words: Vec<(usize, &str)> = Vec::new();
    let mut start = None;
    for (i, ch) in text.char_indices() {
        if ch.is_whitespace() {
            if let Some(s) = start.take() {
                words.push((s, &text[s..i]));
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        words.push((s, &text[s..]));
    }
    if words.is_empty() {
        return Err(err(0, text.len(), "empty mapping"));
    }
    let mut levels: Vec<(usize, usize, LevelMapping)> = Vec::new(); // (index, offset, mapping)
    let mut cur: Option<(usize, usize, LevelMapping, Vec<Dim>)> = None;
    let finish = |c: Option<(usize, usize, LevelMapping, Vec<Dim>)>,
                  levels: &mut Vec<(usize, usize, LevelMapping)>| {
        if let Some((k, off, mut lm, order)) = c {
            lm.order = order;
            lm.normalize_order();
            levels.push((k, off, lm));
        }
    };
    let mut partial = [false; 7];
    let mut expect_level = true;
    for (off, w) in words {
        if w == "-" {
            if cur.is_none() || expect_level {
                return Err(err(off, 1, "`-` must separate two levels"));
            }
            finish(cur.take(), &mut levels);
            expect_level = true;
            continue;
        }
        if expect_level {
            // L<k>[TENSORS]
            let bytes = w.as_bytes();
            if bytes.first() != Some(&b'L') {
                return Err(err(
                    off,
                    w.len(),
                    format!("expected a level like `L2[WI]`, found `{w}`"),
                ));
            }
            let open = w
                .find('[')
                .ok_or_else(|| err(off, w.len(), "a level needs its tensors, like `L2[WI]`"))?;
            if !w.ends_with(']') {
                return Err(err(off, w.len(), "missing `]` after the level's tensors"));
            }
            let k: usize = w[1..open].parse().map_err(|_| {
                err(
                    off,
                    open,
                    format!("`{}` is not a level number", &w[1..open]),
                )
            })?;
            let mut keeps = TensorSet::default();
            for (j, c) in w[open + 1..w.len() - 1].char_indices() {
                let t = super::Tensor::from_letter(c).ok_or_else(|| {
                    err(
                        off + open + 1 + j,
                        1,
                        format!("unknown tensor `{c}` (expected W, I or O)"),
                    )
                })?;
                keeps = keeps.with(t);
            }
            if levels.iter().any(|(k2, _, _)| *k2 == k) {
                return Err(err(off, w.len(), format!("level L{k} appears twice")));
            }
            cur = Some((k, off, LevelMapping::unit(keeps), Vec::new()));
            expect_level = false;
            continue;
        }
        // A factor word: <dim><number>[X]
        let (k_cur, _, lm, order) = cur.as_mut().expect("a level is open here");
        let _ = k_cur;
        let mut chars = w.chars();
        let dch = chars.next().unwrap_or(' ');
        let d = Dim::from_letter(dch).ok_or_else(|| {
            err(
                off,
                dch.len_utf8(),
                format!("unknown dim `{dch}` (expected one of R S P Q C K N)"),
            )
        })?;
        let spatial = w.ends_with('X') || w.ends_with('x');
        let plus = !spatial && w.ends_with('+');
        let digits = &w[1..w.len() - usize::from(spatial || plus)];
        let f: u64 = digits.parse().map_err(|_| {
            err(
                off,
                w.len(),
                format!("`{w}` is not a factor (expected a dim, a number and an optional X or +)"),
            )
        })?;
        if f == 0 {
            return Err(err(off, w.len(), "a factor must be at least 1"));
        }
        let slot = if spatial {
            &mut lm.spatial[d.index()]
        } else {
            &mut lm.temporal[d.index()]
        };
        if *slot != 1 || (!spatial && order.contains(&d) && f != 1) {
            return Err(err(
                off,
                w.len(),
                format!("dim {d} is given twice at this level"),
            ));
        }
        *slot = f;
        if !spatial && !order.contains(&d) {
            order.push(d);
        }
        if plus {
            // Levels come outermost first, so an outer temporal factor of `d` was read already
            // (spatial ones are inside every temporal loop in tile order).
            let outer = levels.iter().any(|(_, _, l)| l.temporal[d.index()] > 1);
            if f < 2 || outer {
                return Err(err(
                    off,
                    w.len(),
                    format!(
                        "only the outermost temporal factor of {d}, at least 2, can count tiles with a partial last one (`{d}{f}+`)"
                    ),
                ));
            }
            partial[d.index()] = true;
        }
    }
    if expect_level {
        return Err(err(
            text.len(),
            0,
            "the mapping ends after `-`; a level is missing",
        ));
    }
    finish(cur.take(), &mut levels);
    levels.sort_by_key(|(k, _, _)| *k);
    for (i, (k, off, _)) in levels.iter().enumerate() {
        if *k != i {
            return Err(err(
                *off,
                2,
                format!(
                    "level L{i} is missing (levels must be L0..L{})",
                    levels.len() - 1
                ),
            ));
        }
    }
    Ok(Mapping {
        levels: levels.into_iter().map(|(_, _, l)| l).collect(),
        partial,
    })
}

impl fmt::Display for Mapping {
    /// The compact form, outermost level first; `N1` stands for a level with no temporal loop.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (k, lm) in self.levels.iter().enumerate().rev() {
            if k + 1 != self.levels.len() {
                write!(f, " - ")?;
            }
            write!(f, "L{k}[{}]", lm.keeps.letters())?;
            let mut any = false;
            for d in &lm.order {
                let t = lm.temporal[d.index()];
                if t > 1 {
                    let plus = self.partial[d.index()] && self.outermost(*d) == Some((k, false, t));
                    write!(f, " {d}{t}{}", if plus { "+" } else { "" })?;
                    any = true;
                }
            }
            if !any {
                write!(f, " N1")?;
            }
            for d in Dim::ALL {
                let s = lm.spatial[d.index()];
                if s > 1 {
                    write!(f, " {d}{s}X")?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_model_md_example() {
        let m =
            parse_compact("L3[WIO] K8 Q28 - L2[WI] N1 K4X - L1[O] K2 S7 R7 Q4 P7 C3X - L0[W] P16")
                .unwrap();
        assert_eq!(m.levels.len(), 4);
        assert_eq!(m.dim_product(Dim::P), 112);
        assert_eq!(m.dim_product(Dim::Q), 112);
        assert_eq!(m.dim_product(Dim::K), 64);
        assert_eq!(m.dim_product(Dim::C), 3);
        assert_eq!(m.spatial(Dim::K), 4);
        assert_eq!(
            m.levels[1].order[..5],
            [Dim::K, Dim::S, Dim::R, Dim::Q, Dim::P]
        );
        assert_eq!(
            m.to_string(),
            "L3[WIO] K8 Q28 - L2[WI] N1 K4X - L1[O] K2 S7 R7 Q4 P7 C3X - L0[W] P16"
        );
    }

    #[test]
    fn rejects_bad_words_with_offsets() {
        let e = parse_compact("L1[O] Z3 - L0[W] N1").unwrap_err();
        assert_eq!(e.at, 6);
        assert!(parse_compact("L1[O] K2 -").is_err());
        assert!(parse_compact("L2[O] K2 - L0[W] N1")
            .unwrap_err()
            .message
            .contains("L1"));
        assert!(parse_compact("L0[W] K0").is_err());
    }
}
