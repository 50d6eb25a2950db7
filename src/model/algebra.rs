//! The scalar algebra the cost rules are written over.
//!
//! The rules in [`super::rules`] are written once, generically over an [`Algebra`]. Evaluated with
//! [`F64`] they are the exact evaluator; evaluated with the tracing algebra of [`super::expr`] they
//! record a symbolic expression that egg simplifies and [`super::tape`] compiles for value and
//! gradient. One source of truth, so the two agree wherever the loop structure agrees.

/// Arithmetic over some scalar type `S`; explicit methods instead of operator overloading so that a
/// tracing scalar needs no hidden global state.
pub trait Algebra {
    /// The scalar: `f64`, a node id, a dual number.
    type S: Copy;
    /// A constant.
    fn lit(&self, v: f64) -> Self::S;
    fn add(&self, a: Self::S, b: Self::S) -> Self::S;
    fn sub(&self, a: Self::S, b: Self::S) -> Self::S;
    fn mul(&self, a: Self::S, b: Self::S) -> Self::S;
    fn div(&self, a: Self::S, b: Self::S) -> Self::S;
    fn min(&self, a: Self::S, b: Self::S) -> Self::S;
    fn max(&self, a: Self::S, b: Self::S) -> Self::S;
    fn exp(&self, a: Self::S) -> Self::S;
    fn ln(&self, a: Self::S) -> Self::S;

    /// Product of the items, `None` for an empty product (callers decide what 1 means).
    fn prod_opt(&self, items: impl IntoIterator<Item = Self::S>) -> Option<Self::S> {
        items.into_iter().reduce(|a, b| self.mul(a, b))
    }
    /// Product of the items, 1 if there are none.
    fn prod(&self, items: impl IntoIterator<Item = Self::S>) -> Self::S {
        self.prod_opt(items).unwrap_or_else(|| self.lit(1.0))
    }
    /// Sum of the items, `None` if there are none.
    fn sum_opt(&self, items: impl IntoIterator<Item = Self::S>) -> Option<Self::S> {
        items.into_iter().reduce(|a, b| self.add(a, b))
    }
    /// Sum of the items, 0 if there are none.
    fn sum(&self, items: impl IntoIterator<Item = Self::S>) -> Self::S {
        self.sum_opt(items).unwrap_or_else(|| self.lit(0.0))
    }
    /// Largest of the items (hard max), `None` if there are none.
    fn max_opt(&self, items: impl IntoIterator<Item = Self::S>) -> Option<Self::S> {
        items.into_iter().reduce(|a, b| self.max(a, b))
    }
}

/// Plain `f64` arithmetic: the exact evaluator.
#[derive(Clone, Copy, Debug, Default)]
pub struct F64;

impl Algebra for F64 {
    type S = f64;
    #[inline]
    fn lit(&self, v: f64) -> f64 {
        v
    }
    #[inline]
    fn add(&self, a: f64, b: f64) -> f64 {
        a + b
    }
    #[inline]
    fn sub(&self, a: f64, b: f64) -> f64 {
        a - b
    }
    #[inline]
    fn mul(&self, a: f64, b: f64) -> f64 {
        a * b
    }
    #[inline]
    fn div(&self, a: f64, b: f64) -> f64 {
        a / b
    }
    #[inline]
    fn min(&self, a: f64, b: f64) -> f64 {
        a.min(b)
    }
    #[inline]
    fn max(&self, a: f64, b: f64) -> f64 {
        a.max(b)
    }
    #[inline]
    fn exp(&self, a: f64) -> f64 {
        a.exp()
    }
    #[inline]
    fn ln(&self, a: f64) -> f64 {
        a.ln()
    }
}
