//! Property tests of the printer and the formatter on random programs:
//! `load(program_to_source(p)) == p`, `fmt` is idempotent, `parse(fmt(x)) == parse(x)`, and
//! `fmt` keeps every comment, in order.

use dosa::ir::{
    AccessEnergy, Arch, Bandwidth, Bound, Dim, HardwareMode, HwBounds, Instances, Layer,
    LayerMapping, Level, LevelMapping, Mapping, Mapspace, Network, Objective, Predictor, Program,
    SearchSpec, SpatialDim, Tensor, TensorSet,
};
use dosa::syntax::{format_source, load_text, parse_tree, program_to_source, Formatted};
use dosa::util::Rng;
use proptest::prelude::*;

const NAMES: [&str; 16] = [
    "conv1",
    "a.b",
    "8_2_conv",
    "with space",
    "quo\"te",
    "back\\slash",
    "model",
    "ünï",
    "tab\tname",
    "_x",
    "new\nline",
    "L3",
    "x-y",
    "arch",
    "Registers",
    "_outputs_input.80",
];

fn pick<'a, T>(rng: &mut Rng, xs: &'a [T]) -> &'a T {
    &xs[rng.below(xs.len() as u64) as usize]
}

/// `n` distinct names: the first may be a keyword or need quotes, the rest get a suffix.
fn names(rng: &mut Rng, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let base = pick(rng, &NAMES).to_string();
            if i == 0 {
                base
            } else {
                format!("{base}_{i}")
            }
        })
        .collect()
}

fn real(rng: &mut Rng) -> f64 {
    match rng.below(5) {
        0 => rng.below(1000) as f64,
        1 => rng.next_f64() * 10.0,
        2 => rng.next_f64() * 10f64.powi(rng.below(16) as i32 - 8),
        3 => 0.5608,
        _ => (rng.next_u64() >> 11) as f64, // large integers
    }
}

fn positive(rng: &mut Rng) -> f64 {
    let x = real(rng);
    if x > 0.0 {
        x
    } else {
        1.5
    }
}

fn bytes(rng: &mut Rng) -> u64 {
    match rng.below(4) {
        0 => 1 + rng.below(4096),
        1 => (1 + rng.below(1024)) << 10,
        2 => (1 + rng.below(64)) << 20,
        _ => 1 + rng.below(1 << 50),
    }
}

fn subset_dims(rng: &mut Rng) -> Vec<Dim> {
    let mut ds: Vec<Dim> = Dim::ALL
        .iter()
        .copied()
        .filter(|_| rng.below(3) == 0)
        .collect();
    // random order
    for i in (1..ds.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        ds.swap(i, j);
    }
    ds
}

