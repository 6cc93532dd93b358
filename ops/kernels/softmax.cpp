#include "ops/kernels/softmax.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "ops/kernels/float8.h"
#include "ops/kernels/parallel.h"
#include "ops/kernels/reduce_row.h"

namespace tg::kernels {
namespace {

// --- the last axis: one contiguous row of n at a time -------------------------------------------

template <class T, bool kLog>
void forward_row(const T* x, T* y, int64_t n) {
  T m = row_max(x, n);
  if constexpr (kLog) {
    T log_s = std::log(lane_sum<T>(n, [&](int64_t i) { return fast_exp(x[i] - m); }));
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - m) - log_s;
  } else {
    T s = lane_sum<T>(n, [&](int64_t i) { return y[i] = fast_exp(x[i] - m); });
    T r = T(1) / s;
    for (int64_t i = 0; i < n; ++i) y[i] *= r;
  }
}

template <class T, bool kLog>
void backward_row(const T* y, const T* dy, T* dx, int64_t n) {
  if constexpr (kLog) {
    T s = lane_sum<T>(n, [&](int64_t i) { return dy[i]; });
    for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] - fast_exp(y[i]) * s;
  } else {
    T s = lane_sum<T>(n, [&](int64_t i) { return dy[i] * y[i]; });
    for (int64_t i = 0; i < n; ++i) dx[i] = y[i] * (dy[i] - s);
  }
}

// float rows: eight lanes at a time in Float8 registers (the lane_sum accumulators above live
// on the stack), the last partial group padded with -inf (kNegInf) for the max and the exponentials.

template <>
void forward_row<float, false>(const float* x, float* y, int64_t n) {
  const int64_t full = n / 8 * 8;
  Float8 mv = Float8{} + kNegInf;
  for (int64_t i = 0; i < full; i += 8) {
    Float8 v = load8(x + i);
    mv = v > mv ? v : mv;
  }
  Float8 tail = full < n ? load_tail(x, full, n, kNegInf) : Float8{} + kNegInf;
  mv = tail > mv ? tail : mv;
  const float m = lanes_max(mv);
  Float8 sv{};
  for (int64_t i = 0; i < full; i += 8) {
    Float8 e = fast_exp(load8(x + i) - m);
    store8(y + i, e);
    sv += e;
  }
  if (full < n) sv += tail = fast_exp(tail - m);
  const float r = 1.0f / lanes_sum(sv);
  for (int64_t i = 0; i < full; i += 8) store8(y + i, load8(y + i) * r);
  for (int64_t l = 0; full + l < n; ++l) y[full + l] = tail[l] * r;
}

template <>
void backward_row<float, false>(const float* y, const float* dy, float* dx, int64_t n) {
  const int64_t full = n / 8 * 8;
  Float8 sv{};
  for (int64_t i = 0; i < full; i += 8) sv += load8(dy + i) * load8(y + i);
  Float8 yt{}, dyt{};
  if (full < n) {
    yt = load_tail(y, full, n, 0.0f), dyt = load_tail(dy, full, n, 0.0f);
    sv += dyt * yt;
  }
  const float s = lanes_sum(sv);
  for (int64_t i = 0; i < full; i += 8) store8(dx + i, load8(y + i) * (load8(dy + i) - s));
  for (int64_t l = 0; full + l < n; ++l) dx[full + l] = yt[l] * (dyt[l] - s);
}

// --- another axis: w <= kCols neighbouring columns at a time, state per column on the stack, so
// the inner loops run over contiguous memory ------------------------------------------------------

constexpr int64_t kCols = 64;

// x, y point at column c0 of one outer slice; row r of that slice starts r * inner later.
template <class T, bool kLog>
void forward_cols(const T* x, T* y, int64_t n, int64_t inner, int64_t w) {
  T m[kCols], s[kCols];
  for (int64_t c = 0; c < w; ++c) {
    m[c] = -std::numeric_limits<T>::infinity();
    s[c] = 0;
  }
  for (int64_t r = 0; r < n; ++r) {
    const T* xr = x + r * inner;
    for (int64_t c = 0; c < w; ++c) m[c] = xr[c] > m[c] ? xr[c] : m[c];
  }
  for (int64_t r = 0; r < n; ++r) {
    const T* xr = x + r * inner;
    T* yr = y + r * inner;
    for (int64_t c = 0; c < w; ++c) {
      T e = fast_exp(xr[c] - m[c]);
      if constexpr (!kLog) yr[c] = e;
      s[c] += e;
    }
  }
  if constexpr (kLog) {
    for (int64_t c = 0; c < w; ++c) s[c] = std::log(s[c]);
    for (int64_t r = 0; r < n; ++r) {
      const T* xr = x + r * inner;
      T* yr = y + r * inner;
      for (int64_t c = 0; c < w; ++c) yr[c] = (xr[c] - m[c]) - s[c];
    }
  } else {
    for (int64_t c = 0; c < w; ++c) s[c] = T(1) / s[c];
    for (int64_t r = 0; r < n; ++r) {
      T* yr = y + r * inner;
      for (int64_t c = 0; c < w; ++c) yr[c] *= s[c];
    }
  }
}

