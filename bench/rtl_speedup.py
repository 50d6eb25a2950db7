#!/usr/bin/env python3
"""Does a latency predictor tell when a searched mapping beats Gemmini's own tiler on the RTL?

    dosa fit --rtl TRAIN.csv --searched ROWS.csv -o /tmp/m.json --searched-only --held-out-csv HELD.csv
    bench/rtl_speedup.py ROWS.csv HELD.csv [WORKLOADS_DIR]

ROWS.csv is a searched-mappings file (e.g. ../shared/data/firesim/gemmini_rtl_searched.csv): each
row carries a searched mapping's measured cycles and, on the same line, those of Gemmini's own
tiles of the layer. HELD.csv is `fit --held-out-csv` on it: its `searched` and `gemmini-auto`
rows hold every predictor's layer-disjoint prediction of both (rows numbered as in ROWS.csv).

Per network and search (`dse.predictor`, the predictor that drove the search that produced the
mappings), it prints the speedup of the searched mappings over Gemmini's tiles on the whole
network, total tiler cycles / total searched cycles: measured, and as each predictor estimates
it from its held-out predictions; then each predictor's mean |log error| of that speedup and in
how many groups it gets the side of 1 right. Layers are weighted by their count in
WORKLOADS_DIR/<network>.csv (default ../shared/data/workloads; a layer not found there counts
once). This is the comparison `dosa search --compare --predictor both` makes between the search
and `gemmini-default`. Pure Python 3: the analysis is part of the record, not of the tool.
"""
import csv
import math
import os
import sys
from collections import defaultdict

DIMS = "RSPQCKN"


def counts(workloads, networks):
    out = {}
    for net in networks:
        path = os.path.join(workloads, f"{net}.csv")
        if not os.path.exists(path):
            continue
        for w in csv.DictReader(open(path)):
            key = (net, "_".join(w[d] for d in DIMS))
            out[key] = out.get(key, 0) + int(w["count"])
    return out


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    rows = list(csv.DictReader(open(sys.argv[1])))
    held = {}
    predictors = None
    for h in csv.DictReader(open(sys.argv[2])):
        if h["split"] in ("searched", "gemmini-auto"):
            held[(h["split"], int(h["row"]))] = h
            if predictors is None:
                predictors = [k for k in h if k not in (
                    "split", "row", "layer", "mapping", "measured") and not k.startswith("roof_")]
    if predictors is None:
        sys.exit(f"{sys.argv[2]}: no `searched` / `gemmini-auto` rows (fit with --searched)")
    workloads = sys.argv[3] if len(sys.argv) == 4 else "../shared/data/workloads"
    cnt = counts(workloads, {r["dse.network"] for r in rows})
    names = ["measured"] + predictors
    tot = defaultdict(lambda: defaultdict(float))
    missing = set()
    for i, r in enumerate(rows):
        s, a = held.get(("searched", i)), held.get(("gemmini-auto", i))
        if s is None or a is None:
            sys.exit(f"row {i}: not in both evaluations of {sys.argv[2]}")
        key = (r["dse.network"], "_".join(r["prob." + d] for d in DIMS))
        if key not in cnt:
            missing.add(key)
        c = cnt.get(key, 1)
        g = (r["dse.network"], r["dse.predictor"])
        for n in names:
            tot[g]["s_" + n] += c * float(s[n])
            tot[g]["a_" + n] += c * float(a[n])
    if missing:
        print(f"note: {len(missing)} layers not found in {workloads}, counted once", file=sys.stderr)
    print("speedup of the searched mappings over Gemmini's tiles (tiler cycles / searched cycles)")
    print(f"{'network':8} {'search':11} " + " ".join(f"{n:>10}" for n in names))
    err = defaultdict(list)
    side = defaultdict(int)
    for g, t in sorted(tot.items()):
        sp = {n: t["a_" + n] / t["s_" + n] for n in names}
        print(f"{g[0]:8} {g[1]:11} " + " ".join(f"{sp[n]:10.3f}" for n in names))
        for n in predictors:
            err[n].append(abs(math.log(sp[n] / sp["measured"])))
            side[n] += (sp[n] > 1) == (sp["measured"] > 1)
    for n in predictors:
        mean = sum(err[n]) / len(err[n])
        print(f"{n:10}: mean |log error| of the speedup {mean:.3f} (x{math.exp(mean):.3f}); "
              f"side of 1 right in {side[n]} of {len(err[n])}")


if __name__ == "__main__":
    main()
