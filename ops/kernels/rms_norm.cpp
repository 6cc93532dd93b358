#include "ops/kernels/rms_norm.h"

#include <algorithm>
#include <cmath>

#include "ops/kernels/parallel.h"
#include "ops/kernels/reduce_row.h"

namespace tg::kernels {
namespace {

// One row; kW says whether a weight is given, so the inner loop carries no branch.
template <class T, bool kW>
void rms_forward_row(const T* x, const T* w, T* y, T* rstd, int64_t C, T eps) {
  const T r = T(1) / std::sqrt(lane_sum<T>(C, [&](int64_t c) { return x[c] * x[c]; }) / static_cast<T>(C) + eps);
  for (int64_t c = 0; c < C; ++c) y[c] = kW ? x[c] * r * w[c] : x[c] * r;
  *rstd = r;
}

template <class T, bool kW>
void rms_dx_row(const T* x, const T* w, T r, const T* dy, T* dx, int64_t C) {
  const T mean_gh =
      lane_sum<T>(C, [&](int64_t c) { return (kW ? dy[c] * w[c] : dy[c]) * (x[c] * r); }) / static_cast<T>(C);
  for (int64_t c = 0; c < C; ++c) dx[c] = r * ((kW ? dy[c] * w[c] : dy[c]) - x[c] * r * mean_gh);
}

template <class T, bool kW>
void rms_backward_impl(const T* x, const T* w, const T* rstd, const T* dy, T* dx, T* dw, T* partials,
                       int64_t rows, int64_t C) {
  const int64_t block = kRmsNormRowBlock, blocks = (rows + block - 1) / block;
  parallel_for(0, blocks, rows_grain(6 * block * C), [&](int64_t lo, int64_t hi) {
    for (int64_t k = lo; k < hi; ++k) {
      T* pw = dw ? partials + k * C : nullptr;
      if (pw) std::fill(pw, pw + C, T(0));
      for (int64_t r = k * block; r < std::min(rows, (k + 1) * block); ++r) {
        if (dx) rms_dx_row<T, kW>(x + r * C, w, rstd[r], dy + r * C, dx + r * C, C);
        if (pw)
          for (int64_t c = 0; c < C; ++c) pw[c] += dy[r * C + c] * (x[r * C + c] * rstd[r]);
      }
    }
  });
  if (!dw) return;
  parallel_for(0, C, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, blocks)), [&](int64_t lo, int64_t hi) {
    std::fill(dw + lo, dw + hi, T(0));
    for (int64_t k = 0; k < blocks; ++k)
      for (int64_t c = lo; c < hi; ++c) dw[c] += partials[k * C + c];
  });
}

}  // namespace

template <class T>
void rms_norm_forward(const T* x, const T* weight, T* y, T* rstd, int64_t rows, int64_t C, T eps) {
  parallel_for(0, rows, rows_grain(3 * C), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      if (weight)
        rms_forward_row<T, true>(x + r * C, weight, y + r * C, rstd + r, C, eps);
      else
        rms_forward_row<T, false>(x + r * C, weight, y + r * C, rstd + r, C, eps);
    }
  });
}

template <class T>
void rms_norm_backward(const T* x, const T* weight, const T* rstd, const T* dy, T* dx, T* dweight, T* partials,
                       int64_t rows, int64_t C) {
  if (weight)
    rms_backward_impl<T, true>(x, weight, rstd, dy, dx, dweight, partials, rows, C);
  else
    rms_backward_impl<T, false>(x, weight, rstd, dy, dx, dweight, partials, rows, C);
}

template void rms_norm_forward<float>(const float*, const float*, float*, float*, int64_t, int64_t, float);
template void rms_norm_forward<double>(const double*, const double*, double*, double*, int64_t, int64_t, double);
template void rms_norm_backward<float>(const float*, const float*, const float*, const float*, float*, float*,
                                       float*, int64_t, int64_t);
template void rms_norm_backward<double>(const double*, const double*, const double*, const double*, double*,
                                        double*, double*, int64_t, int64_t);

}  // namespace tg::kernels
