#pragma once
// Sliding-window attention as block-sparse attention: each block of queries computes its scores
// against the one contiguous key span its rows need (a single GEMM), and the band mask zeroes
// what lies outside each row's window. Time and memory O(T · (window + block)).
#include <cstdint>

#include "ops/kernels/attention_sparse.h"

namespace tg::kernels {

/// The band of sliding_window(window) for queries at key positions query_offset + t: causal,
/// query t sees keys p-window+1..p with p = query_offset + t; otherwise p-window..p+window
/// (clipped to the keys by the kernel).
AttnBand sliding_window_band(int64_t window, bool causal, int64_t query_offset = 0);

/// Query rows per block-row: 64, fewer for narrow windows so the span stays close to the band.
int64_t sliding_window_block(int64_t window, bool causal);

/// The key span of each block-row of sliding_window(window) over T queries (at key positions
/// query_offset..) and S keys: rows [t0, t1) need keys [t0 - left, t1 - 1 + right] of the band
/// above, clipped to [0, S).
KeyRanges sliding_window_ranges(int64_t T, int64_t S, int64_t window, bool causal,
                                int64_t query_offset = 0);

}  // namespace tg::kernels
