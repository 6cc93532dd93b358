#!/usr/bin/env bash
# Sets everything up, builds, and runs every test. Exit status is non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
tools/build.sh
BUILD_DIR=${BUILD_DIR:-build}

# Every op's gradient against finite differences, as a table.
"$BUILD_DIR"/tapegrad gradcheck

# A user's own project builds against the installed package (find_package(tapegrad)) and runs.
rm -rf "$BUILD_DIR/install" "$BUILD_DIR/example"
cmake --install "$BUILD_DIR" --prefix "$BUILD_DIR/install" >/dev/null
cmake -S tools/examples/train_classifier -B "$BUILD_DIR/example" -DCMAKE_PREFIX_PATH="$PWD/$BUILD_DIR/install" >/dev/null
cmake --build "$BUILD_DIR/example" -- --no-print-directory >/dev/null
"$BUILD_DIR/example/train_classifier"

# GoogleTest suites (ends with CTest's summary line).
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)"
