#!/usr/bin/env python3
"""Which count of Gemmini's work follows the measured latency inside a layer.

    dosa predict --rtl ROWS.csv --model models/gemmini-rtl.json --csv /tmp/pred.csv
    bench/rtl_within_layer.py ROWS.csv /tmp/pred.csv

For every row, the residual y = ln(measured / (base + reload)) (base = the roofline's largest
term from pred.csv, reload = Gemmini's tile reloads as in rtl_layer_factors.py) and, for each
candidate count n, x = ln(1 + n / (base + reload)). Both are centred per layer (layers with at
least three rows) and their correlation printed: how well the count explains why one mapping of
a layer runs slower than another, which is what a feature must do for a layer it has not seen.
Candidates, per DRAM iteration as Gemmini's conv loop moves the tiles (each row of the
scratchpad-level tile reloaded, outputs written once):
  * iterations: the DRAM-level iterations;
  * dma_rows: scratchpad rows moved (16 one-byte words each);
  * dma_transactions: DMA requests of at most 64 bytes (Gemmini's MAX_BYTES);
  * pages: 4 KiB pages touched (the `gemmini.log_pages` feature of src/learn/features.rs).
Pure Python 3 (no numpy): the analysis is part of the record, not of the tool.
"""
import csv
import math
import os
import sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rtl_layer_factors import DIMS, parse, reload_cycles, scratchpad_tile  # noqa: E402

PAGE = 4096
MAX_BYTES = 64
ROW = 16


def cdiv(a, b):
    return -(-a // b)


def counts(row, levels):
    dims = {d: int(row["prob." + d]) for d in DIMS}
    ws, hs = int(row["prob.Wstride"]), int(row["prob.Hstride"])
    t = scratchpad_tile(levels)
    iters = math.prod(levels[3][0][d] for d in DIMS)
    out_iters = math.prod(levels[3][0][d] for d in "PQKN")
    icols = (t["P"] - 1) * ws + t["R"]
    irows = (t["Q"] - 1) * hs + t["S"]
    rows = iters * (t["R"] * t["S"] * t["C"] * cdiv(t["K"], ROW)
                    + t["N"] * irows * icols * cdiv(t["C"], ROW)) \
        + out_iters * t["N"] * t["Q"] * t["P"] * cdiv(t["K"], ROW)
    transactions = iters * (t["R"] * t["S"] * t["C"] * cdiv(t["K"], MAX_BYTES)
                            + t["N"] * irows * icols * cdiv(t["C"], MAX_BYTES))
    pages = iters * (cdiv(t["K"], MAX_BYTES) * t["R"] * t["S"] * cdiv(t["C"] * dims["K"], PAGE)
                     + t["N"] * irows * cdiv(icols * dims["C"], PAGE) * cdiv(t["C"], MAX_BYTES)) \
        + out_iters * t["N"] * t["Q"] * cdiv(t["P"] * dims["K"], PAGE)
    return {"iterations": iters, "dma_rows": rows, "dma_transactions": transactions, "pages": pages}


def corr(a, b):
    n = len(a)
    ma, mb = sum(a) / n, sum(b) / n
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b))
    return cov / math.sqrt(sum((x - ma) ** 2 for x in a) * sum((y - mb) ** 2 for y in b))


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    rows = list(csv.DictReader(open(sys.argv[1])))
    preds = list(csv.DictReader(open(sys.argv[2])))
    if len(rows) != len(preds):
        sys.exit("the two files have different row counts")
    by = defaultdict(list)
    for r, p in zip(rows, preds):
        levels = parse(r["mapping.mapping"])
        br = float(p["analytical"]) + reload_cycles(r, levels)
        c = counts(r, levels)
        y = math.log(float(r["target.gemmini_cycle"]) / br)
        by[p["layer"]].append((y, {k: math.log(1 + v / br) for k, v in c.items()}))
    ys, xs = [], defaultdict(list)
    for members in by.values():
        if len(members) < 3:
            continue
        my = sum(y for y, _ in members) / len(members)
        ys += [y - my for y, _ in members]
        for k in members[0][1]:
            mx = sum(x[k] for _, x in members) / len(members)
            xs[k] += [x[k] - mx for _, x in members]
    print(f"{len(ys)} rows in {sum(len(m) >= 3 for m in by.values())} layers; "
          "correlation inside layers with ln(measured / (base + reload)):")
    for k, x in xs.items():
        print(f"  {k:18} {corr(x, ys):6.3f}")


if __name__ == "__main__":
    main()
