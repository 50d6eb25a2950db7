#!/usr/bin/env python3
"""Per-layer half of bench/mapper_vs_timeloop.sh (run that script, not this one).

Given WORK/search/report.json and WORK/tl/NN_net.layer/{arch,problem,mapping,ert}.yaml (from
`dosa search -o` and `dosa emit timeloop --format v0.3`), for each layer: runs timeloop-mapper
with Gemmini's mapspace constraints for about BUDGET CPU-seconds, rescores its best mapping and
dosa's mapping with timeloop-model, and prints a markdown table.
"""
import argparse
import hashlib
import json
import math
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time

import yaml

DIM = 16  # Gemmini's PE array side, as fixed by examples/gemmini.dosa

MAPPER = {
    "mapper": {
        "algorithm": "random-pruned",
        "optimization-metrics": ["edp"],
        "num-threads": None,  # filled in
        # Both stop rules off: the search runs until the CPU budget is spent and it gets SIGINT.
        "timeout": 0,  # consecutive invalid mappings before a thread stops (0: never)
        "victory-condition": 0,  # consecutive non-improving valid mappings (0: never)
        "max-permutations-per-if-visit": 16,
        "live-status": False,
        "log-stats": False,
    }
}


def constraints(gemmini_rules):
    """What dosa's mappings may do on Gemmini (src/gemmini/rules.rs, examples/gemmini.dosa).
    gemmini_rules: also the two rules of Gemmini's C library that dosa obeys: one tile level (no
    temporal loop at the Scratchpad) and split reduction loops innermost at DRAM (here in the
    fixed order C, R, S from the inside, which dosa does not impose among them). Without them
    both searches have the free mapspace (dosa `--mapspace free`)."""
    def keep(target, k, b):
        return {"target": target, "type": "bypass", "keep": k, "bypass": b}
    extra = []
    if gemmini_rules:
        extra.append({"target": "Scratchpad", "type": "temporal",
                      "factors": "R=1 S=1 P=1 Q=1 C=1 K=1 N=1"})
        # a partial permutation fixes the innermost loops; the others stay free
        extra.append({"target": "DRAM", "type": "temporal", "permutation": "CRS"})
    return {"mapspace": {"constraints": extra + [
        keep("Registers", ["Weights"], ["Inputs", "Outputs"]),
        keep("Accumulator", ["Outputs"], ["Weights", "Inputs"]),
        keep("Scratchpad", ["Weights", "Inputs"], ["Outputs"]),
        keep("DRAM", ["Weights", "Inputs", "Outputs"], []),
        # a held weight is reused across output pixels only
        {"target": "Registers", "type": "temporal", "factors": "R=1 S=1 C=1 K=1 N=1"},
        # C over the PE rows, K over the PE columns, at most DIM each (the arch's fanout)
        {"target": "Accumulator", "type": "spatial",
         "factors": f"R=1 S=1 P=1 Q=1 K=1 N=1 C<={DIM}", "permutation": "CRSPQKN", "split": 7},
        {"target": "Scratchpad", "type": "spatial",
         "factors": f"R=1 S=1 P=1 Q=1 C=1 N=1 K<={DIM}", "permutation": "KRSPQCN", "split": 7},
    ]}}


def die(msg):
    print(f"mapper_vs_timeloop: error: {msg}", file=sys.stderr)
    sys.exit(1)


def parse_stats(path):
    """(cycles, energy in uJ) from a timeloop-model stats file."""
    text = open(path).read()
    m = re.search(r"^Summary Stats.*?^Cycles:\s*(\d+)\s*$.*?^Energy:\s*([0-9.eE+-]+)\s*uJ",
                  text, re.S | re.M)
    if not m:
        raise RuntimeError(f"no Summary Stats in {path}")
    cycles, energy = int(m.group(1)), float(m.group(2))
    # The summary rounds energy to 0.01 uJ; the component totals give it to 0.01 pJ.
    parts = re.findall(r"^\s*(?:Energy|Temporal Reduction Energy|Address Generation Energy|"
                       r"Spatial Reduction Energy) \(total\)\s*:\s*([0-9.eE+-]+)\s*pJ", text, re.M)
    fine = sum(float(x) for x in parts) / 1e6
    if parts and abs(fine - energy) <= 0.0051 + 1e-6 * energy:
        energy = fine
    return cycles, energy


