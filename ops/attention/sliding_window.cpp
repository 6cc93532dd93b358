// Sliding-window attention: block-sparse attention over each query block's key span, with the
// band mask. Recorded as "attention_sliding_window".
#include <memory>

#include "ops/attention/block_sparse.h"
#include "ops/kernels/attention_sliding.h"

namespace tg::detail {

Tensor sliding_window_attention(const AttentionProblem& p) {
  const int64_t window = p.spec->window;  // >= 1, checked by attention()
  const int64_t offset = p.dims.query_offset;
  auto ranges = std::make_shared<const kernels::KeyRanges>(
      kernels::sliding_window_ranges(p.dims.T, p.dims.S, window, p.causal, offset));
  return block_sparse_attention(p.packed ? "attention_sliding_window_qkv" : "attention_sliding_window", p,
                                std::move(ranges),
                                kernels::sliding_window_band(window, p.causal, offset));
}

}  // namespace tg::detail
