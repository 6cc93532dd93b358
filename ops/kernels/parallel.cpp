#include "ops/kernels/parallel.h"

#include <cblas.h>
#include <tbb/blocked_range.h>
#include <tbb/global_control.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_invoke.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

namespace tg {
namespace {

struct ThreadSetting {
  std::mutex mu;
  std::atomic<int> n{0};  // 0 = not yet initialised
  std::unique_ptr<tbb::global_control> tbb_limit;
};

ThreadSetting& setting() {
  static ThreadSetting s;
  return s;
}

void apply(ThreadSetting& s, int n) {
  s.n = n;
  s.tbb_limit = std::make_unique<tbb::global_control>(
      tbb::global_control::max_allowed_parallelism, static_cast<size_t>(n));
  openblas_set_num_threads(1);  // always: TBB owns the threads (see parallel.h)
}

int default_threads() {
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

}  // namespace

void set_num_threads(int n) {
  if (n < 1)
    throw std::invalid_argument("set_num_threads: need at least 1 thread, got " + std::to_string(n));
  auto& s = setting();
  std::lock_guard lock(s.mu);
  apply(s, n);
}

int get_num_threads() {
  auto& s = setting();
  // Fast path after the first call: n is only written under the mutex.
  if (s.n != 0) return s.n;
  std::lock_guard lock(s.mu);
  if (s.n == 0) apply(s, default_threads());
  return s.n;
}

namespace kernels::detail {

void parallel_chunks(int64_t begin, int64_t end, int64_t grain, ChunkBody body, const void* ctx) {
  tbb::parallel_for(tbb::blocked_range<int64_t>(begin, end, grain),
                    [&](const tbb::blocked_range<int64_t>& r) {
                      ParallelRegion region;
                      body(ctx, r.begin(), r.end());
                    });
}

void parallel_pair(TaskBody f, const void* fctx, TaskBody g, const void* gctx) {
  tbb::parallel_invoke(
      [&] {
        ParallelRegion region;
        f(fctx);
      },
      [&] {
        ParallelRegion region;
        g(gctx);
      });
}

}  // namespace kernels::detail
}  // namespace tg
