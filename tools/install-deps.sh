#!/usr/bin/env bash
# Installs every Debian package tapegrad needs. Idempotent; quiet when all are present.
set -euo pipefail

packages=(
  build-essential cmake
  libopenblas-dev      # GEMM (cblas_sgemm / cblas_dgemm)
  libtbb-dev           # parallel loops
  libfmt-dev           # formatting
  libgtest-dev         # tests
  libbenchmark-dev     # benches
  libcli11-dev         # command line of `tapegrad`
  nlohmann-json3-dev   # config.json and safetensors headers
  libpcre2-dev         # Unicode regexes of the BPE pre-tokenizer (models/tokenizers/)
  libpng-dev           # pictures
  libopenmpi-dev       # data-parallel training (nn/parallel/)
  openmpi-bin          # mpirun, for the 2-rank test and multi-process training
  clang                # sanitizer build and libFuzzer targets (tools/test.sh, fuzz.sh, tsan.sh)
  libclang-rt-dev      # clang's sanitizer and libFuzzer runtimes
  python3              # bench/compare (its smoke test runs in ctest)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
