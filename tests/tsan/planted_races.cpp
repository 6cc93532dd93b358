// tools/tsan.sh's check that its ThreadSanitizer build can see what it claims to: run with one
// case name, it exits 0 when TSan reports nothing and 66 (TSan's exit code) when it reports a
// race. tsan.sh expects a report from each planted race and none from the race-free cases, so
// "no data race reported" in the real tests means something.
//
//   tsan_planted_races clean-parallel-for   # disjoint writes through TBB: no report expected
//   tsan_planted_races clean-gemm-batched   # distinct C per product: no report expected
//   tsan_planted_races race-parallel-for    # every task adds to one int: a report expected
//   tsan_planted_races race-gemm-batched    # overlapping C in one batch: a report expected
#include <cstdio>
#include <cstring>
#include <vector>

#include "ops/kernels/gemm.h"
#include "ops/kernels/parallel.h"

namespace {

using tg::kernels::gemm_batched;
using tg::kernels::parallel_for;

// Each case repeats its parallel call, so that TBB's second thread is awake and takes part (a
// short loop may run entirely on the calling thread, and then there is nothing to report).
constexpr int kRepeats = 200;

// 64 small products (each far below kParallelBatchFlops, so they run as parallel TBB tasks),
// C[i] starting `c_step` floats apart in one buffer: 16 * 16 apart is disjoint, 1 apart overlaps.
float batched(int64_t c_step) {
  constexpr int64_t n = 16, batch = 64;
  std::vector<float> a(n * n, 1.0f), b(n * n, 2.0f), c(n * n * batch + n * n, 0.0f);
  std::vector<const float*> as(batch, a.data()), bs(batch, b.data());
  std::vector<float*> cs;
  for (int64_t i = 0; i < batch; ++i) cs.push_back(c.data() + i * c_step);
  for (int rep = 0; rep < kRepeats; ++rep)
    gemm_batched(false, false, n, n, n, 1.0f, as.data(), n, bs.data(), n, 0.0f, cs.data(), n, batch);
  return c[0];
}

float loop(bool racy) {
  std::vector<float> out(1 << 16, 0.0f);
  int shared = 0;
  for (int rep = 0; rep < kRepeats; ++rep)
    parallel_for(0, int64_t(out.size()), 1024, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) out[i] = float(i + rep);
      if (racy) shared += 1;  // unsynchronised read-modify-write from every task
    });
  return out[7] + float(shared);
}

}  // namespace

int main(int argc, char** argv) {
  tg::set_num_threads(2);
  const char* what = argc > 1 ? argv[1] : "";
  float r;
  if (!std::strcmp(what, "clean-parallel-for")) r = loop(false);
  else if (!std::strcmp(what, "race-parallel-for")) r = loop(true);
  else if (!std::strcmp(what, "clean-gemm-batched")) r = batched(16 * 16);
  else if (!std::strcmp(what, "race-gemm-batched")) r = batched(1);
  else {
    std::fprintf(stderr, "tsan_planted_races: unknown case '%s'\n", what);
    return 2;
  }
  std::printf("%s: %g\n", what, r);
  return 0;
}
