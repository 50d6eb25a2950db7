#!/usr/bin/env bash
# dosa's mappings vs Timeloop's own mapper, on fixed Gemmini (16x16 PEs, 256 KiB scratchpad and
# 64 KiB accumulator physical, 128 / 32 KiB usable), both scored by timeloop-model.
#
#   bench/mapper_vs_timeloop.sh [NET.dosa] [--layers N] [--skip K] [--budget SECONDS] [--threads T]
#                               [--gemmini-rules] [--keep DIR] [--cache DIR [--cached-only]]
#
# 1. `dosa search` maps NET (default examples/resnet50.dosa) onto examples/gemmini.dosa with
#    `--hardware fixed`; `dosa emit timeloop --format v0.3` writes each layer's arch/problem/
#    mapping/ert YAML.
# 2. Per layer (the first N with --layers N, leaving out the first K with --skip K, so that two
#    runs can share a cache and split a network's layers): timeloop-mapper (random-pruned, EDP) runs on the same
#    arch/problem/ert with mapspace constraints matching what dosa may do on Gemmini, for about
#    --budget CPU-seconds (default 480), stopped with SIGINT (it then writes its best mapping);
#    its best mapping and dosa's are both rescored with timeloop-model. --gemmini-rules adds the
#    two rules of Gemmini's C library that dosa obeys: no temporal loop at the Scratchpad (one
#    tile level) and split reduction loops innermost at DRAM (fixed as C, R, S from the inside).
#    Without it both sides search the same free mapspace: dosa runs with `--mapspace free`
#    (Timeloop's rules only; `emit gemmini` refuses what Gemmini cannot run).
#    --cache DIR keeps each mapper result under a hash of its inputs and budget and reuses it: the
#    mapper's side does not depend on dosa, so a rerun after a dosa change takes seconds;
#    --cached-only skips the layers the cache lacks instead of running the mapper.
# 3. Prints a markdown table (EDP = cycles x uJ) and the geometric mean of mapper/dosa.
#
# Needs: python3 with PyYAML, coreutils `timeout`, the dosa binary ($DOSA, else
# target/release/dosa; build it with `cargo build --release`) and Timeloop's v0.3 binaries
# ($TIMELOOP_BIN, else $DOSA_SHARED/timeloop/bin, else ../shared/timeloop/bin beside the checkout).
# NET must not define its own `arch` (the program imports examples/gemmini.dosa). Not run by CI:
# it takes about --budget / threads wall seconds per layer.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"

die() { echo "mapper_vs_timeloop: error: $*" >&2; exit 2; }

net="$repo/examples/resnet50.dosa"
layers=0
skip=0
budget=480
threads="$(nproc 2>/dev/null || echo 2)"
keep=""
rules=()
mapspace=(--mapspace free)
cache=()
only=()
while [ $# -gt 0 ]; do
  case "$1" in
    --layers) [ $# -ge 2 ] || die "--layers needs a value"; layers="$2"; shift 2 ;;
    --skip) [ $# -ge 2 ] || die "--skip needs a value"; skip="$2"; shift 2 ;;
    --budget) [ $# -ge 2 ] || die "--budget needs a value"; budget="$2"; shift 2 ;;
    --threads) [ $# -ge 2 ] || die "--threads needs a value"; threads="$2"; shift 2 ;;
    --gemmini-rules) rules=(--gemmini-rules); mapspace=(); shift ;;
    --cache) [ $# -ge 2 ] || die "--cache needs a value"; mkdir -p "$2"; cache=(--cache "$(cd "$2" && pwd)"); shift 2 ;;
    --cached-only) only=(--cached-only); shift ;;
    --keep) [ $# -ge 2 ] || die "--keep needs a value"; keep="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) net="$1"; shift ;;
  esac
done
[[ "$layers" =~ ^[0-9]+$ ]] || die "--layers must be a whole number, got '$layers'"
[[ "$skip" =~ ^[0-9]+$ ]] || die "--skip must be a whole number, got '$skip'"
[[ "$budget" =~ ^[0-9]+([.][0-9]+)?$ ]] || die "--budget must be a number of seconds, got '$budget'"
[[ "$threads" =~ ^[1-9][0-9]*$ ]] || die "--threads must be a positive whole number, got '$threads'"
[ -f "$net" ] || die "network file not found: $net"
net="$(cd "$(dirname "$net")" && pwd)/$(basename "$net")"

dosa="${DOSA:-$repo/target/release/dosa}"
[ -x "$dosa" ] || die "dosa binary not found at $dosa (run \`cargo build --release\` or set DOSA)"
tlbin="${TIMELOOP_BIN:-${DOSA_SHARED:-$repo/../shared}/timeloop/bin}"
for b in timeloop-mapper timeloop-model; do
  [ -x "$tlbin/$b" ] || die "$b not found in $tlbin (set TIMELOOP_BIN to the folder holding it)"
done
command -v python3 >/dev/null || die "python3 not found"
python3 -c 'import yaml' 2>/dev/null || die "python3 lacks PyYAML (pip install pyyaml)"
command -v timeout >/dev/null || die "coreutils timeout not found"

if [ -n "$keep" ]; then
  mkdir -p "$keep"
  work="$(cd "$keep" && pwd)"
else
  work="$(mktemp -d "${TMPDIR:-/tmp}/mapper_vs_timeloop.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
fi

# The program: Gemmini's fixed sizes plus the network.
cat > "$work/program.dosa" <<DOSA
import "$repo/examples/gemmini.dosa"
import "$net"
DOSA

echo "dosa search (fixed Gemmini) on $(basename "$net") ..." >&2
"$dosa" search "$work/program.dosa" --hardware fixed "${mapspace[@]}" -o "$work/search" --no-timing > "$work/search.log" 2>&1 \
  || { cat "$work/search.log" >&2; die "dosa search failed"; }
"$dosa" emit timeloop "$work/search/result.dosa" --format v0.3 -o "$work/tl" > "$work/emit.log" 2>&1 \
  || { cat "$work/emit.log" >&2; die "dosa emit timeloop failed"; }

python3 "$here/mapper_vs_timeloop.py" --work "$work" --tlbin "$tlbin" --layers "$layers" --skip "$skip" \
  --budget "$budget" --threads "$threads" "${rules[@]}" "${cache[@]}" "${only[@]}"
