//! The two Gemmini C interfaces a program can be emitted for, and what the research one cannot
//! run correctly.
//!
//! The DOSA branch of `gemmini-rocc-tests` walks the tiles in the order of a loop-order string
//! (`perm`), but it keeps a single output tile in the accumulator: a tile's partial sums are
//! started (bias) when all of its reduction loops are at 0 and moved out when all of them are at
//! their last step. If any output loop (N, Q, P, K) advances between two reduction steps (C, R,
//! S) of a tile, the next tile's partial sums land on the same accumulator rows and the first
//! tile's are lost: the program silently computes wrong results (seen on Gemmini's functional
//! model). [`dosa_order_problem`] is that rule, shared by the emitter (which refuses such a
//! mapping) and any search that wants to stay within what the branch runs.

use crate::ir::{Dim, LevelMapping, Mapping};

/// Which Gemmini C interface the program calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// Upstream `gemmini-rocc-tests` (`dev`): Gemmini's fixed loop order.
    Upstream,
    /// The DOSA research branch: `tiled_conv`/`tiled_matmul` take a loop-order string.
    Dosa,
}

/// The reduction dims: a DRAM loop over one of them revisits the same output tile.
const REDUCTION: [Dim; 3] = [Dim::C, Dim::R, Dim::S];

/// Why the DOSA branch would compute a wrong result for `mapping`'s DRAM loop order, if it
/// would: some reduction loop (C, R or S) that iterates at the DRAM level sits outside an output
/// loop (N, Q, P or K) that also iterates there. `None` when every iterating reduction loop is
/// inside every iterating output loop (the order is then safe whatever the tiles).
///
/// The test uses the mapping's DRAM factors; a factor above 1 can still give a single library
/// iteration for a matmul (its tiles are rounded to whole DIM blocks), so the rule may refuse an
/// order the library would happen to run correctly, never the reverse.
pub fn dosa_order_problem(mapping: &Mapping) -> Option<String> {
    dosa_order_problem_at(mapping.levels.last()?)
}

/// [`dosa_order_problem`] for the backing level's loops.
pub fn dosa_order_problem_at(top: &LevelMapping) -> Option<String> {
    // Outermost first, only loops that iterate.
    let active: Vec<Dim> = top.active_loops();
    let outer_reduction = active.iter().position(|d| REDUCTION.contains(d))?;
    let red = active[outer_reduction];
    let inner_output = active[outer_reduction + 1..]
        .iter()
        .find(|d| !REDUCTION.contains(d))?;
    Some(format!(
        "the DOSA branch keeps one output tile in the accumulator, so a split reduction loop must run inside every split output loop; this mapping's DRAM level runs {o}{of} inside {r}{rf} (the partial sums over {r} would be overwritten). Put the reduction loops ({red_list}) innermost at the DRAM level",
        o = inner_output.letter(),
        of = top.temporal[inner_output.index()],
        r = red.letter(),
        rf = top.temporal[red.index()],
        red_list = "C, R, S",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::parse_compact;

    fn problem(m: &str) -> Option<String> {
        dosa_order_problem(&parse_compact(m).unwrap())
    }

    #[test]
    fn reduction_outside_an_output_loop_is_a_problem() {
        // C2 outside P2: the P loop moves on between the two C steps.
        let p = problem("L3[WIO] C2 P2 - L2[WI] K16X - L1[O] K2 P32 C4 C16X - L0[W] N1");
        let p = p.expect("C outside P must be refused");
        assert!(p.contains("P2 inside C2"), "{p}");
        // Kernel rows split outside the output channels: same loss.
        let p = problem("L3[WIO] S3 K2 - L2[WI] K16X - L1[O] R3 Q8 P8 C16X - L0[W] N1").unwrap();
        assert!(p.contains("K2 inside S3"), "{p}");
    }

    #[test]
    fn reductions_innermost_are_fine_in_any_order_among_themselves() {
        assert_eq!(
            problem("L3[WIO] P2 C2 - L2[WI] K16X - L1[O] K2 P32 C4 C16X - L0[W] N1"),
            None
        );
        assert_eq!(
            problem("L3[WIO] K2 C2 S3 - L2[WI] K16X - L1[O] R3 Q8 P8 C8X - L0[W] N1"),
            None
        );
        // Loops of factor 1 do not count, wherever they are written.
        assert_eq!(
            problem("L3[WIO] C1 K2 - L2[WI] K16X - L1[O] S3 R3 Q8 P8 C16X - L0[W] N1"),
            None
        );
        // Nothing split at the DRAM level.
        assert_eq!(
            problem("L3[WIO] N1 - L2[WI] K16X - L1[O] S3 R3 Q8 P8 C16X - L0[W] N1"),
            None
        );
    }
}
