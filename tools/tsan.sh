#!/usr/bin/env bash
# ThreadSanitizer run of the parallel kernels' tests: builds test_ops (every op, TBB-parallel
# kernels, attention variants) and test_autograd with -fsanitize=thread in build-tsan/ and runs
# them with the default thread count (the number of cores; the tests that compare 1 and 2
# threads set them). Any report fails the run. Not part of tools/test.sh (see README,
# "Reliability", for how long it takes).
#
#   tools/tsan.sh                            # test_ops and test_autograd
#   tools/tsan.sh test_nn test_models        # other test binaries
#   TSAN_FILTER='Attention*' tools/tsan.sh   # a --gtest_filter
#
# TSan sees only instrumented code, so for the libraries whose threads meet ours:
# - oneTBB: Debian's own source package of the installed version (apt-get source onetbb, which
#   needs a deb-src line; one is added if missing) is built once with -fsanitize=thread into
#   build-tsan/tbb/ (kept; delete the directory to rebuild) and the TSan build links it.
#   tbbmalloc is left out, so TBB's allocator falls back to malloc, which TSan intercepts.
# - OpenBLAS stays Debian's threaded build, as in every other build: its own threads' accesses
#   are invisible to TSan (neither reported nor checked), but what each GEMM reads and writes
#   is declared to TSan at the call (ops/kernels/gemm.cpp), so two tasks racing on one matrix
#   through BLAS are reported. (Debian's serial OpenBLAS is no way out: OpenBLAS built
#   single-threaded without USE_LOCKING is not safe to call from two threads at once, which
#   gemm_batched does, and a run with it computed wrong values; see README, "Reliability".)
# tools/tsan.supp holds the suppressions (none today), each with its reason.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=$(realpath -m "${TSAN_BUILD_DIR:-build-tsan}")
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(test_ops test_autograd)
CXX=${TSAN_CXX:-clang++}
CC=${TSAN_CC:-clang}
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

# ---- oneTBB with -fsanitize=thread, from Debian's source of the installed libtbb-dev ---------
TBB_PREFIX=$BUILD_DIR/tbb
tbb_version=$(dpkg-query -W -f='${Version}' libtbb-dev)
if [ ! -f "$TBB_PREFIX/.built-$tbb_version" ]; then
  echo "tsan: building oneTBB $tbb_version with -fsanitize=thread (once)"
  if ! apt-cache showsrc onetbb 2>/dev/null | grep -qx "Version: $tbb_version"; then
    codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
    printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: %s %s-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$codename" "$codename" | $SUDO tee /etc/apt/sources.list.d/tapegrad-deb-src.sources >/dev/null
    $SUDO apt-get update -qq
  fi
  [ -x "$(command -v dpkg-source)" ] || $SUDO apt-get install -y -qq --no-install-recommends dpkg-dev >/dev/null
  src=$BUILD_DIR/tbb-src
  rm -rf "$src" "$TBB_PREFIX" && mkdir -p "$src"
  # apt checks the files against the archive's signed index; dpkg-source then applies Debian's
  # patches (the maintainer's signature on the .dsc is not checked again).
  (cd "$src" && apt-get source -qq --download-only "onetbb=$tbb_version" &&
     dpkg-source -x --no-check ./*.dsc onetbb >/dev/null) ||
    { echo "tsan: could not fetch Debian's source of onetbb $tbb_version"; exit 1; }
  # TBB_SANITIZE is oneTBB's own option (cmake/sanitize.cmake).
  CC=$CC CXX=$CXX cmake -S "$src/onetbb" -B "$src/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DTBB_SANITIZE=thread -DTBB_TEST=OFF -DTBB_STRICT=OFF -DTBBMALLOC_BUILD=OFF \
    -DTBB_DISABLE_HWLOC_AUTOMATIC_SEARCH=ON -DCMAKE_INSTALL_PREFIX="$TBB_PREFIX" \
    -DCMAKE_INSTALL_LIBDIR=lib "${launcher[@]}" >/dev/null
  nice -n 10 cmake --build "$src/build" -j 2 -- --no-print-directory >"$src/build.log" 2>&1 ||
    { tail -30 "$src/build.log"; echo "tsan: the oneTBB build failed"; exit 1; }
  cmake --install "$src/build" >/dev/null
  rm -rf "$src"
  touch "$TBB_PREFIX/.built-$tbb_version"
fi

# ---- tapegrad with -fsanitize=thread, against that TBB ------------------------------------------
CXX=$CXX cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
  -DTAPEGRAD_SANITIZE=thread -DTAPEGRAD_BUILD_BENCH=OFF -DTBB_DIR="$TBB_PREFIX/lib/cmake/TBB" \
  "${launcher[@]}" >/dev/null
# clang's warnings go to the log, not the screen (as in tools/test.sh).
nice -n 10 cmake --build "$BUILD_DIR" -j 2 --target tsan_planted_races "${targets[@]}" -- --no-print-directory \
  >"$BUILD_DIR/build.log" 2>&1 || { tail -50 "$BUILD_DIR/build.log"; echo "tsan: the build failed"; exit 1; }

export TSAN_OPTIONS="suppressions=$PWD/tools/tsan.supp halt_on_error=0 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"

# Refuses to run a binary against Debian's uninstrumented libtbb.
check_libraries() {
  ldd "$BUILD_DIR/$1" | grep -q "$TBB_PREFIX/lib/libtbb" ||
    { echo "tsan: $1 does not load $TBB_PREFIX/lib/libtbb"; exit 1; }
}

# First, that this build sees what it must: races planted in a TBB loop and in a batch of
# GEMMs are reported (TSan's exit code 66), the same loops without the race are not.
check_libraries tsan_planted_races
for case in clean-parallel-for:0 clean-gemm-batched:0 race-parallel-for:66 race-gemm-batched:66; do
  rc=0
  "$BUILD_DIR/tsan_planted_races" "${case%:*}" >"$BUILD_DIR/planted-${case%:*}.log" 2>&1 || rc=$?
  [ "$rc" = "${case#*:}" ] ||
    { cat "$BUILD_DIR/planted-${case%:*}.log"; echo "tsan: ${case%:*} exited $rc, expected ${case#*:}: this TSan build cannot be trusted"; exit 1; }
done
echo "tsan: planted races reported, race-free twins clean"

# Each binary runs in the build directory, as under CTest (some tests find fixtures from there).
# TSan makes the exit status 66 when it reported anything; other failures are the tests' own.
raced=() failed=()
for t in "${targets[@]}"; do
  check_libraries "$t"
  echo "tsan: $t"
  start=$SECONDS rc=0
  (cd "$BUILD_DIR" && "./$t" --gtest_brief=1 ${TSAN_FILTER:+--gtest_filter="$TSAN_FILTER"}) || rc=$?
  echo "tsan: $t took $((SECONDS - start)) s"
  if [ $rc -eq 66 ]; then raced+=("$t"); elif [ $rc -ne 0 ]; then failed+=("$t"); fi
done
[ ${#failed[@]} -gt 0 ] && echo "tsan: tests FAILED in ${failed[*]}"
[ ${#raced[@]} -gt 0 ] && echo "tsan: data races REPORTED by ${raced[*]} (above)"
[ ${#raced[@]} -eq 0 ] && [ ${#failed[@]} -eq 0 ] && echo "tsan: no data race reported"
[ ${#raced[@]} -eq 0 ] && [ ${#failed[@]} -eq 0 ]
