#pragma once
// Rows a kernel will read (or write) next, asked of the caches a few at a time between the steps
// of its current work, so that their misses overlap its arithmetic.
//
// Why a few at a time: one head's rows of a [B, T, H, D] tensor lie H·D floats apart, too sparse
// for the hardware prefetcher, and a tile's 64 rows are 256 cache lines or more at D = 64. Asked
// for all at once, the prefetches wait for the core's few miss buffers and stall the work they
// should hide behind: in the tiled flash forward (one thread, sliding window, T = 8192) a burst
// of a task's rows gained nothing, the same rows spread over its tile products 4-9% at D <= 64.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace tg::kernels {

class RowPrefetch {
 public:
  /// Forgets every row.
  void clear() {
    rows_.clear();
    next_ = 0;
  }
  /// Adds rows [0, n) of x (row stride ld, `width` elements each) for reading, or for writing.
  template <class T>
  void add(const T* x, int64_t n, int64_t ld, int64_t width, bool write) {
    for (int64_t r = 0; r < n; ++r)
      rows_.push_back({reinterpret_cast<const char*>(x + r * ld), int32_t(width * int64_t(sizeof(T))), write});
  }
  /// Spreads the rows over `steps` calls of step().
  void spread_over(int64_t steps) { per_step_ = steps > 0 ? (rows_.size() + size_t(steps) - 1) / size_t(steps) : rows_.size(); }
  /// Asks for the next rows, per_step of them (none once all are asked for).
  void step() { ask_until(std::min(rows_.size(), next_ + per_step_)); }
  /// Asks for every row not yet asked for.
  void flush() { ask_until(rows_.size()); }

 private:
  struct Row {
    const char* x;
    int32_t bytes;
    bool write;
  };
  void ask_until(size_t end) {
    constexpr int32_t kLine = 64;
    for (; next_ < end; ++next_) {
      const Row& r = rows_[next_];
      for (int32_t e = 0; e < r.bytes; e += kLine) {
        if (r.write)
          __builtin_prefetch(r.x + e, 1, 3);
        else
          __builtin_prefetch(r.x + e, 0, 3);
      }
    }
  }
  std::vector<Row> rows_;
  size_t next_ = 0, per_step_ = 0;
};

}  // namespace tg::kernels
