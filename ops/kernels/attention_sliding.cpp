#include "ops/kernels/attention_sliding.h"

#include <algorithm>

namespace tg::kernels {

AttnBand sliding_window_band(int64_t window, bool causal, int64_t query_offset) {
  // Clamped so t ± window cannot overflow; 2^60 exceeds any T or S.
  int64_t w = std::min(window, kNoBand.left);
  AttnBand band = causal ? AttnBand{w - 1, 0} : AttnBand{w, w};
  // Relative to the query's index t rather than its key position query_offset + t.
  band.left -= query_offset;
  band.right += query_offset;
  return band;
}

int64_t sliding_window_block(int64_t window, bool causal) {
  int64_t band = causal ? window : 2 * std::min(window, int64_t(64)) + 1;
  return std::clamp<int64_t>(band, 8, 64);
}

KeyRanges sliding_window_ranges(int64_t T, int64_t S, int64_t window, bool causal,
                                int64_t query_offset) {
  AttnBand band = sliding_window_band(window, causal, query_offset);
  int64_t block = sliding_window_block(window, causal);
  KeyRanges r = begin_key_ranges(T, S, block);
  for (int64_t t0 = 0; t0 < T; t0 += block) {
    int64_t t1 = std::min(T, t0 + block);
    r.add_range(t0 - band.left, t1 + band.right);
    r.end_row();
  }
  return r;
}

}  // namespace tg::kernels
