#pragma once
// RMS normalisation of x viewed as [rows, C] (Zhang & Sennrich 2019; Llama's RMSNorm): each row
// divided by its root mean square, then scaled by weight [C] (may be null):
//   y = x · rstd · weight,   rstd = 1 / sqrt(mean(x²) + eps).
// Rows run in parallel; the weight gradient is summed over fixed blocks of rows and the block
// partials combined in block order, so it does not depend on the thread count.
#include <cstdint>

namespace tg::kernels {

/// Rows per block of the weight gradient partials (fixed: it decides the summation order).
inline constexpr int64_t kRmsNormRowBlock = 32;

/// Elements of the scratch buffer rms_norm_backward needs for dweight: [blocks, C].
inline int64_t rms_norm_partials_size(int64_t rows, int64_t C) {
  return (rows + kRmsNormRowBlock - 1) / kRmsNormRowBlock * C;
}

/// y [rows, C] and rstd [rows] (kept for backward).
template <class T>
void rms_norm_forward(const T* x, const T* weight, T* y, T* rstd, int64_t rows, int64_t C, T eps);

/// From dy [rows, C]: dx [rows, C] (skipped when null) and dweight [C] (skipped when null;
/// written, not added; `partials` then holds rms_norm_partials_size(rows, C) elements).
/// With g = dy · weight and h = x · rstd:  dx = rstd · (g - h · mean(g · h)),  dweight = Σ dy · h.
template <class T>
void rms_norm_backward(const T* x, const T* weight, const T* rstd, const T* dy, T* dx, T* dweight, T* partials,
                       int64_t rows, int64_t C);

}  // namespace tg::kernels
