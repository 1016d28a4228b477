#!/usr/bin/env bash
# Runs mmlearn's benchmarks and the same work in PyTorch eager on this machine, and prints the ratios.
#   bench/run.sh [--threads N] [--steps N] [--repeat N]   (build first: cmake --build build --target mmlearn_bench)
# The two sides alternate --repeat times (default 3), so that a slow spell of a shared machine hits both; the
# table shows the median of the paired ratios and their range.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=$(nproc)
steps=10
repeat=3
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --repeat) repeat=$2; shift 2 ;;
    *) echo "usage: bench/run.sh [--threads N] [--steps N] [--repeat N]" >&2; exit 2 ;;
  esac
done
bench=${MMLEARN_BENCH:-build/bench/mmlearn_bench}
python=${MMLEARN_PYTHON:-/usr/bin/python3}
[ -x "$bench" ] || { echo "error: $bench not built (cmake --build build --target mmlearn_bench)" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), threads $threads" >&2
for r in $(seq "$repeat"); do
  which=all
  [ "$r" -gt 1 ] && which=models  # the shapes generator has no peer: one run is enough
  "$bench" --bench "$which" --threads "$threads" --steps "$steps" | sed "s/}\$/,\"repeat\":$r}/" |
    tee -a "$out/mmlearn.jsonl" >&2
  for peer in clip_peer whisper_peer captioner_peer blip_peer unet_peer; do
    "$python" "bench/$peer.py" --bench all --threads "$threads" --steps "$steps" | sed "s/}\$/, \"repeat\": $r}/" |
      tee -a "$out/peer.jsonl" >&2
  done
done
"$python" - "$out/mmlearn.jsonl" "$out/peer.jsonl" <<'PY'
import json, statistics, sys
ours = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
peer = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
def rate(r):
    return r.get("samples_per_s") or r.get("images_per_s") or r.get("records_per_s") or r.get("windows_per_s")
def key(r):
    return r["bench"] + (" bf16" if r["impl"].endswith("bf16") else " fp32")
print(f"{'bench':24} {'mmlearn':>10} {'pytorch eager':>14} {'ratio':>7}  {'range':>11}")
for r in ours:
    if r["bench"] == "data_shapes":
        print(f"{'data_shapes (records/s)':24} {rate(r):10.1f} {'-':>14} {'-':>7}")
names = list(dict.fromkeys(key(r) for r in ours if r["bench"] != "data_shapes"))
for name in names:
    pairs = [(rate(o), rate(p)) for o in ours for p in peer
             if key(o) == name and key(p) == name and o["repeat"] == p["repeat"]]
    if not pairs:
        continue
    ratios = [o / p for o, p in pairs]
    print(f"{name:24} {statistics.median(o for o, _ in pairs):10.2f} {statistics.median(p for _, p in pairs):14.2f} "
          f"{statistics.median(ratios):6.2f}x  {min(ratios):.2f}-{max(ratios):.2f}x")
PY
