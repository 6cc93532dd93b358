#!/usr/bin/env bash
# Sets everything up, builds, and runs every test. Exit status is non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
tools/build.sh
BUILD_DIR=${BUILD_DIR:-build}
"$BUILD_DIR"/tapegrad gradcheck
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)"
