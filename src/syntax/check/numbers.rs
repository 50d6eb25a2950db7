//! Numbers, units and bounds: exact decimals, byte and energy units, `<=` bounds.

use super::*;

impl<'a> Checker<'a> {
    // ---------------------------------------------------------------- numbers and units

    pub(super) fn whole(&mut self, f: usize, n: &Num, what: &str) -> Option<u64> {
        if !n.text.bytes().all(|b| b.is_ascii_digit()) {
            let i = self.error(
                "not-integer",
                f,
                n.span,
                format!("{what} must be a whole number, not `{}`", n.text),
                "",
            );
            self.hint(i, "write digits only, like `64`");
            return None;
        }
        match n.text.parse::<u64>() {
            Ok(v) => Some(v),
            Err(_) => {
                let i = self.error(
                    "overflow",
                    f,
                    n.span,
                    format!("`{}` does not fit in 64 bits", n.text),
                    "too large",
                );
                self.note(i, format!("{what} must be at most {}", u64::MAX));
                None
            }
        }
    }

    pub(super) fn positive(&mut self, f: usize, n: &Num, what: &str) -> Option<u64> {
        let v = self.whole(f, n, what)?;
        if v == 0 {
            self.error(
                "non-positive",
                f,
                n.span,
                format!("{what} must be at least 1"),
                "zero",
            );
            return None;
        }
        Some(v)
    }

    pub(super) fn positive_u32(&mut self, f: usize, n: &Num, what: &str) -> Option<u32> {
        let v = self.positive(f, n, what)?;
        match u32::try_from(v) {
            Ok(v) => Some(v),
            Err(_) => {
                self.error(
                    "overflow",
                    f,
                    n.span,
                    format!("{what} `{}` does not fit in 32 bits", n.text),
                    format!("at most {}", u32::MAX),
                );
                None
            }
        }
    }

    pub(super) fn real(&mut self, f: usize, n: &Num, what: &str) -> Option<f64> {
        match n.text.parse::<f64>() {
            Ok(v) if v.is_finite() => Some(v),
            _ => {
                self.error(
                    "overflow",
                    f,
                    n.span,
                    format!("{what} `{}` is too large", n.text),
                    "not a finite number",
                );
                None
            }
        }
    }

    pub(super) fn positive_real(&mut self, f: usize, n: &Num, what: &str) -> Option<f64> {
        let v = self.real(f, n, what)?;
        if v <= 0.0 {
            self.error(
                "non-positive",
                f,
                n.span,
                format!("{what} must be greater than 0"),
                "zero",
            );
            return None;
        }
        Some(v)
    }

