#!/usr/bin/env bash
# ThreadSanitizer run of the parallel kernels' tests: builds test_ops (every op, TBB-parallel
# kernels, attention variants) and test_autograd with -fsanitize=thread in build-tsan/ and runs
# them with 2 threads. Not part of tools/test.sh (too slow for its 15-minute budget on 2 cores:
# a whole extra build and TSan's 5-15x slowdown).
#
#   tools/tsan.sh                       # test_ops and test_autograd
#   tools/tsan.sh test_nn               # other test binaries
#   TSAN_FILTER='Attention*' tools/tsan.sh   # a --gtest_filter
#
# TBB and OpenBLAS are not instrumented, so TSan cannot see their own synchronisation: the
# reports that stem from it are suppressed in tools/tsan.supp, one commented entry each.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${TSAN_BUILD_DIR:-build-tsan}
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(test_ops test_autograd)
CXX=${TSAN_CXX:-$(command -v clang++ || echo g++)}

if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  CXX=$CXX cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
    -DTAPEGRAD_SANITIZE=thread -DTAPEGRAD_BUILD_BENCH=OFF >/dev/null
fi
nice -n 10 cmake --build "$BUILD_DIR" -j 2 --target "${targets[@]}" -- --no-print-directory

export TSAN_OPTIONS="suppressions=$PWD/tools/tsan.supp halt_on_error=0 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"
status=0
for t in "${targets[@]}"; do
  echo "tsan: $t"
  "$BUILD_DIR/$t" --gtest_brief=1 ${TSAN_FILTER:+--gtest_filter="$TSAN_FILTER"} || status=1
done
[ $status -eq 0 ] && echo "tsan: no data race reported" || echo "tsan: FAILED (races above)"
exit $status
