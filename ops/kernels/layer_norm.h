#pragma once
// Layer normalisation of x viewed as [rows, C]: each row normalised by its mean and biased
// variance, then scaled by weight [C] and shifted by bias [C] (either may be null).
// Rows run in parallel; the weight and bias gradients are summed over fixed blocks of rows and
// the block partials combined in block order, so they do not depend on the thread count.
#include <cstdint>

namespace tg::kernels {

/// Rows per block of the weight/bias gradient partials (fixed: it decides the summation order).
inline constexpr int64_t kLayerNormRowBlock = 32;

/// Elements of the scratch buffer layer_norm_backward needs for dweight/dbias: [blocks, 2, C].
inline int64_t layer_norm_partials_size(int64_t rows, int64_t C) {
  return (rows + kLayerNormRowBlock - 1) / kLayerNormRowBlock * 2 * C;
}

/// y [rows, C] = (x - mean) * rstd * weight + bias, with mean [rows] and rstd [rows] =
/// 1 / sqrt(var + eps) written out for backward.
template <class T>
void layer_norm_forward(const T* x, const T* weight, const T* bias, T* y, T* mean, T* rstd,
                        int64_t rows, int64_t C, T eps);

/// From dy [rows, C]: dx [rows, C] (skipped when null), dweight [C] and dbias [C] (each skipped
/// when null; written, not added). `partials` holds layer_norm_partials_size(rows, C) elements
/// when dweight or dbias is asked for. weight may be null (all ones).
template <class T>
void layer_norm_backward(const T* x, const T* weight, const T* mean, const T* rstd, const T* dy,
                         T* dx, T* dweight, T* dbias, T* partials, int64_t rows, int64_t C);

}  // namespace tg::kernels