def run_model(tlbin, d, files):
    p = subprocess.run([os.path.join(tlbin, "timeloop-model")] + files, cwd=d,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    stats = os.path.join(d, "timeloop-model.stats.txt")
    if p.returncode != 0 or not os.path.exists(stats):
        tail = " | ".join(p.stdout.splitlines()[-3:])
        raise RuntimeError(f"timeloop-model failed in {d} (rc={p.returncode}): {tail}")
    return parse_stats(stats)


def proc_cpu(pid):
    """CPU seconds (user + system) of a live process, 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def child_pid(pid):
    """The process `timeout` started (the mapper), or None while there is none."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = f.read().split()
        return int(kids[0]) if kids else None
    except OSError:
        pass
    # kernels without /proc/PID/task/TID/children: look for a process whose parent is `pid`
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        return int(entry)
            except (OSError, IndexError, ValueError):
                continue
    return None


def run_mapper(tlbin, d, budget, threads):
    """timeloop-mapper under `timeout`, interrupted (SIGINT: it stops and writes its best
    mapping) once it has used `budget` CPU-seconds, or after 8 x budget + 60 wall seconds on a
    machine too busy to give it that. Returns the CPU seconds it used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall_cap = 8 * budget + 60
    cmd = ["timeout", "-s", "INT", "-k", "60", f"{wall_cap:.0f}",
           os.path.join(tlbin, "timeloop-mapper"),
           "arch.yaml", "problem.yaml", "ert.yaml", "mapper.yaml", "constraints.yaml"]
    with open(os.path.join(d, "mapper.log"), "w") as log:
        p = subprocess.Popen(cmd, cwd=d, stdout=log, stderr=subprocess.STDOUT)
        mapper, sent = None, False
        while p.poll() is None:
            time.sleep(0.25)
            mapper = mapper or child_pid(p.pid)
            if mapper and not sent and proc_cpu(mapper) >= budget:
                try:
                    os.kill(mapper, signal.SIGINT)
                except ProcessLookupError:
                    pass
                sent = True
        rc = p.wait()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if rc not in (0, 124, 130, -2) and not sent:
        tail = " | ".join(open(os.path.join(d, "mapper.log")).read().splitlines()[-3:])
        raise RuntimeError(f"timeloop-mapper failed in {d} (rc={rc}): {tail}")
    return cpu


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def layer_line(name, problem):
    """The .dosa layer of a v0.3 problem.yaml (dims, strides and dilations from its instance)."""
    inst = yaml.safe_load(open(problem))["problem"]["instance"]
    dims = " ".join(f"{d}={inst[d]}" for d in "RSPQCKN")
    return (f'conv "{name}" {dims} wstride={inst["Wstride"]} hstride={inst["Hstride"]} '
            f'wdilation={inst["Wdilation"]} hdilation={inst["Hdilation"]}')


def dosa_alone(work, dname, name, problem, tlbin, gemmini_rules):
    """dosa's fixed-hardware search on this layer alone (its own EDP, the mapper's objective), in
    the mapper's mapspace (Gemmini's with gemmini_rules, else free), emitted as v0.3 and
    rescored with timeloop-model: (cycles, uJ)."""
    dosa = os.environ.get("DOSA") or os.path.join(REPO, "target", "release", "dosa")
    d = os.path.join(work, "alone", dname)
    os.makedirs(d, exist_ok=True)
    gemmini = os.path.join(REPO, "examples", "gemmini.dosa")
    with open(os.path.join(d, "layer.dosa"), "w") as f:
        f.write(f'import "{gemmini}"\nnetwork one {{\n    {layer_line(name, problem)}\n}}\n')
    space = [] if gemmini_rules else ["--mapspace", "free"]
    for cmd in (["search", "layer.dosa", "--hardware", "fixed", "-o", "search", "--no-timing"]
                + space,
                ["emit", "timeloop", "search/result.dosa", "--format", "v0.3", "-o", "tl"]):
        p = subprocess.run([dosa] + cmd, cwd=d, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
        if p.returncode != 0:
            raise RuntimeError(f"dosa {' '.join(cmd)} failed in {d}: {p.stdout[-400:]}")
    (sub,) = [x for x in os.listdir(os.path.join(d, "tl"))]
    return run_model(tlbin, os.path.join(d, "tl", sub),
                     ["arch.yaml", "problem.yaml", "mapping.yaml", "ert.yaml"])


def fmt(x):
    return f"{x:.4g}" if x is not None else "-"


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--work", required=True)
    ap.add_argument("--tlbin", required=True)
    ap.add_argument("--layers", type=int, default=0)
    ap.add_argument("--skip", type=int, default=0)
    ap.add_argument("--budget", type=float, default=480)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--gemmini-rules", action="store_true")
    ap.add_argument("--cache", default=None)
    ap.add_argument("--cached-only", action="store_true")
    a = ap.parse_args()

    report = json.load(open(os.path.join(a.work, "search", "report.json")))
    layers = report["layers"]
    tl = os.path.join(a.work, "tl")
    dirs = sorted(x for x in os.listdir(tl) if os.path.isdir(os.path.join(tl, x)))
    if len(dirs) != len(layers):
        die(f"{len(dirs)} emitted layer folders but {len(layers)} layers in report.json")
    if a.layers:
        dirs, layers = dirs[:a.layers], layers[:a.layers]
    dirs, layers = dirs[a.skip:], layers[a.skip:]
    hw = report["hardware"]
    print(f"hardware: {hw['pe_dim']}x{hw['pe_dim']} PEs, scratchpad {hw['scratchpad_kib']:g} KiB "
          f"(usable {hw['scratchpad_usable_kib']:g}), accumulator {hw['accumulator_kib']:g} KiB "
          f"(usable {hw['accumulator_usable_kib']:g}); mapper: random-pruned, EDP, "
          f"{a.threads} thread(s), budget {a.budget:g} CPU-s per layer"
          + (", Gemmini's rules" if a.gemmini_rules else ""), file=sys.stderr)

    mapper_cfg = json.loads(json.dumps(MAPPER))
    mapper_cfg["mapper"]["num-threads"] = a.threads
    rows = []
    for dname, layer in zip(dirs, layers):
        if not dname.endswith("." + layer["name"]):
            die(f"layer folder {dname} does not match report layer {layer['name']}")
        src = os.path.join(tl, dname)
        # dosa's own mapping, rescored; and dosa on the layer alone
        dosa = run_model(a.tlbin, src, ["arch.yaml", "problem.yaml", "mapping.yaml", "ert.yaml"])
        alone = dosa_alone(a.work, dname, layer["name"], os.path.join(src, "problem.yaml"),
                           a.tlbin, a.gemmini_rules)
        # Timeloop's mapper on the same arch/problem/ert
        mdir = os.path.join(a.work, "mapper", dname)
        os.makedirs(mdir, exist_ok=True)
        for f in ("arch.yaml", "problem.yaml", "ert.yaml"):
            shutil.copy(os.path.join(src, f), mdir)
        with open(os.path.join(mdir, "mapper.yaml"), "w") as f:
            yaml.safe_dump(mapper_cfg, f, sort_keys=False)
        with open(os.path.join(mdir, "constraints.yaml"), "w") as f:
            yaml.safe_dump(constraints(a.gemmini_rules), f, sort_keys=False)
        # The mapper's result depends only on its inputs and budget, never on dosa's mapping: with
        # --cache it is kept under a hash of those, and a later run (a new dosa) reuses it.
        key = hashlib.sha256()
        for f in ("arch.yaml", "problem.yaml", "ert.yaml", "constraints.yaml"):
            key.update(open(os.path.join(mdir, f), "rb").read())
        key.update(json.dumps({k: v for k, v in mapper_cfg["mapper"].items()
                               if k != "num-threads"}, sort_keys=True).encode())
        key.update(f"budget={a.budget:g}".encode())
        cached = os.path.join(a.cache, key.hexdigest()[:16]) if a.cache else None
        if cached and os.path.exists(os.path.join(cached, "meta.json")):
            print(f"{dname}: timeloop-mapper result from the cache ({cached})", file=sys.stderr)
            shutil.copy(os.path.join(cached, "timeloop-mapper.map.yaml"), mdir)
            meta = json.load(open(os.path.join(cached, "meta.json")))
            cpu, threads = meta["cpu"], meta.get("threads", a.threads)
        elif a.cached_only:
            print(f"{dname}: no cached mapper result; skipped (--cached-only)", file=sys.stderr)
            continue
        else:
            print(f"{dname}: timeloop-mapper ...", file=sys.stderr, flush=True)
            cpu, threads = run_mapper(a.tlbin, mdir, a.budget, a.threads), a.threads
            found = os.path.join(mdir, "timeloop-mapper.map.yaml")
            short = cpu < 0.97 * a.budget
            if short:
                print(f"{dname}: the mapper got only {cpu:.0f} of {a.budget:g} CPU-s (a busy "
                      f"machine); not cached", file=sys.stderr)
            if cached and not short and os.path.exists(found) and os.path.getsize(found) > 0:
                os.makedirs(cached, exist_ok=True)
                shutil.copy(found, cached)
                with open(os.path.join(cached, "meta.json"), "w") as f:
                    json.dump({"layer": layer["name"], "cpu": cpu, "budget": a.budget,
                               "threads": a.threads, "gemmini_rules": a.gemmini_rules}, f)
        best = os.path.join(mdir, "timeloop-mapper.map.yaml")
        tm = None
        if os.path.exists(best) and os.path.getsize(best) > 0:
            rdir = os.path.join(mdir, "rescore")
            os.makedirs(rdir, exist_ok=True)
            for f in ("arch.yaml", "problem.yaml", "ert.yaml"):
                shutil.copy(os.path.join(src, f), rdir)
            shutil.copy(best, os.path.join(rdir, "mapping.yaml"))
            tm = run_model(a.tlbin, rdir, ["arch.yaml", "problem.yaml", "mapping.yaml", "ert.yaml"])
        else:
            print(f"{dname}: the mapper found no valid mapping", file=sys.stderr)
        rows.append({"layer": layer["name"], "count": layer["count"], "dosa": dosa,
                     "alone": alone, "mapper": tm, "cpu": cpu, "threads": threads})
        m_edp = tm[0] * tm[1] if tm else None
        print(f"{dname}: dosa EDP {fmt(dosa[0] * dosa[1])} (alone {fmt(alone[0] * alone[1])}), "
              f"mapper EDP {fmt(m_edp)}, mapper {cpu:.1f} CPU-s", file=sys.stderr, flush=True)

    with open(os.path.join(a.work, "results.json"), "w") as f:
        json.dump(rows, f, indent=1)

    print("| layer | count | dosa EDP, network search | dosa EDP, layer alone "
          "| timeloop-mapper EDP | mapper / dosa alone | mapper CPU s |")
    print("|---|---|---|---|---|---|---|")
    logs = []
    for r in rows:
        a_edp = r["alone"][0] * r["alone"][1]
        m_edp = r["mapper"][0] * r["mapper"][1] if r["mapper"] else None
        ratio = m_edp / a_edp if m_edp else None
        if ratio:
            logs.append(math.log(ratio))
        print(f"| {r['layer']} | {r['count']} | {fmt(r['dosa'][0] * r['dosa'][1])} | "
              f"{fmt(a_edp)} | {fmt(m_edp)} | {(f'{ratio:.4f}' if ratio else 'no mapping')} | "
              f"{r['cpu']:.1f} |")
    print()
    if logs:
        print(f"mapper / dosa alone: geometric mean {math.exp(sum(logs) / len(logs)):.4f}, "
              f"lowest {math.exp(min(logs)):.6f} over {len(logs)} layer(s) (above 1: dosa's "
              f"mapping is better; EDP = cycles x uJ, both scored by timeloop-model)")
        wins = sum(1 for r in rows if r["mapper"] and
                   r["alone"][0] * r["alone"][1] <= r["mapper"][0] * r["mapper"][1])
        print(f"dosa alone <= mapper (exact comparison) on {wins} of {len(logs)} layer(s)")
    both = [r for r in rows if r["mapper"]]
    if both:
        def net(k):
            cyc = sum(r["count"] * r[k][0] for r in both)
            en = sum(r["count"] * r[k][1] for r in both)
            return cyc * en
        print(f"these layers as one network (count-weighted cycles x uJ): dosa {net('dosa'):.4g}, "
              f"mapper {net('mapper'):.4g}, mapper / dosa {net('mapper') / net('dosa'):.3f}")
    cpu = sum(r["cpu"] for r in rows)
    used = sorted({r["threads"] for r in rows})
    print(f"mapper budget {a.budget:g} CPU-s per layer, "
          f"{'/'.join(map(str, used)) if used else a.threads} thread(s)"
          + (", Gemmini's rules (one tile level, C R S innermost at DRAM)" if a.gemmini_rules
             else "")
          + "; "
          f"{cpu:.0f} CPU-s used in all")


if __name__ == "__main__":
    main()