fn random_arch(rng: &mut Rng) -> Arch {
    let side = 2 + rng.below(63);
    let pe_dim = *pick(rng, &[Bound::Fixed(side), Bound::AtMost(side), Bound::Free]);
    let pe_min = 1 + rng.below(side.min(4));
    let n = 2 + rng.below(4) as usize;
    let level_names = names(rng, n);
    let levels = (0..n)
        .map(|j| {
            let backing = j + 1 == n;
            let keeps = if backing {
                TensorSet([true; 3])
            } else {
                let mut k = TensorSet([rng.below(2) == 0, rng.below(2) == 0, rng.below(2) == 0]);
                if k.is_empty() {
                    k = k.with(*pick(rng, &Tensor::ALL));
                }
                k
            };
            let word_bits = if rng.below(2) == 0 {
                *pick(rng, &[8u32, 16, 32])
            } else {
                1 + rng.below(64) as u32
            };
            let capacity = match rng.below(4) {
                0 => Bound::Free,
                1 => Bound::AtMost(bytes(rng)),
                _ if backing && rng.below(2) == 0 => Bound::Free,
                _ => Bound::Fixed(bytes(rng)),
            };
            let bandwidth = match rng.below(4) {
                0 => None,
                1 => Some(Bandwidth::Words(positive(rng))),
                2 => Some(Bandwidth::PerPeDim(positive(rng))),
                _ => Some(Bandwidth::PerSpatial(positive(rng), *pick(rng, &Dim::ALL))),
            };
            let energy = match rng.below(4) {
                0 => AccessEnergy::timeloop_sram(word_bits),
                1 => AccessEnergy::timeloop_dram(word_bits),
                2 => AccessEnergy::Const(real(rng)),
                _ => AccessEnergy::Linear {
                    base: real(rng),
                    per_kib: real(rng),
                },
            };
            let spatial = subset_dims(rng)
                .into_iter()
                .map(|d| SpatialDim {
                    dim: d,
                    max: (rng.below(2) == 0).then(|| 1 + rng.below(64)),
                })
                .collect();
            let temporal = if backing || rng.below(2) == 0 {
                None
            } else {
                Some(subset_dims(rng))
            };
            Level {
                name: level_names[j].clone(),
                keeps,
                word_bits,
                capacity,
                double_buffered: rng.below(2) == 0,
                instances: *pick(
                    rng,
                    &[Instances::PerPe, Instances::PerColumn, Instances::Single],
                ),
                bandwidth,
                energy,
                spatial,
                temporal,
                is_backing: backing,
            }
        })
        .collect();
    Arch {
        name: pick(rng, &NAMES).to_string(),
        pe_dim,
        pe_min,
        levels,
        mac_energy_pj: real(rng),
        // Not part of the language: only a search sets it.
        mapspace: Mapspace::Gemmini,
    }
}

fn random_layer(rng: &mut Rng, name: &str) -> Layer {
    let mut l = if rng.below(3) == 0 {
        Layer::matmul(
            name,
            1 + rng.below(512),
            1 + rng.below(1024),
            1 + rng.below(1024),
        )
    } else {
        let dims = [
            1 + rng.below(7),
            1 + rng.below(7),
            1 + rng.below(128),
            1 + rng.below(128),
            1 + rng.below(512),
            1 + rng.below(512),
            1 + rng.below(4),
        ];
        let mut l = Layer::conv(name, dims, 1 + rng.below(3), 1 + rng.below(3));
        if rng.below(2) == 0 {
            l.hstride = l.wstride;
        }
        l.wdilation = 1 + rng.below(2);
        l.hdilation = if rng.below(2) == 0 {
            l.wdilation
        } else {
            1 + rng.below(2)
        };
        l
    };
    l.count = if rng.below(2) == 0 {
        1
    } else {
        1 + rng.below(10)
    };
    l
}

fn divisors(n: u64) -> Vec<u64> {
    (1..=n).filter(|d| n % d == 0).collect()
}

/// A legal mapping of `layer` onto `arch`: factors respect where each dim may be spatial or
/// temporal and every bound; the backing level takes what is left.
fn random_mapping(rng: &mut Rng, arch: &Arch, layer: &Layer) -> Mapping {
    let n = arch.levels.len();
    let mut levels: Vec<LevelMapping> = arch
        .levels
        .iter()
        .map(|l| LevelMapping::unit(l.keeps))
        .collect();
    for d in Dim::ALL {
        let mut rem = layer.dim(d);
        for (k, level) in arch.levels.iter().enumerate().take(n - 1) {
            if let Some(sd) = level.spatial.iter().find(|s| s.dim == d) {
                let cap = sd
                    .max
                    .unwrap_or(u64::MAX)
                    .min(arch.pe_dim.max().unwrap_or(u64::MAX));
                let options: Vec<u64> = divisors(rem).into_iter().filter(|&f| f <= cap).collect();
                let f = *pick(rng, &options);
                levels[k].spatial[d.index()] = f;
                rem /= f;
            }
            if level.allows_temporal(d) && rng.below(2) == 0 {
                let f = *pick(rng, &divisors(rem));
                levels[k].temporal[d.index()] = f;
                rem /= f;
            }
        }
        levels[n - 1].temporal[d.index()] = rem;
    }
    for lm in &mut levels {
        let mut order = Dim::ALL.to_vec();
        for i in (1..order.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            order.swap(i, j);
        }
        lm.order = order;
        lm.normalize_order();
    }
    Mapping::new(levels)
}

