#!/usr/bin/env bash
# Load test of `mmlearn serve` from a second process on loopback (wrk): text search and image embedding, each
# for SECONDS, after a warm-up. Prints wrk's requests/s and latency percentiles, the errors (non-2xx answers
# and socket errors) and the server's resident memory every 10 s of each run.
#   bench/serve_load.sh [--model DIR --index DIR --image PNG] [--seconds 60] [--connections 8]
# Without --model it makes a shapes set, trains clip-tiny for 300 steps and indexes the held-out images.
set -euo pipefail
cd "$(dirname "$0")/.."
cli=build/mmlearn
model="" index="" image="" seconds=60 connections=8
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model=$2; shift 2 ;;
    --index) index=$2; shift 2 ;;
    --image) image=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    *) echo "usage: $0 [--model DIR --index DIR --image PNG] [--seconds N] [--connections N]" >&2; exit 2 ;;
  esac
done
command -v wrk >/dev/null || { echo "error: wrk is not installed (apt-get install wrk)" >&2; exit 1; }
work=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
if [ -z "$model" ]; then
  $cli --quiet data shapes --out "$work/shapes" --train 5000 --test 1000
  $cli --quiet train --preset clip-tiny --data "$work/shapes" --steps 300 --out "$work/clip" >/dev/null
  $cli --quiet index build --model "$work/clip" --data "$work/shapes/test.jsonl" --out "$work/idx"
  model=$work/clip index=$work/idx image=$work/shapes/images/test/000001.png
fi

$cli --quiet serve --model "$model" --index "$index" --port 0 --json >"$work/ready" &
server=$!
until [ -s "$work/ready" ]; do kill -0 $server || exit 1; sleep 0.2; done
url=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['url'])" "$work/ready")
rss() { awk '/VmRSS/ {print $2 "kB"}' "/proc/$server/status"; }

# wrk's request bodies: a text search, and an image to embed (base64 in JSON).
cat >"$work/search.lua" <<'EOF'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"text": "a large red star", "k": 10}'
EOF
python3 - "$image" "$work/embed.lua" <<'EOF'
import base64, json, sys
body = json.dumps({"input": [{"image": base64.b64encode(open(sys.argv[1], "rb").read()).decode()}]})
open(sys.argv[2], "w").write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                             "wrk.body = [[" + body + "]]\n")
EOF

for run in search:/v1/search embed:/v1/embeddings; do
  name=${run%%:*} route=${run#*:}
  wrk -t2 -c"$connections" -d10s -s "$work/$name.lua" "$url$route" >/dev/null  # warm-up
  echo "== $name ($route): $connections connections, ${seconds} s"
  # The server's memory every 10 s of the run: growth would show as a rising series.
  (for _ in $(seq 0 10 "$seconds"); do rss; sleep 10; done | paste -sd' ' | sed 's/^/server memory every 10 s: /') &
  sampler=$!
  wrk -t2 -c"$connections" -d"${seconds}s" --latency -s "$work/$name.lua" "$url$route" |
    grep -E "Requests/sec|Latency  |50%|90%|99%|Non-2xx|Socket errors|requests in"
  wait $sampler
done
curl -s "$url/metrics" | grep -E '^mmlearn_requests_total|^mmlearn_batch_inputs_(sum|count)' || true
