//! The model behind the search driver's traits: a short search runs and improves on its start.

use dosa::ir::{gemmini_arch, HwBounds, Layer, Objective, SearchSpec};
use dosa::model::search_adapter::{AnalyticalModel, RelaxedModel};
use dosa::search::dosa::search;

#[test]
fn a_short_search_runs_on_the_model_and_keeps_its_best_design() {
    let arch = gemmini_arch();
    let mut l1 = Layer::conv("c3", [3, 3, 28, 28, 128, 128, 1], 1, 1);
    l1.count = 4;
    let layers = vec![l1, Layer::matmul("fc", 128, 768, 768)];
    let bounds = HwBounds {
        pe_max: Some(16),
        sp_max_kib: Some(256.0),
        acc_max_kib: Some(64.0),
    };
    let spec = SearchSpec {
        starts: 1,
        steps: 60,
        round_every: 20,
        bounds,
        ..SearchSpec::default()
    };
    let exact = AnalyticalModel::new(&arch);
    let relaxed = RelaxedModel::new(&arch, &layers, Objective::Edp, &bounds).unwrap();
    let r = search(&exact, &relaxed, &layers, &spec);
    let first = r.curve.first().unwrap().1;
    let last = r.curve.last().unwrap().1;
    eprintln!("best EDP {first} -> {last}");
    assert!(last <= first, "{first} -> {last}");
    assert!(r.best.edp().is_finite() && r.best.edp() > 0.0);
    assert!(r.best.hardware.pe_dim <= 16.0);
}
