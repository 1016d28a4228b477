#!/usr/bin/env bash
# Data-parallel training on this machine: clip-tiny on the shapes world with one process (all cores) and with
# --nproc 2 (the cores shared), the same global batch. Prints steps/s and, for --nproc 2, the seconds per step
# that rank 0 waits for the gradient all-reduce after its backward pass (metrics.jsonl: allreduce_seconds).
#   bench/data_parallel.sh [--steps N] [--batch-size N]   (build first: cmake --build build)
set -euo pipefail
cd "$(dirname "$0")/.."
steps=60
batch=128
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) steps=$2; shift 2 ;;
    --batch-size) batch=$2; shift 2 ;;
    *) echo "usage: bench/data_parallel.sh [--steps N] [--batch-size N]" >&2; exit 2 ;;
  esac
done
mmlearn=${MMLEARN_CLI:-build/mmlearn}
python=${MMLEARN_PYTHON:-/usr/bin/python3}
[ -x "$mmlearn" ] || { echo "error: $mmlearn not built (cmake --build build)" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" >&2
"$mmlearn" --quiet data shapes --out "$out/shapes" --train 2048 --test 64 >/dev/null
for nproc in 1 2; do
  "$mmlearn" --quiet train --preset clip-tiny --data "$out/shapes" --steps "$steps" --batch-size "$batch" \
    --eval-every 100000 --eval-samples 8 --out "$out/run$nproc" --nproc "$nproc" >"$out/log$nproc" 2>&1 ||
    { cat "$out/log$nproc" >&2; exit 1; }
done
"$python" - "$out" "$steps" "$batch" <<'PY'
import json, statistics, sys
out, steps, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
print(f"clip-tiny, batch {batch}, {steps} steps (the first 10 left out as warm-up)")
print(f"{'workers':>8} {'steps/s':>8} {'samples/s':>10} {'all-reduce s/step':>18}")
for n in (1, 2):
    lines = [json.loads(l) for l in open(f"{out}/run{n}/metrics.jsonl")]
    lines = [l for l in lines if "loss" in l]
    t = [l["seconds"] for l in lines]
    rate = (len(t) - 11) / (t[-1] - t[10])
    wait = statistics.mean(l["allreduce_seconds"] for l in lines[10:]) if n > 1 else None
    print(f"{n:>8} {rate:8.2f} {rate * batch:10.1f} {'-' if wait is None else f'{wait:.4f}':>18}")
PY
