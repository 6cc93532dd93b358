#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ (one per parser of outside input) with clang,
# AddressSanitizer and UndefinedBehaviorSanitizer, and runs each for a bounded time from its
# committed seed corpus (fuzz/corpus/<target>/). Exit status is non-zero on any finding: a crash,
# a sanitizer report, a leak, an exception other than tg::Error (CLI::ParseError for the command
# line), an input slower than -timeout, or an allocation beyond -malloc_limit_mb.
#
#   tools/fuzz.sh                 # every target, 20 s each (one per core at a time), in build-fuzz/
#   tools/fuzz.sh 60 fuzz_cli     # one target for 60 s
#   FUZZ_BUILD_DIR=build-asan tools/fuzz.sh 10   # reuse a clang build configured with
#                                 # -DTAPEGRAD_SANITIZE=address,undefined -DTAPEGRAD_BUILD_FUZZ=ON
#
# New inputs found go to $FUZZ_BUILD_DIR/fuzz-corpus/<target>/ (not the committed corpus); a
# crashing input is written to $FUZZ_BUILD_DIR/fuzz-artifacts/ and its path printed. Make it a
# regression test in tests/ (and, once fixed, add it to fuzz/corpus/<target>/).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-${FUZZ_TIME:-20}}
shift || true
BUILD_DIR=${FUZZ_BUILD_DIR:-build-fuzz}
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in fuzz/fuzz_*.cpp; do targets+=("$(basename "$f" .cpp)"); done
fi

if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  CXX=${FUZZ_CXX:-clang++} cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DTAPEGRAD_SANITIZE=address,undefined \
    -DTAPEGRAD_BUILD_FUZZ=ON -DTAPEGRAD_BUILD_TESTS=OFF -DTAPEGRAD_BUILD_BENCH=OFF >/dev/null
fi
nice -n 10 cmake --build "$BUILD_DIR" -j 2 --target "${targets[@]}" -- --no-print-directory >/dev/null

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# One target's run: its log in $BUILD_DIR/fuzz-<target>.log and its exit status (0 unless it
# found something) in fuzz-<target>.status.
# -malloc_limit_mb: no single allocation of a size a header merely claims;
# -timeout: no input takes more than 10 s (a hang); -rss_limit_mb: total memory.
fuzz_one() {
  local t=$1 work="$BUILD_DIR/fuzz-corpus/$1" artifacts="$BUILD_DIR/fuzz-artifacts" status=0
  mkdir -p "$work" "$artifacts"
  "$BUILD_DIR/$t" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
    -malloc_limit_mb=256 -max_len=4096 -print_final_stats=1 -artifact_prefix="$artifacts/$t-" \
    "$work" "fuzz/corpus/$t" >"$BUILD_DIR/fuzz-$t.log" 2>&1 || status=$?
  echo "$status" >"$BUILD_DIR/fuzz-$t.status"
}
# As many targets at a time as there are cores (a fuzzer is one process on one core); then each
# is reported in order.
for t in "${targets[@]}"; do
  rm -f "$BUILD_DIR/fuzz-$t.status"
  while [ "$(jobs -rp | wc -l)" -ge "$(nproc)" ]; do wait -n || true; done
  fuzz_one "$t" &
done
wait
failed=()
for t in "${targets[@]}"; do
  log="$BUILD_DIR/fuzz-$t.log"
  if [ "$(cat "$BUILD_DIR/fuzz-$t.status" 2>/dev/null)" = 0 ]; then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
    echo "fuzz: $t: ok, $runs inputs in ${SECONDS_PER_TARGET}s ($cov)"
  else
    echo "fuzz: $t: FINDING (log: $log)"
    grep -E "ERROR|SUMMARY|Test unit written|runtime error|terminate|what\(\)" "$log" | head -20 || tail -30 "$log"
    failed+=("$t")
  fi
done
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz: findings in ${failed[*]}"
  exit 1
fi
