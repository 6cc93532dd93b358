// Variants whose kernels are being written on other branches this session: until each lands,
// asking for it is a clear error (removed as each variant is merged).
#include "autograd/error.h"
#include "ops/attention/problem.h"

namespace tg::detail {

Tensor flash_attention(const AttentionProblem&) { fail("attention: the flash variant is not built yet"); }
Tensor sliding_window_attention(const AttentionProblem&) {
  fail("attention: the sliding_window variant is not built yet");
}
Tensor sparse_attention(const AttentionProblem&) { fail("attention: the sparse variant is not built yet"); }

}  // namespace tg::detail

namespace tg {
Tensor sparse_layout_mask(const SparseLayout&, int64_t, int64_t, bool) {
  fail("sparse_layout_mask: the sparse variant is not built yet");
}
}  // namespace tg
