#!/usr/bin/env bash
# Streaming from WebDataset shards against pre-decoded data: clip-tiny on the shapes world, trained once from
# its manifest (every image decoded and resized before the first step, held in memory as uint8 tensors) and
# once from the same records packed into shards (each batch read from the tar files and decoded on the
# loader's threads while the previous step trains). Prints steps/s of both and their ratio.
#   bench/shards.sh [--steps N] [--batch-size N] [--loader-threads N]   (build first: cmake --build build)
set -euo pipefail
cd "$(dirname "$0")/.."
steps=60
batch=128
loader=()
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) steps=$2; shift 2 ;;
    --batch-size) batch=$2; shift 2 ;;
    --loader-threads) loader=(--loader-threads "$2"); shift 2 ;;
    *) echo "usage: bench/shards.sh [--steps N] [--batch-size N] [--loader-threads N]" >&2; exit 2 ;;
  esac
done
mmlearn=${MMLEARN_CLI:-build/mmlearn}
python=${MMLEARN_PYTHON:-/usr/bin/python3}
[ -x "$mmlearn" ] || { echo "error: $mmlearn not built (cmake --build build)" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" >&2
"$mmlearn" --quiet data shapes --out "$out/shapes" --train 4096 --test 64 >/dev/null
"$mmlearn" --quiet data pack --data "$out/shapes" --out "$out/shards" --per-shard 512 >/dev/null
for source in decoded shards; do
  data=$out/shapes/train.jsonl
  [ "$source" = shards ] && data="$out/shards/{000000..000007}.tar"
  "$mmlearn" --quiet train --preset clip-tiny --data "$data" --steps "$steps" --batch-size "$batch" \
    "${loader[@]}" --out "$out/$source" >"$out/log-$source" 2>&1 || { cat "$out/log-$source" >&2; exit 1; }
done
"$python" - "$out" "$steps" "$batch" <<'PY'
import json, sys
out, steps, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
print(f"clip-tiny, batch {batch}, {steps} steps (the first 10 left out as warm-up)")
print(f"{'data':>32} {'steps/s':>8} {'samples/s':>10}")
rates = {}
for source, label in (("decoded", "pre-decoded (manifest)"), ("shards", "streamed from 8 shards")):
    t = [json.loads(l)["seconds"] for l in open(f"{out}/{source}/metrics.jsonl") if '"loss"' in l]
    rates[source] = (len(t) - 11) / (t[-1] - t[10])
    print(f"{label:>32} {rates[source]:8.2f} {rates[source] * batch:10.1f}")
print(f"streamed / pre-decoded: {rates['shards'] / rates['decoded']:.3f}")
PY
