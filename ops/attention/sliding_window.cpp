// Sliding-window attention: flash attention restricted to the band where the register-blocked
// f32 tiles apply (no weights saved: recomputed in backward, memory O(T)); else (f64, or D not a
// multiple of 8) block-sparse
// attention over each query block's key span, with the band mask, saving the band's weights.
// Recorded as "attention_sliding_window" either way.
#include <memory>

#include "ops/attention/block_sparse.h"
#include "ops/kernels/attention_sliding.h"

namespace tg::detail {

Tensor sliding_window_attention(const AttentionProblem& p) {
  const int64_t window = p.spec->window;  // >= 1, checked by attention()
  const int64_t offset = p.dims.query_offset;
  const char* name = p.packed ? "attention_sliding_window_qkv" : "attention_sliding_window";
  const kernels::AttnBand band = kernels::sliding_window_band(window, p.causal, offset);
  if (flash_band_applies(p)) return flash_band_attention(name, p, band);  // grouped kv heads in place
  if (p.dims.kv_heads() != p.dims.H) return attention_repeating_kv_heads(p);
  auto ranges = std::make_shared<const kernels::KeyRanges>(
      kernels::sliding_window_ranges(p.dims.T, p.dims.S, window, p.causal, offset));
  return block_sparse_attention(name, p, std::move(ranges), band);
}

}  // namespace tg::detail
