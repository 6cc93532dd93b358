#include "ops/kernels/layer_norm.h"

#include <algorithm>
#include <cmath>

#include "ops/kernels/parallel.h"
#include "ops/kernels/reduce_row.h"

namespace tg::kernels {
namespace {

// One row; kW / kB say whether weight / bias are given, so the inner loops carry no branch.
template <class T, bool kW, bool kB>
void forward_row(const T* x, const T* w, const T* b, T* y, T* mean, T* rstd, int64_t C, T eps) {
  T m = lane_sum<T>(C, [&](int64_t c) { return x[c]; }) / static_cast<T>(C);
  // Two passes: no cancellation when |mean| >> std.
  T v = lane_sum<T>(C, [&](int64_t c) { return (x[c] - m) * (x[c] - m); });
  T r = T(1) / std::sqrt(v / static_cast<T>(C) + eps);
  for (int64_t c = 0; c < C; ++c) {
    T h = (x[c] - m) * r;
    if constexpr (kW) h *= w[c];
    if constexpr (kB) h += b[c];
    y[c] = h;
  }
  *mean = m;
  *rstd = r;
}

template <class T, bool kW, bool kB>
void forward_rows(const T* x, const T* w, const T* b, T* y, T* mean, T* rstd, int64_t rows,
                  int64_t C, T eps) {
  parallel_for(0, rows, rows_grain(5 * C), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r)
      forward_row<T, kW, kB>(x + r * C, w, b, y + r * C, mean + r, rstd + r, C, eps);
  });
}

// dx of one row: with g = dy * w and h = (x - mean) * rstd,
// dx = rstd * (g - mean(g) - h * mean(g * h)).
template <class T, bool kW>
void dx_row(const T* x, const T* w, T m, T rs, const T* dy, T* dx, int64_t C) {
  T s1 = lane_sum<T>(C, [&](int64_t c) { return kW ? dy[c] * w[c] : dy[c]; }) / static_cast<T>(C);
  T s2 = lane_sum<T>(C, [&](int64_t c) { return (kW ? dy[c] * w[c] : dy[c]) * ((x[c] - m) * rs); }) /
         static_cast<T>(C);
  for (int64_t c = 0; c < C; ++c) {
    T g = kW ? dy[c] * w[c] : dy[c];
    dx[c] = rs * (g - s1 - (x[c] - m) * rs * s2);
  }
}

// Rows [r0, r1) of one block: dx, and this block's partial sums of dy * h (pw) and dy (pb).
template <class T, bool kW>
void backward_block(const T* x, const T* w, const T* mean, const T* rstd, const T* dy, T* dx,
                    T* pw, T* pb, int64_t r0, int64_t r1, int64_t C) {
  if (pw) std::fill(pw, pw + C, T(0));
  if (pb) std::fill(pb, pb + C, T(0));
  for (int64_t r = r0; r < r1; ++r) {
    const T* xr = x + r * C;
    const T* dyr = dy + r * C;
    T m = mean[r], rs = rstd[r];
    if (dx) dx_row<T, kW>(xr, w, m, rs, dyr, dx + r * C, C);
    if (pw)
      for (int64_t c = 0; c < C; ++c) pw[c] += dyr[c] * ((xr[c] - m) * rs);
    if (pb)
      for (int64_t c = 0; c < C; ++c) pb[c] += dyr[c];
  }
}

// out[c] = sum over blocks of part[block * 2C + c], blocks in order; columns in parallel.
template <class T>
void combine(const T* part, int64_t blocks, int64_t C, T* out) {
  parallel_for(0, C, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, blocks)),
               [&](int64_t lo, int64_t hi) {
                 std::fill(out + lo, out + hi, T(0));
                 for (int64_t k = 0; k < blocks; ++k) {
                   const T* p = part + k * 2 * C;
                   for (int64_t c = lo; c < hi; ++c) out[c] += p[c];
                 }
               });
}

template <class T, bool kW>
void backward_impl(const T* x, const T* w, const T* mean, const T* rstd, const T* dy, T* dx,
                   T* dw, T* db, T* partials, int64_t rows, int64_t C) {
  const int64_t block = kLayerNormRowBlock;
  int64_t blocks = (rows + block - 1) / block;
  parallel_for(0, blocks, rows_grain(8 * block * C), [&](int64_t lo, int64_t hi) {
    for (int64_t k = lo; k < hi; ++k) {
      T* pw = dw ? partials + k * 2 * C : nullptr;
      T* pb = db ? partials + k * 2 * C + C : nullptr;
      backward_block<T, kW>(x, w, mean, rstd, dy, dx, pw, pb, k * block,
                            std::min(rows, (k + 1) * block), C);
    }
  });
  if (dw) combine(partials, blocks, C, dw);
  if (db) combine(partials + C, blocks, C, db);
}

}  // namespace

template <class T>
void layer_norm_forward(const T* x, const T* weight, const T* bias, T* y, T* mean, T* rstd,
                        int64_t rows, int64_t C, T eps) {
  if (weight && bias)
    forward_rows<T, true, true>(x, weight, bias, y, mean, rstd, rows, C, eps);
  else if (weight)
    forward_rows<T, true, false>(x, weight, bias, y, mean, rstd, rows, C, eps);
  else if (bias)
    forward_rows<T, false, true>(x, weight, bias, y, mean, rstd, rows, C, eps);
  else
    forward_rows<T, false, false>(x, weight, bias, y, mean, rstd, rows, C, eps);
}

template <class T>
void layer_norm_backward(const T* x, const T* weight, const T* mean, const T* rstd, const T* dy,
                         T* dx, T* dweight, T* dbias, T* partials, int64_t rows, int64_t C) {
  if (weight)
    backward_impl<T, true>(x, weight, mean, rstd, dy, dx, dweight, dbias, partials, rows, C);
  else
    backward_impl<T, false>(x, weight, mean, rstd, dy, dx, dweight, dbias, partials, rows, C);
}

template void layer_norm_forward<float>(const float*, const float*, const float*, float*, float*,
                                        float*, int64_t, int64_t, float);
template void layer_norm_forward<double>(const double*, const double*, const double*, double*,
                                         double*, double*, int64_t, int64_t, double);
template void layer_norm_backward<float>(const float*, const float*, const float*, const float*,
                                         const float*, float*, float*, float*, float*, int64_t,
                                         int64_t);
template void layer_norm_backward<double>(const double*, const double*, const double*,
                                          const double*, const double*, double*, double*, double*,
                                          double*, int64_t, int64_t);

}  // namespace tg::kernels
