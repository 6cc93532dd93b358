#!/usr/bin/env bash
# Sets everything up, builds, and runs the main job: the gradient check of every op.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
tools/build.sh
BUILD_DIR=${BUILD_DIR:-build}
exec "$BUILD_DIR"/tapegrad gradcheck "$@"