fn random_program(seed: u64) -> Program {
    let mut rng = Rng::new(seed);
    let arch = random_arch(&mut rng);
    let count = 1 + rng.below(3) as usize;
    let net_names = names(&mut rng, count);
    let mut networks = Vec::new();
    let mut mappings = Vec::new();
    for nn in net_names {
        let count = 1 + rng.below(5) as usize;
        let layer_names = names(&mut rng, count);
        let layers: Vec<Layer> = layer_names
            .iter()
            .map(|ln| random_layer(&mut rng, ln))
            .collect();
        for l in &layers {
            if rng.below(2) == 0 {
                mappings.push(LayerMapping {
                    network: nn.clone(),
                    layer: l.name.clone(),
                    mapping: random_mapping(&mut rng, &arch, l),
                    auto: false,
                });
            }
        }
        networks.push(Network { name: nn, layers });
    }
    let search = SearchSpec {
        objective: *pick(
            &mut rng,
            &[Objective::Edp, Objective::Energy, Objective::Latency],
        ),
        starts: 1 + rng.below(20) as u32,
        steps: 1 + rng.below(5000) as u32,
        round_every: 1 + rng.below(1000) as u32,
        lr: positive(&mut rng),
        seed: rng.next_u64(),
        bounds: HwBounds {
            pe_max: (rng.below(2) == 0).then(|| 1 + rng.below(256)),
            sp_max_kib: (rng.below(2) == 0).then(|| positive(&mut rng)),
            acc_max_kib: (rng.below(2) == 0).then(|| positive(&mut rng)),
        },
        predictor: *pick(
            &mut rng,
            &[Predictor::Analytical, Predictor::Dnn, Predictor::Both],
        ),
        model: (rng.below(2) == 0).then(|| pick(&mut rng, &NAMES).to_string()),
        // Always explicit: an unset mode is resolved from the arch when the file is read.
        hardware: Some(*pick(&mut rng, &[HardwareMode::Free, HardwareMode::Fixed])),
        mapspace: *pick(&mut rng, &[Mapspace::Gemmini, Mapspace::Free]),
    };
    // Bounds no design meets are errors (`unmeetable-bound`): raise them to the least meetable.
    let mut search = search;
    let least = HwBounds {
        pe_max: Some(0),
        sp_max_kib: Some(0.0),
        acc_max_kib: Some(0.0),
    };
    for u in dosa::search::design::unmeetable_bounds(&arch, &least) {
        use dosa::search::design::BoundKind;
        let b = &mut search.bounds;
        match u.kind {
            BoundKind::Pe => b.pe_max = b.pe_max.map(|m| m.max(arch.pe_min)),
            BoundKind::Scratchpad => b.sp_max_kib = b.sp_max_kib.map(|m| m.max(u.least_kib)),
            BoundKind::Accumulator => b.acc_max_kib = b.acc_max_kib.map(|m| m.max(u.least_kib)),
        }
    }
    Program {
        arch,
        networks,
        mappings,
        search,
    }
}

fn fmt(name: &str, text: &str) -> String {
    match format_source(name, text) {
        Formatted::Ok(s) => s,
        Formatted::Err(e) => panic!("does not parse:\n{e}\n{text}"),
    }
}

