//! The exact evaluator against the Timeloop reference data (MODEL.md: the data is ground truth).

use dosa::ir::gemmini_arch;
use dosa::model::exact::{evaluate_layer, EvalOptions};
use dosa::model::stats::error_stats;
use dosa::model::timeloop::read_csv;

#[test]
fn reproduces_timeloop_on_the_reference_sample() {
    let Some(shared) = dosa::util::shared_dir() else {
        eprintln!("shared data not found; skipping");
        return;
    };
    let arch = gemmini_arch();
    let path = shared.join("data/timeloop/gemmini_timeloop_sample.csv");
    let (rows, skipped) = read_csv(&path, &arch).expect("readable CSV");
    assert!(skipped.is_empty(), "{skipped:?}");
    assert_eq!(rows.len(), 8727);
    let opts = EvalOptions::timeloop(&arch);
    let (mut pl, mut tl, mut pe, mut te, mut pd, mut td) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for r in &rows {
        let ev = evaluate_layer(&arch, &r.layer, &r.mapping, &r.hw, &opts)
            .unwrap_or_else(|e| panic!("line {}: {e}", r.line));
        pl.push(ev.cycles);
        tl.push(r.cycles);
        pe.push(ev.energy_uj);
        te.push(r.energy_uj);
        pd.push(ev.edp);
        td.push(r.cycles * r.energy_uj);
    }
    let (l, e, d) = (
        error_stats(&pl, &tl),
        error_stats(&pe, &te),
        error_stats(&pd, &td),
    );
    eprintln!("latency {l:?}\nenergy {e:?}\nedp {d:?}");
    assert!(
        l.mape <= 0.01 && e.mape <= 0.1 && d.mape <= 0.1,
        "{l:?} {e:?} {d:?}"
    );
    for s in [l, e, d] {
        assert!(s.spearman >= 0.9999);
    }
}
