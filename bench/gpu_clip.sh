#!/usr/bin/env bash
# clip-vit-b-32 training on one GPU in bf16 at batch 256: mmlearn, built here against PyTorch's own CUDA
# libtorch, and the PyTorch eager peer (bench/clip_peer.py: the same architecture with the fused attention
# kernel, bf16 autocast, batches copied from pinned memory) in the same run, on the same card. Prints both
# samples/s and their ratio. For the device machine:
#   bench/gpu_clip.sh [--steps N] [--batch-size N]
set -euo pipefail
cd "$(dirname "$0")/.."
steps=40
batch=256
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) steps=$2; shift 2 ;;
    --batch-size) batch=$2; shift 2 ;;
    *) echo "usage: bench/gpu_clip.sh [--steps N] [--batch-size N]" >&2; exit 2 ;;
  esac
done
python=${MMLEARN_PYTHON:-python3}
prefix=$("$python" -c 'import torch, torch.utils; assert torch.version.cuda, "PyTorch without CUDA"; print(torch.utils.cmake_prefix_path)')
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader >&2
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S . -B build-cuda "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
  -DMMLEARN_TESTS=OFF -DMMLEARN_BENCH=OFF >&2
cmake --build build-cuda --target mmlearn_cli -j "$(nproc)" >&2
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# Enough records for the steps at 224 px, decoded up front (uint8 in host memory, ~150 kB each).
records=$(( batch * 10 ))
build-cuda/mmlearn --quiet data shapes --out "$out/shapes" --train "$records" --test 16 --image-size 224 >&2
build-cuda/mmlearn --quiet train --preset clip-vit-b-32 --device cuda --precision bf16 --batch-size "$batch" \
  --steps "$steps" --eval-every 100000 --eval-samples 16 --data "$out/shapes/train.jsonl" --out "$out/run" >&2
vocab=$("$python" -c "import json,sys; print(json.load(open(sys.argv[1]))['text']['vocab_size'])" \
  "$out/run/config.json" 2>/dev/null || echo 0)
"$python" bench/clip_peer.py --bench train --preset clip-vit-b-32 --device cuda --batch-size "$batch" \
  --steps "$((steps - 10))" --warmup 10 --vocab-size "$vocab" >"$out/peer.json"
"$python" - "$out" "$batch" <<'PY'
import json, sys
out, batch = sys.argv[1], int(sys.argv[2])
t = [json.loads(l)["seconds"] for l in open(f"{out}/run/metrics.jsonl") if '"loss"' in l]
ours = (len(t) - 11) / (t[-1] - t[10]) * batch  # the first 10 steps are warm-up
peer = json.loads(open(f"{out}/peer.json").read().strip().splitlines()[-1])
print(f"clip-vit-b-32, bf16, batch {batch}, {peer['gpu']}, PyTorch {peer['torch']}")
print(f"mmlearn        {ours:10.1f} samples/s")
print(f"PyTorch eager  {peer['samples_per_s']:10.1f} samples/s")
print(f"ratio          {ours / peer['samples_per_s']:10.2f}x")
PY
