#pragma once
// Sum of a row-major tensor over the axes where the output shape has size 1 (same rank).
// Used for reductions (sum, mean) and to sum broadcast gradients back to an input's shape.
#include <cstdint>
#include <vector>

namespace tg::kernels {

/// out[j] = sum of in[i] over all i that map to j. `out_shape` has the rank of `in_shape`, with
/// each size equal to the input's or 1 (a reduced axis). Overwrites `out`.
template <class T>
void sum_to_shape(const T* in, const std::vector<int64_t>& in_shape, T* out,
                  const std::vector<int64_t>& out_shape);

}  // namespace tg::kernels