    pub(super) fn unit<'q>(
        &mut self,
        f: usize,
        q: &'q Quantity,
        what: &str,
        units: &str,
        example: &str,
    ) -> Option<&'q Word> {
        match &q.unit {
            Some(u) => Some(u),
            None => {
                let i = self.error(
                    "missing-unit",
                    f,
                    q.span,
                    format!("{what} needs a unit"),
                    format!("write `{example}`"),
                );
                self.note(i, format!("units here: {units}"));
                None
            }
        }
    }

    pub(super) fn unknown_unit(
        &mut self,
        f: usize,
        u: &Word,
        what: &str,
        units: &[&str],
        hint: &str,
    ) {
        let i = self.error(
            "unknown-unit",
            f,
            u.span,
            format!("unknown unit `{}` for {what}", u.text),
            "",
        );
        self.note(i, format!("units here: {}", units.join(", ")));
        let alias = match u.text.as_str() {
            "KB" | "kB" | "kb" | "K" | "k" | "Kb" | "kib" | "KIB" => Some("KiB"),
            "MB" | "mB" | "mb" | "M" | "mib" | "MIB" => Some("MiB"),
            "GB" | "gb" | "G" | "gib" | "GIB" => Some("GiB"),
            "byte" | "bytes" | "b" => Some("B"),
            "pj" | "PJ" => Some("pJ"),
            _ => None,
        }
        .filter(|a| units.contains(a));
        if let Some(a) = alias {
            self.hint(i, format!("did you mean `{a}`?"));
        } else if let Some(s) = suggest(&u.text, units.iter().copied()) {
            self.hint(i, format!("did you mean `{s}`?"));
        } else if !hint.is_empty() {
            self.hint(i, hint);
        }
    }

    /// A size in bytes (`64 KiB`, `1.5 KiB`, `512 B`), exact.
    pub(super) fn bytes(&mut self, f: usize, q: &Quantity, what: &str) -> Option<u64> {
        const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
        let u = self.unit(f, q, what, "B, KiB, MiB, GiB", "64 KiB")?;
        let mult: u64 = match u.text.as_str() {
            "B" => 1,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            _ => {
                self.unknown_unit(f, u, what, &UNITS, "sizes use binary units: 1 KiB = 1024 B");
                return None;
            }
        };
        match exact_scaled(&q.num.text, mult) {
            Ok(0) => {
                self.error(
                    "non-positive",
                    f,
                    q.span,
                    format!("{what} must be at least 1 B"),
                    "zero",
                );
                None
            }
            Ok(v) => Some(v),
            Err(Exact::Fraction) => {
                self.error(
                    "fractional-bytes",
                    f,
                    q.span,
                    format!(
                        "{what} `{} {}` is not a whole number of bytes",
                        q.num.text, u.text
                    ),
                    "",
                );
                None
            }
            Err(Exact::Overflow) => {
                self.error(
                    "overflow",
                    f,
                    q.span,
                    format!("{what} does not fit in 64 bits of bytes"),
                    "too large",
                );
                None
            }
        }
    }

    /// A size in KiB as a real number (search bounds).
    pub(super) fn kib(&mut self, f: usize, q: &Quantity, what: &str) -> Option<f64> {
        const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
        let u = self.unit(f, q, what, "B, KiB, MiB, GiB", "512 KiB")?;
        let scale = match u.text.as_str() {
            "B" => 1.0 / 1024.0,
            "KiB" => 1.0,
            "MiB" => 1024.0,
            "GiB" => 1024.0 * 1024.0,
            _ => {
                self.unknown_unit(f, u, what, &UNITS, "sizes use binary units: 1 KiB = 1024 B");
                return None;
            }
        };
        let v = self.positive_real(f, &q.num, what)? * scale;
        if !v.is_finite() {
            self.error("overflow", f, q.span, format!("{what} is too large"), "");
            return None;
        }
        Some(v)
    }

    /// An energy in pJ.
    pub(super) fn pj(&mut self, f: usize, q: &Quantity, what: &str) -> Option<f64> {
        let u = self.unit(f, q, what, "pJ", "0.5 pJ")?;
        if u.text != "pJ" {
            self.unknown_unit(
                f,
                u,
                what,
                &["pJ"],
                "energies are written in picojoules: `pJ`",
            );
            return None;
        }
        let v = self.real(f, &q.num, what)?;
        if v.abs() > MAX_PJ {
            let i = self.error(
                "overflow",
                f,
                q.span,
                format!("{what} `{} pJ` is too large", q.num.text),
                "beyond 1e100 pJ",
            );
            self.note(i, "the model multiplies energies by access counts (up to about 1e39 for a network) and by latencies; an energy this large makes them overflow to infinity");
            return None;
        }
        Some(v)
    }

    pub(super) fn dim(&mut self, f: usize, w: &Word) -> Option<Dim> {
        let mut chars = w.text.chars();
        if let (Some(c), None) = (chars.next(), chars.next()) {
            if let Some(d) = Dim::from_letter(c) {
                return Some(d);
            }
        }
        let i = self.error(
            "unknown-dim",
            f,
            w.span,
            format!("unknown dim `{}`", w.text),
            "not a dim",
        );
        self.note(i, DIM_HINT);
        None
    }

    pub(super) fn tensor(&mut self, f: usize, w: &Word) -> Option<Tensor> {
        let mut chars = w.text.chars();
        if let (Some(c), None) = (chars.next(), chars.next()) {
            if let Some(t) = Tensor::from_letter(c) {
                return Some(t);
            }
        }
        let i = self.error(
            "unknown-tensor",
            f,
            w.span,
            format!("unknown tensor `{}`", w.text),
            "",
        );
        self.note(i, "tensors are W (weights), I (inputs) and O (outputs)");
        None
    }

    pub(super) fn choice<T: Copy>(
        &mut self,
        f: usize,
        w: &Word,
        what: &str,
        options: &[(&str, T)],
    ) -> Option<T> {
        if let Some((_, v)) = options.iter().find(|(n, _)| *n == w.text) {
            return Some(*v);
        }
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        let i = self.error(
            "unknown-value",
            f,
            w.span,
            format!("unknown {what} `{}`", w.text),
            "",
        );
        self.note(i, format!("expected one of: {}", names.join(", ")));
        if let Some(s) = suggest(&w.text, names.iter().copied()) {
            self.hint(i, format!("did you mean `{s}`?"));
        }
        None
    }

    /// Report a statement given twice in one block; returns whether it was a repeat.
    pub(super) fn repeated(
        &mut self,
        seen: &mut BTreeMap<&'static str, Span>,
        key: &'static str,
        f: usize,
        span: Span,
    ) -> bool {
        if let Some(first) = seen.get(key).copied() {
            let i = self.error(
                "duplicate",
                f,
                span,
                format!("`{key}` is given twice"),
                "given again here",
            );
            self.secondary(i, f, first, "first given here");
            return true;
        }
        seen.insert(key, span);
        false
    }
}

/// Why a decimal could not be turned into an exact integer.
#[derive(Debug, PartialEq, Eq)]
pub enum Exact {
    Fraction,
    Overflow,
}

/// `text * mult` exactly, for a decimal `text` like `1.5` or `2e3`; errors if not whole.
pub fn exact_scaled(text: &str, mult: u64) -> Result<u64, Exact> {
    let (mant, exp) = match text.find(['e', 'E']) {
        Some(i) => (
            &text[..i],
            text[i + 1..].parse::<i64>().map_err(|_| Exact::Overflow)?,
        ),
        None => (text, 0),
    };
    let (ip, fp) = mant.split_once('.').unwrap_or((mant, ""));
    let digits = format!("{ip}{fp}");
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Ok(0);
    }
    if digits.len() > 30 {
        return Err(Exact::Overflow);
    }
    let m: u128 = digits.parse().map_err(|_| Exact::Overflow)?;
    let mut v = m.checked_mul(mult as u128).ok_or(Exact::Overflow)?;
    let scale = fp.len() as i64 - exp;
    if scale > 0 {
        match u32::try_from(scale)
            .ok()
            .and_then(|s| 10u128.checked_pow(s))
        {
            Some(d) if v % d == 0 => v /= d,
            _ => return Err(Exact::Fraction),
        }
    } else if scale < 0 {
        let p = u32::try_from(-scale)
            .ok()
            .and_then(|s| 10u128.checked_pow(s))
            .ok_or(Exact::Overflow)?;
        v = v.checked_mul(p).ok_or(Exact::Overflow)?;
    }
    u64::try_from(v).map_err(|_| Exact::Overflow)
}

pub(super) fn bound_text(b: Bound) -> String {
    match b {
        Bound::Fixed(v) => format!("{v}x{v}"),
        Bound::AtMost(v) => format!("<= {v}"),
        Bound::Free => "free".into(),
    }
}
