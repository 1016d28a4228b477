#!/usr/bin/env bash
# mmlearn's set-up, build and the README's two commands. Idempotent: installs only missing Debian packages.
#   ./dev.sh quickstart [args]   install, build, run `mmlearn quickstart`
#   ./dev.sh test                install, build, run the whole test suite (ctest)
#   ./dev.sh build | bench       build only | build and run bench/run.sh
set -euo pipefail
cd "$(dirname "$0")"

packages=(build-essential cmake ninja-build ccache libtorch-dev libopenblas-dev nlohmann-json3-dev libcli11-dev
          libpng-dev libjpeg62-turbo-dev zlib1g-dev libgtest-dev pkg-config libavformat-dev libavcodec-dev
          libswresample-dev libavutil-dev libespeak-ng-dev libgloo-dev libfaiss-dev libsqlite3-dev
          libcpp-httplib-dev)
# The tests and the benchmark compare against reference implementations written in PyTorch / PIL, and against
# the ffmpeg command Whisper loads audio with.
[ "${1:-}" = test ] || [ "${1:-}" = bench ] && packages+=(python3-torch python3-numpy python3-pil ffmpeg)
# The search page's test runs in headless Chromium (tests/browser); the server's load test uses wrk.
[ "${1:-}" = test ] && packages+=(chromium)
[ "${1:-}" = bench ] && packages+=(wrk)

install() {
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}" >&2
    local sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
  # Debian's libtorch calls whatever libblas.so.3 points at; the reference BLAS there is ~15x slower than OpenBLAS.
  local blas
  blas=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || true)
  if [[ "$blas" != *openblas* ]]; then
    local alt
    alt=$(update-alternatives --list libblas.so.3-x86_64-linux-gnu 2>/dev/null | grep -m1 openblas || true)
    [ -n "$alt" ] || { echo "error: OpenBLAS is not installed as libblas.so.3 (apt-get install libopenblas-dev)" >&2; exit 1; }
    local sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
    $sudo update-alternatives --set libblas.so.3-x86_64-linux-gnu "$alt" >&2
    $sudo update-alternatives --set liblapack.so.3-x86_64-linux-gnu "${alt/blas/lapack}" >&2 2>/dev/null || true
  fi
}

# Node (Debian's, unless one is installed) and playwright-core from npm, at the version package-lock.json pins.
browser_test_deps() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    packages=(nodejs npm)
    install
  fi
  [ -d tests/browser/node_modules/playwright-core ] ||
    npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error >&2
}

# build [TARGET]: everything, or one target (the quickstart needs the CLI alone, not the tests).
build() {
  [ -f build/build.ninja ] || cmake -G Ninja -B build -DCMAKE_BUILD_TYPE=Release >&2
  cmake --build build ${1:+--target "$1"} >&2
}

case "${1:-}" in
  quickstart) shift; install; build mmlearn_cli; exec build/mmlearn quickstart "$@" ;;
  test) install; browser_test_deps; build; exec ctest --test-dir build --output-on-failure -j "$(nproc)" ;;
  build) install; build ;;
  bench) shift; install; build; exec bench/run.sh "$@" ;;
  *) echo "usage: ./dev.sh quickstart [args] | test | build | bench" >&2; exit 2 ;;
esac
