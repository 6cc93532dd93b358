#pragma once
// Attention dropout's keep decisions for a run of consecutive weights, eight Philox blocks at a
// time. AttnDropout::keep answers for one weight and computes a whole Philox block for it; the
// kernels ask for rows of a tile at once, where this is many times faster and gives the same
// answers bit for bit.
#include <cstdint>

#include "ops/kernels/attention_mask.h"

namespace tg::kernels {

/// keep[c] = 1 where dropout keeps element i0 + c of the [B, H, T, S] draw, else 0, for
/// c in [0, n): the answers of AttnDropout::keep.
void dropout_keep_draws(const AttnDropout& dropout, uint64_t i0, int64_t n, uint8_t* keep);

/// keep[c] = dropout.keep(d, b, h, t, s0 + c) for c in [0, n).
inline void dropout_keep_run(const AttnDims& d, const AttnDropout& dropout, int64_t b, int64_t h,
                             int64_t t, int64_t s0, int64_t n, uint8_t* keep) {
  dropout_keep_draws(dropout, static_cast<uint64_t>(((b * d.H + h) * d.T + t) * d.S + s0), n, keep);
}

}  // namespace tg::kernels