template <class T, bool kLog>
void backward_cols(const T* y, const T* dy, T* dx, int64_t n, int64_t inner, int64_t w) {
  T s[kCols];
  for (int64_t c = 0; c < w; ++c) s[c] = 0;
  for (int64_t r = 0; r < n; ++r) {
    const T* yr = y + r * inner;
    const T* dyr = dy + r * inner;
    for (int64_t c = 0; c < w; ++c) s[c] += kLog ? dyr[c] : dyr[c] * yr[c];
  }
  for (int64_t r = 0; r < n; ++r) {
    const T* yr = y + r * inner;
    const T* dyr = dy + r * inner;
    T* dxr = dx + r * inner;
    for (int64_t c = 0; c < w; ++c) {
      if constexpr (kLog)
        dxr[c] = dyr[c] - fast_exp(yr[c]) * s[c];
      else
        dxr[c] = yr[c] * (dyr[c] - s[c]);
    }
  }
}

// Calls row(offset) for each last-axis row, or cols(offset, w) for each block of columns.
template <class Row, class Cols>
void for_each_slice(int64_t outer, int64_t n, int64_t inner, const Row& row, const Cols& cols) {
  if (inner == 1) {
    parallel_for(0, outer, rows_grain(4 * n), [&](int64_t lo, int64_t hi) {
      for (int64_t o = lo; o < hi; ++o) row(o * n);
    });
    return;
  }
  int64_t blocks = (inner + kCols - 1) / kCols;
  parallel_for(0, outer * blocks, rows_grain(4 * n * kCols), [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      int64_t o = t / blocks, c0 = (t % blocks) * kCols;
      cols(o * n * inner + c0, std::min(kCols, inner - c0));
    }
  });
}

template <class T, bool kLog>
void forward_impl(const T* x, T* y, int64_t outer, int64_t n, int64_t inner) {
  for_each_slice(
      outer, n, inner, [&](int64_t off) { forward_row<T, kLog>(x + off, y + off, n); },
      [&](int64_t off, int64_t w) { forward_cols<T, kLog>(x + off, y + off, n, inner, w); });
}

template <class T, bool kLog>
void backward_impl(const T* y, const T* dy, T* dx, int64_t outer, int64_t n, int64_t inner) {
  for_each_slice(
      outer, n, inner, [&](int64_t off) { backward_row<T, kLog>(y + off, dy + off, dx + off, n); },
      [&](int64_t off, int64_t w) {
        backward_cols<T, kLog>(y + off, dy + off, dx + off, n, inner, w);
      });
}

}  // namespace

template <class T>
void softmax_forward(const T* x, T* y, int64_t outer, int64_t n, int64_t inner, bool log) {
  if (log)
    forward_impl<T, true>(x, y, outer, n, inner);
  else
    forward_impl<T, false>(x, y, outer, n, inner);
}

template <class T>
void softmax_backward(const T* y, const T* dy, T* dx, int64_t outer, int64_t n, int64_t inner,
                      bool log) {
  if (log)
    backward_impl<T, true>(y, dy, dx, outer, n, inner);
  else
    backward_impl<T, false>(y, dy, dx, outer, n, inner);
}

template void softmax_forward<float>(const float*, float*, int64_t, int64_t, int64_t, bool);
template void softmax_forward<double>(const double*, double*, int64_t, int64_t, int64_t, bool);
template void softmax_backward<float>(const float*, const float*, float*, int64_t, int64_t,
                                      int64_t, bool);
template void softmax_backward<double>(const double*, const double*, double*, int64_t, int64_t,
                                       int64_t, bool);

}  // namespace tg::kernels