/// Add comments (own-line and trailing), blank lines and extra spaces outside strings.
/// Returns the new text and the comments in the order they appear.
fn sprinkle(text: &str, seed: u64) -> (String, Vec<String>) {
    let mut rng = Rng::new(seed ^ 0xC0FFEE);
    let mut out = String::new();
    let mut comments = Vec::new();
    for line in text.lines() {
        if rng.below(4) == 0 {
            let c = format!("# c{} own line", comments.len());
            out.push_str(&" ".repeat(rng.below(9) as usize));
            out.push_str(&c);
            out.push('\n');
            comments.push(c);
        }
        for _ in 0..rng.below(3).saturating_sub(1) {
            out.push('\n');
        }
        out.push_str(&" ".repeat(rng.below(3) as usize));
        let mut in_string = false;
        let mut escaped = false;
        let mut in_comment = false;
        for ch in line.chars() {
            out.push(ch);
            if in_comment {
                continue;
            }
            if in_string {
                if escaped {
                    escaped = false;
                } else if ch == '\\' {
                    escaped = true;
                } else if ch == '"' {
                    in_string = false;
                }
            } else if ch == '"' {
                in_string = true;
            } else if ch == '#' {
                in_comment = true;
            } else if ch == ' ' && rng.below(10) == 0 {
                // A comment inside a statement or header: between a keyword and a name, a name
                // and `{`, right after `map`, between a layer's parameters.
                let c = format!("# c{} inner", comments.len());
                out.push_str(&c);
                out.push('\n');
                comments.push(c);
            } else if ch == ' ' && rng.below(4) == 0 {
                out.push_str(&" ".repeat(1 + rng.below(3) as usize));
            }
        }
        if rng.below(4) == 0 {
            let c = format!("# c{} trailing", comments.len());
            out.push_str(&" ".repeat(1 + rng.below(4) as usize));
            out.push_str(&c);
            comments.push(c);
        }
        out.push('\n');
    }
    (out, comments)
}

fn assert_comments_in_order(formatted: &str, comments: &[String]) {
    let mut at = 0;
    for c in comments {
        match formatted[at..].find(c.as_str()) {
            Some(i) => at += i + c.len(),
            None => panic!("comment `{c}` lost or moved out of order:\n{formatted}"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn printed_programs_load_back_equal(seed in any::<u64>()) {
        let p = random_program(seed);
        let src = program_to_source(&p);
        match load_text("gen.dosa", &src) {
            Ok(back) => prop_assert_eq!(back, p, "{}", src),
            Err(e) => prop_assert!(false, "{}\n{}", src, e),
        }
        // The printer's output is already canonical.
        prop_assert_eq!(fmt("gen.dosa", &src), src);
    }

    #[test]
    fn fmt_is_idempotent_keeps_the_tree_and_the_comments(seed in any::<u64>()) {
        let p = random_program(seed);
        let (x, comments) = sprinkle(&program_to_source(&p), seed);
        let f = fmt("x.dosa", &x);
        prop_assert_eq!(&fmt("f.dosa", &f), &f);
        prop_assert_eq!(parse_tree(&f), parse_tree(&x));
        assert_comments_in_order(&f, &comments);
        prop_assert_eq!(load_text("x.dosa", &x).ok(), Some(p.clone()));
        prop_assert_eq!(load_text("f.dosa", &f).ok(), Some(p.clone()));
        // The same text with a byte-order mark and CRLF or lone-CR line endings formats the same
        // and loads the same.
        for ending in ["\r\n", "\r"] {
            let odd = format!("\u{FEFF}{}", x.replace('\n', ending));
            prop_assert_eq!(&fmt("odd.dosa", &odd), &f);
            prop_assert_eq!(load_text("odd.dosa", &odd).ok(), Some(p.clone()));
        }
    }
}

#[test]
fn sprinkled_examples_format_back_to_themselves_plus_comments() {
    for name in [
        "gemmini",
        "tutorial",
        "resnet50",
        "bert",
        "unet",
        "retinanet",
        "alexnet",
    ] {
        let path = std::path::Path::new("examples").join(format!("{name}.dosa"));
        let text = std::fs::read_to_string(&path).unwrap();
        for seed in 0..8 {
            let (x, comments) = sprinkle(&text, seed);
            let f = fmt("x.dosa", &x);
            assert_eq!(fmt("f.dosa", &f), f, "{}", path.display());
            assert_eq!(parse_tree(&f), parse_tree(&text), "{}", path.display());
            assert_comments_in_order(&f, &comments);
            if comments.is_empty() {
                assert_eq!(f, text, "{}: only whitespace changed", path.display());
            }
        }
    }
}
