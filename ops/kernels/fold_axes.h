#pragma once
// The axes of a reduction folded: size-1 axes dropped and neighbours of the same kind (kept or
// reduced) merged into one, so that a reduction over [B, T, C] -> [B, 1, C] walks three axes and
// one over [B, T, C] -> [B, T, 1] two. Shared by the sum and the other reductions.
#include <cstdint>
#include <vector>

namespace tg::kernels {

struct FoldedAxes {
  std::vector<int64_t> size;  ///< the merged axes' sizes, outermost first
  std::vector<bool> reduced;  ///< whether each merged axis is reduced (size 1 in the output)
};

/// `in_shape` reduced to `out_shape` (same rank; reduced axes have size 1 in `out_shape`).
inline FoldedAxes fold_axes(const std::vector<int64_t>& in_shape, const std::vector<int64_t>& out_shape) {
  FoldedAxes f;
  for (size_t i = 0; i < in_shape.size(); ++i) {
    if (in_shape[i] == 1) continue;  // size-1 axes change nothing
    const bool red = out_shape[i] == 1;
    if (!f.size.empty() && f.reduced.back() == red) {
      f.size.back() *= in_shape[i];
    } else {
      f.size.push_back(in_shape[i]);
      f.reduced.push_back(red);
    }
  }
  return f;
}

}  // namespace tg::kernels
