#!/usr/bin/env bash
# Sets everything up, builds, and runs the main job: trains nanoGPT's "baby GPT" on tiny
# Shakespeare (a few minutes on 2 cores, with a progress bar), then prints a sample of its text.
# Extra arguments go to `tapegrad gpt train` (e.g. --max-iters 500 --attention flash).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
tools/build.sh
BUILD_DIR=${BUILD_DIR:-build}
OUT=${OUT:-runs/baby-gpt}
"$BUILD_DIR"/tapegrad gpt train --data data/tinyshakespeare.txt --out "$OUT" \
  --n-layer 4 --n-head 4 --n-embd 128 --block-size 64 --batch-size 12 --dropout 0 \
  --max-iters 2000 --lr 1e-3 --min-lr 1e-4 --warmup-iters 100 --beta2 0.99 --weight-decay 0.1 \
  --grad-clip 1.0 --eval-interval 250 --eval-iters 20 --log "$OUT.csv" "$@"
echo "--- a sample of its text:"
"$BUILD_DIR"/tapegrad gpt sample --checkpoint "$OUT" --max-new-tokens 500 --seed 1
