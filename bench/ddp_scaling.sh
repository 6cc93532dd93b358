#!/usr/bin/env bash
# Data-parallel step time and scaling on this machine: `tapegrad gpt train` as 1 rank and as 2
# ranks under mpirun (1 thread each, --batch-size B per rank, so 2 ranks do twice the work per
# step; with the default 25 MB buckets and with 1 MB ones), and one process with 2 threads on batch B for reference, on nanoGPT's baby GPT and
# shakespeare_char configs. Prints a Markdown table of medians (tokens/s counts every rank).
# Scaling efficiency = tokens/s of 2 ranks / (2 × tokens/s of 1 rank). Then the all-reduce
# alone (bench_allreduce). Usage: bench/ddp_scaling.sh [build dir]   (as root: exports
# OMPI_ALLOW_RUN_AS_ROOT*)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# run NAME NP THREADS ITERS FLAGS...: prints "tokens/s wait_ms"
run() {
  local name=$1 np=$2 threads=$3 iters=$4
  shift 4
  local out
  out=$(mpirun --oversubscribe --bind-to none -n "$np" "$BUILD/tapegrad" gpt train --data data/tinyshakespeare.txt \
        --out "$work/$name" --max-iters "$iters" --eval-interval 0 --eval-iters 1 --warmup-iters 10 \
        --threads "$threads" "$@" 2>/dev/null)
  local tps wait
  tps=$(sed -n 's/.*, \([0-9]*\) tokens\/s (median).*/\1/p' <<<"$out")
  wait=$(sed -n 's/.*: \([0-9.]*\) ms per step waiting.*/\1/p' <<<"$out")
  echo "$tps ${wait:--}"
}

echo "| config | run | tokens/s | step ms | all-reduce wait after backward, ms/step | scaling efficiency |"
echo "|---|---|---:|---:|---:|---:|"
for cfg in "baby GPT (L4 H4 C128 T64 B12)|--n-layer 4 --n-head 4 --n-embd 128 --block-size 64 --batch-size 12|${BABY_ITERS:-200}" \
           "shakespeare_char (L6 H6 C384 T256 B16)|--n-layer 6 --n-head 6 --n-embd 384 --block-size 256 --batch-size 16|${CHAR_ITERS:-30}"; do
  IFS='|' read -r label flags iters <<<"$cfg"
  read -r -a f <<<"$flags"
  tokens_per_step=$(( $(sed -n 's/.*--block-size \([0-9]*\).*/\1/p' <<<"$flags") * $(sed -n 's/.*--batch-size \([0-9]*\).*/\1/p' <<<"$flags") ))
  read -r one _ < <(run one 1 1 "$iters" "${f[@]}")
  read -r two wait2 < <(run two 2 1 "$iters" "${f[@]}")
  read -r small wait_small < <(run small 2 1 "$iters" "${f[@]}" --bucket-cap-mb 1)
  read -r thr _ < <(run thr 1 2 "$iters" "${f[@]}")
  eff=$(python3 -c "print(f'{$two / (2 * $one):.0%}')")
  eff_small=$(python3 -c "print(f'{$small / (2 * $one):.0%}')")
  ms() { python3 -c "print(f'{1e3 * $1 * $2 / $3:.1f}')"; }
  echo "| $label | 1 rank × 1 thread, batch B | $one | $(ms "$tokens_per_step" 1 "$one") | - | |"
  echo "| | 2 ranks × 1 thread, batch B each | $two | $(ms "$tokens_per_step" 2 "$two") | $wait2 | $eff |"
  echo "| | 2 ranks, --bucket-cap-mb 1 | $small | $(ms "$tokens_per_step" 2 "$small") | $wait_small | $eff_small |"
  echo "| | 1 process × 2 threads, batch B | $thr | $(ms "$tokens_per_step" 1 "$thr") | - | |"
done
echo
mpirun --oversubscribe --bind-to none -n 1 "$BUILD/bench_allreduce"
echo
mpirun --oversubscribe --bind-to none -n 2 "$BUILD/bench_allreduce"
