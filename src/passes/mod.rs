//! The pass pipeline of the one-loop search: relax, optimise, round, order, derive hardware.

pub mod legal;
pub mod random;
pub mod round;
