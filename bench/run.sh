#!/usr/bin/env bash
# Runs mmlearn's benchmarks and the same work in PyTorch eager on this machine, and prints the ratios.
#   bench/run.sh [--threads N] [--steps N]      (build first: cmake --build build --target mmlearn_bench)
set -euo pipefail
cd "$(dirname "$0")/.."
threads=$(nproc)
steps=10
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    *) echo "usage: bench/run.sh [--threads N] [--steps N]" >&2; exit 2 ;;
  esac
done
bench=${MMLEARN_BENCH:-build/bench/mmlearn_bench}
python=${MMLEARN_PYTHON:-/usr/bin/python3}
[ -x "$bench" ] || { echo "error: $bench not built (cmake --build build --target mmlearn_bench)" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), threads $threads" >&2
"$bench" --bench all --threads "$threads" --steps "$steps" | tee "$out/mmlearn.jsonl" >&2
"$python" bench/clip_peer.py --bench all --threads "$threads" --steps "$steps" | tee "$out/peer.jsonl" >&2
"$python" - "$out/mmlearn.jsonl" "$out/peer.jsonl" <<'PY'
import json, sys
ours = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
peer = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
def rate(r):
    return r.get("samples_per_s") or r.get("images_per_s") or r.get("records_per_s")
print(f"{'bench':24} {'mmlearn':>12} {'pytorch eager':>14} {'ratio':>7}")
for r in ours:
    if r["bench"] == "data_shapes":
        print(f"{'data_shapes (records/s)':24} {rate(r):12.1f} {'-':>14} {'-':>7}")
        continue
    for p in peer:
        if p["bench"] == r["bench"] and p["impl"].endswith("bf16") == r["impl"].endswith("bf16"):
            name = r["bench"] + (" bf16" if r["impl"].endswith("bf16") else " fp32")
            print(f"{name:24} {rate(r):12.2f} {rate(p):14.2f} {rate(r) / rate(p):6.2f}x")
PY
