//! One Gemmini rule set: whatever the search or a baseline returns for a Gemmini-shaped
//! architecture, `emit gemmini` accepts (its `plan` runs the same rules on the written
//! `result.dosa`), for random networks and seeds, free or bounded hardware, and the examples.

use dosa::gemmini::c::plan;
use dosa::gemmini::rules;
use dosa::ir::{gemmini_arch, HwBounds, Layer, Network, Program, SearchSpec};
use dosa::search::design::Scored;
use dosa::search::output::result_program;
use dosa::search::{baseline, bo, dosa as one_loop, AnalyticalModel, Engine};
use proptest::prelude::*;

#[path = "support/layers.rs"]
mod support;

fn spec(seed: u64, bounds: HwBounds) -> SearchSpec {
    SearchSpec {
        starts: 2,
        steps: 60,
        round_every: 30,
        seed,
        bounds,
        ..SearchSpec::default()
    }
}

fn gemmini_bounds() -> HwBounds {
    HwBounds {
        pe_max: Some(16),
        sp_max_kib: Some(256.0),
        acc_max_kib: Some(64.0),
    }
}

/// The design written as `result.dosa` (printed and read back, as a user's next command
/// would), then planned by the emitter: every layer must pass.
fn assert_emits(layers: &[Layer], s: &Scored, spec: &SearchSpec, what: &str) {
    let net = Network {
        name: "net".into(),
        layers: layers.to_vec(),
    };
    let program = result_program(&gemmini_arch(), &net, s, spec);
    let text = dosa::syntax::program_to_source(&program);
    let reread: Program = dosa::syntax::load_text("result.dosa", &text)
        .unwrap_or_else(|e| panic!("{what}: result.dosa does not check:\n{e}\n{text}"));
    if let Err(errors) = plan(&reread) {
        panic!(
            "{what}: emit gemmini refuses the result:\n{}\n{text}",
            errors.join("\n")
        );
    }
}

fn search(layers: &[Layer], spec: &SearchSpec) -> Scored {
    let engine = Engine::new(&gemmini_arch(), layers, spec).unwrap();
    one_loop::search(engine.exact(), engine.relaxation(), layers, spec).best
}

fn layer_strategy() -> impl Strategy<Value = Layer> {
    let dims = vec![1u64, 2, 3, 7, 8, 14, 16, 28, 56, 64, 100, 128, 256];
    support::layer_strategy(vec![1, 3, 5, 7], dims.clone(), dims.clone(), dims)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Searches of random networks, free and bounded to Gemmini's sizes, always emit.
    #[test]
    fn every_search_result_emits(
        mut layers in prop::collection::vec(layer_strategy(), 1..4),
        seed in 0u64..1000,
        bounded in any::<bool>(),
    ) {
        for (i, l) in layers.iter_mut().enumerate() {
            l.name = format!("{}{i}", l.name);
        }
        let bounds = if bounded { gemmini_bounds() } else { HwBounds::default() };
        let spec = spec(seed, bounds);
        let s = search(&layers, &spec);
        assert_emits(&layers, &s, &spec, "search");
    }
}

#[test]
fn baselines_emit_too() {
    let layers = vec![
        Layer::conv("c3", [3, 3, 28, 28, 64, 96, 1], 1, 1),
        Layer::conv("c7", [7, 7, 56, 56, 3, 64, 1], 2, 2),
        Layer::matmul("fc", 64, 512, 1000),
    ];
    let arch = rules::tile_arch(&gemmini_arch());
    let model = AnalyticalModel::new(&arch);
    for bounds in [HwBounds::default(), gemmini_bounds()] {
        let spec = spec(3, bounds);
        let (r, _, _) = baseline::random_search(&model, &layers, &bounds, spec.objective, 4, 8, 3);
        assert_emits(&layers, &r, &spec, "random");
        let (b, _, _) = bo::bo_search(&model, &layers, &bounds, spec.objective, 6, 4, 3);
        assert_emits(&layers, &b, &spec, "bo");
    }
    let g = baseline::gemmini_default(&model, &layers).unwrap();
    assert_emits(&layers, &g, &SearchSpec::default(), "gemmini-default");
}

/// The five example networks, free and bounded (a short search: the rules do not depend on
/// how long it ran).
#[test]
fn example_networks_emit() {
    for name in ["resnet50", "bert", "unet", "retinanet", "alexnet"] {
        let path = format!("{}/examples/{name}.dosa", env!("CARGO_MANIFEST_DIR"));
        let p = dosa::syntax::load_path(std::path::Path::new(&path)).unwrap();
        let layers = p.networks[0].layers.clone();
        for bounds in [HwBounds::default(), gemmini_bounds()] {
            let mut spec = spec(0, bounds);
            spec.starts = 1;
            let s = search(&layers, &spec);
            assert_emits(&layers, &s, &spec, name);
        }
    }
}

/// On a fixed Gemmini configuration `check` warns (with the span of the mapping) about a mapping
/// that Gemmini's C library cannot run, and still accepts the file: the cost model evaluates any
/// mapping, as Timeloop does. `auto` gets no warning and formats back as written.
#[test]
fn check_warns_about_mappings_gemmini_cannot_run() {
    let text = "network n {\n    conv c R=3 S=3 P=28 Q=28 C=64 K=128\n}\n\
                map n.c \"L3[WIO] K2 - L2[WI] P2 K16X - L1[O] K4 C4 S3 R3 P14 Q28 C16X - L0[W] P1\"\n";
    let o = dosa::syntax::check_text("w.dosa", text);
    assert_eq!(o.error_count(), 0);
    assert!(o.program.is_some());
    assert_eq!(o.codes(), vec!["gemmini-rules".to_string()]);
    let r = o.render();
    assert!(r.contains("temporal P2 at Scratchpad"), "{r}");
    assert!(r.contains("4 │ map n.c"), "{r}");

    let auto = "network n {\n    conv c R=3 S=3 P=28 Q=28 C=64 K=128\n}\nmap n.c auto\n";
    let o = dosa::syntax::check_text("a.dosa", auto);
    assert!(o.diagnostics.is_empty(), "{}", o.render());
    let p = o.program.unwrap();
    assert!(p.mappings[0].auto);
    let printed = dosa::syntax::program_to_source(&p);
    assert!(printed.contains("map n.c auto"), "{printed}");
    let back = dosa::syntax::load_text("b.dosa", &printed).unwrap();
    assert_eq!(back.mappings, p.mappings);
}
