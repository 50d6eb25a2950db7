#!/usr/bin/env python3
"""Where a latency predictor's ranking of searched mappings is lost: within layers or between them.

    dosa predict --rtl ROWS.csv --model models/gemmini-rtl.json --csv /tmp/pred.csv
    bench/rtl_layer_factors.py ROWS.csv /tmp/pred.csv [HELD_OUT.csv]

ROWS.csv is a measured-RTL file (e.g. ../shared/data/firesim/gemmini_rtl_searched.csv); pred.csv
is `dosa predict --csv` on it (per-row roofline terms). With `base` = the roofline's largest term
and `reload` = Gemmini's tile reloads at 16 B/cycle (the `gemmini.log_reload` feature of
src/learn/features.rs, recomputed here from the mapping), it prints:
  * base + reload alone: MAPE and Spearman;
  * two oracles: each layer's geometric-mean measured latency, known exactly, for every row of the
    layer (what a perfect per-layer predictor that cannot rank mappings scores), and the same
    per-layer means with the mappings ranked inside each layer by base + reload (what a predictor
    that learns only one factor per layer would score if it got that factor exactly right);
  * each layer's factor = geometric mean of measured / (base + reload) over its rows.
With HELD_OUT.csv (`dosa fit ... --searched ROWS.csv --held-out-csv HELD_OUT.csv`), also each
learned predictor's layer-disjoint predictions of the same rows: their MAPE and Spearman, each
layer's factor measured / predicted, and the score of the predictor's per-layer level with
base + reload ranking the mappings inside each layer.
Pure Python 3 (no numpy): the analysis is part of the record, not of the tool.
"""
import csv
import math
import sys
from collections import defaultdict

DIMS = "RSPQCKN"


def parse(mapping):
    """`L3[WIO] K48 - L2[WI] ... - L0[W] P8` -> {level: (temporal, spatial)} factor dicts."""
    levels = {}
    for part in mapping.split(" - "):
        toks = part.split()
        temporal, spatial = {d: 1 for d in DIMS}, {d: 1 for d in DIMS}
        for tk in toks[1:]:
            side = spatial if tk.endswith("X") else temporal
            side[tk[0]] *= int(tk[1:].rstrip("X"))
        levels[int(toks[0][1])] = (temporal, spatial)
    return levels


def ranks(v):
    order = sorted(range(len(v)), key=lambda i: v[i])
    r = [0.0] * len(v)
    i = 0
    while i < len(v):
        j = i
        while j + 1 < len(v) and v[order[j + 1]] == v[order[i]]:
            j += 1
        for k in range(i, j + 1):
            r[order[k]] = (i + j) / 2
        i = j + 1
    return r


def spearman(a, b):
    ra, rb = ranks(a), ranks(b)
    n = len(a)
    ma, mb = sum(ra) / n, sum(rb) / n
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    return cov / math.sqrt(sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb))


def mape(pred, meas):
    return 100 * sum(abs(p - m) / m for p, m in zip(pred, meas)) / len(meas)


def scratchpad_tile(levels):
    """Each dim's extent at the scratchpad (levels 0-2, temporal x spatial)."""
    return {d: math.prod(levels[lvl][0][d] * levels[lvl][1][d] for lvl in range(3)) for d in DIMS}


def reload_cycles(row, levels):
    dims = {d: int(row["prob." + d]) for d in DIMS}
    stride = int(row["prob.Hstride"])
    t = scratchpad_tile(levels)
    w = t["R"] * t["S"] * t["C"] * t["K"]
    i = (t["C"] * t["N"] * ((t["P"] - 1) * stride + t["R"])
         * ((t["Q"] - 1) * stride + t["S"]))
    iters = math.prod(levels[3][0][d] for d in DIMS)
    outputs = dims["K"] * dims["P"] * dims["Q"] * dims["N"]
    return (iters * (w + i) + outputs) / 16


def geo(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def held_out(path, rows, meas):
    """The learned predictors' layer-disjoint predictions of `rows` (split `searched`)."""
    got = defaultdict(dict)
    for h in csv.DictReader(open(path)):
        if h["split"] != "searched":
            continue
        for name in h:
            if name not in ("split", "row", "layer", "mapping", "measured", "analytical") \
                    and not name.startswith("roof_"):
                got[name][int(h["row"])] = float(h[name])
    for name, by_row in got.items():
        if sorted(by_row) != list(range(len(rows))):
            sys.exit(f"{path}: the searched rows of `{name}` are not those of the rows file")
        pred = [by_row[i] for i in range(len(rows))]
        print(f"held out, {name}: MAPE {mape(pred, meas):.2f} %, Spearman {spearman(pred, meas):.4f}")
        by = defaultdict(list)
        for i, r in enumerate(rows):
            by[r["layer"]].append(i)
        level = {k: geo([pred[i] for i in v]) / geo([rows[i]["br"] for i in v]) for k, v in by.items()}
        mixed = [level[r["layer"]] * r["br"] for r in rows]
        print(f"  its per-layer level, base + reload inside each layer: Spearman {spearman(mixed, meas):.4f}, MAPE {mape(mixed, meas):.2f} %")
        print("  factor = measured / held-out prediction, per layer:")
        for k, v in sorted(by.items(), key=lambda kv: geo([meas[i] / pred[i] for i in kv[1]])):
            per_row = " ".join(f"{meas[i] / pred[i]:.2f}" for i in v)
            print(f"    {geo([meas[i] / pred[i] for i in v]):5.2f}  {k[0]:6} {k[1]:24} rows: {per_row}")


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    data = list(csv.DictReader(open(sys.argv[1])))
    pred = list(csv.DictReader(open(sys.argv[2])))
    if len(data) != len(pred):
        sys.exit("the two files have different row counts")
    rows = []
    for d, p in zip(data, pred):
        base = max(float(p[k]) for k in p if k.startswith("roof_"))
        rows.append({
            "layer": (d.get("dse.network", ""), p["layer"]),
            "meas": float(p["measured"]),
            "br": base + reload_cycles(d, parse(d["mapping.mapping"])),
        })
    meas = [r["meas"] for r in rows]
    br = [r["br"] for r in rows]
    print(f"{len(rows)} rows; base + reload: MAPE {mape(br, meas):.2f} %, Spearman {spearman(br, meas):.4f}")
    by = defaultdict(list)
    for r in rows:
        by[r["layer"]].append(r)
    mean_meas = {k: geo([r["meas"] for r in v]) for k, v in by.items()}
    mean_br = {k: geo([r["br"] for r in v]) for k, v in by.items()}
    o1 = [mean_meas[r["layer"]] for r in rows]
    o2 = [mean_meas[r["layer"]] * r["br"] / mean_br[r["layer"]] for r in rows]
    print(f"oracle, each layer's mean exact, no ranking inside a layer: Spearman {spearman(o1, meas):.4f}")
    print(f"oracle, each layer's mean exact, base + reload inside it:   Spearman {spearman(o2, meas):.4f}, MAPE {mape(o2, meas):.2f} %")
    print(f"{len(by)} layers; factor = measured / (base + reload), geometric mean over the layer's rows:")
    for k, v in sorted(by.items(), key=lambda kv: mean_meas[kv[0]] / mean_br[kv[0]]):
        per_row = " ".join(f"{r['meas'] / r['br']:.2f}" for r in v)
        print(f"  {mean_meas[k] / mean_br[k]:5.2f}  {k[0]:6} {k[1]:24} rows: {per_row}")

    if len(sys.argv) == 4:
        held_out(sys.argv[3], rows, meas)


if __name__ == "__main__":
    main()
