//! Gemmini's default tiles on every layer of the reference networks: each must satisfy the
//! capacity rules, stay within the layer, and be maximal (no single entry can grow).

use dosa::gemmini::tiler::{auto_tile, check_tiles, GemminiParams, Tiles};
use dosa::ir::Layer;

fn workloads() -> Vec<(String, Layer)> {
    let Some(shared) = dosa::util::shared_dir() else {
        eprintln!("note: shared data not found; skipping");
        return Vec::new();
    };
    let dir = shared.join("data/workloads");
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files {
        let net = f.file_stem().unwrap().to_string_lossy().into_owned();
        let mut r = csv::Reader::from_path(&f).unwrap();
        for rec in r.records() {
            let rec = rec.unwrap();
            let n = |i: usize| rec[i].parse::<u64>().unwrap();
            let mut l = Layer::conv(
                &rec[0],
                [n(1), n(2), n(3), n(4), n(5), n(6), n(7)],
                n(8),
                n(9),
            );
            l.wdilation = n(10);
            l.hdilation = n(11);
            out.push((net.clone(), l));
        }
    }
    out
}

#[test]
fn default_tiles_fit_and_are_maximal_on_all_networks() {
    let p = GemminiParams::shipped();
    for (net, l) in workloads() {
        let t = auto_tile(&l, &p);
        check_tiles(&l, &t, &p).unwrap_or_else(|e| panic!("{net}.{}: {e}", l.name));
        if std::env::var("DOSA_PRINT_TILES").is_ok() {
            println!("{net}.{} {:?} -> {:?}", l.name, l.dims, t);
        }
        // Maximal: raising any single entry by one breaks a rule.
        match t {
            Tiles::Conv(c) => {
                let a = c.to_array();
                for i in 0..7 {
                    let mut b = a;
                    b[i] += 1;
                    let bt = Tiles::Conv(dosa::gemmini::tiler::ConvTiles::from_array(b));
                    assert!(
                        check_tiles(&l, &bt, &p).is_err(),
                        "{net}.{}: entry {i} could grow",
                        l.name
                    );
                }
            }
            Tiles::Matmul(m) => {
                for (di, dj, dk) in [(1, 0, 0), (0, 1, 0), (0, 0, 1)] {
                    let bt = Tiles::Matmul(dosa::gemmini::tiler::MatmulTiles {
                        tile_i: m.tile_i + di,
                        tile_j: m.tile_j + dj,
                        tile_k: m.tile_k + dk,
                    });
                    assert!(
                        check_tiles(&l, &bt, &p).is_err(),
                        "{net}.{}: could grow",
                        l.name
                    );
                }
            }
        }
    }
}
