#pragma once
// Dropout masks from the counter-based Philox generator: element i of a draw is kept when its
// uniform u_i = philox_uniform<double>(seed, offset, i) satisfies u_i >= p, so it is kept with
// probability 1 - p, and the mask depends only on (seed, offset, i), never on the thread count
// (nor on the tensor's dtype).
#include <cstdint>

namespace tg::kernels {

/// keep[i] = (u_i >= p) for i in [0, n). Uses philox_uniform_blocks(n) blocks from `offset`.
void dropout_mask(uint64_t seed, uint64_t offset, double p, bool* keep, int64_t n);

/// y[i] = x[i] * (keep[i] ? scale : 0). Also the gradient, with x = dy.
template <class T>
void dropout_apply(const T* x, const bool* keep, T scale, T* y, int64_t n);

}  // namespace tg::kernels
