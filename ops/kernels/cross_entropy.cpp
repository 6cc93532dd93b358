#include "ops/kernels/cross_entropy.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "ops/kernels/float8.h"
#include "ops/kernels/parallel.h"
#include "ops/kernels/reduce_row.h"

namespace tg::kernels {
namespace {

// --- double (gradient checks): plain row loops ---------------------------------------------------

// The row's log-sum-exp; with p, also its softmax p[c] = e^(x[c] - max) / sum.
template <class T>
T row_logsumexp(const T* x, T* p, int64_t C) {
  T m = row_max(x, C);
  if (std::isinf(m)) m = 0;  // all -inf (or a +inf): x - m would be NaN
  T s = p ? lane_sum<T>(C, [&](int64_t c) { return p[c] = fast_exp(x[c] - m); })
          : lane_sum<T>(C, [&](int64_t c) { return fast_exp(x[c] - m); });
  if (p) {
    T r = T(1) / s;
    for (int64_t c = 0; c < C; ++c) p[c] *= r;
  }
  return m + std::log(s);
}

// --- float: a row is short (65 classes for characters), so it is computed eight lanes at a
// time in Float8 registers, the last partial group padded with -inf (whose exp is 0) -----------

template <>
float row_logsumexp<float>(const float* x, float* p, int64_t C) {
  const int64_t full = C / 8 * 8;
  Float8 mv = Float8{} + kNegInf;
  for (int64_t c = 0; c < full; c += 8) {
    Float8 v = load8(x + c);
    mv = v > mv ? v : mv;
  }
  if (full < C) {
    Float8 v = load_tail(x, full, C, kNegInf);
    mv = v > mv ? v : mv;
  }
  float m = lanes_max(mv);
  if (std::isinf(m)) m = 0;  // all -inf (or a +inf): x - m would be NaN
  Float8 sv{};
  for (int64_t c = 0; c < full; c += 8) {
    Float8 e = fast_exp(load8(x + c) - m);
    if (p) store8(p + c, e);
    sv += e;
  }
  Float8 tail{};
  if (full < C) sv += tail = fast_exp(load_tail(x, full, C, kNegInf) - m);
  const float s = lanes_sum(sv);
  if (p) {
    const float r = 1.0f / s;
    for (int64_t c = 0; c < full; c += 8) {
      store8(p + c, load8(p + c) * r);
    }
    for (int64_t l = 0; full + l < C; ++l) p[full + l] = tail[l] * r;
  }
  return m + std::log(s);
}

}  // namespace

template <class T>
double cross_entropy_forward(const T* logits, const int64_t* target, T* lse, T* probs, T* loss,
                             int64_t N, int64_t C, int64_t ignore_index) {
  parallel_for(0, N, rows_grain(6 * C), [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i)
      lse[i] = row_logsumexp(logits + i * C, probs ? probs + i * C : nullptr, C);
  });
  double total = 0;
  for (int64_t i = 0; i < N; ++i) {
    T l = target[i] == ignore_index ? T(0) : lse[i] - logits[i * C + target[i]];
    if (loss) loss[i] = l;
    total += static_cast<double>(l);
  }
  return total;
}

template <class T>
void cross_entropy_backward(const T* probs, const int64_t* target, const T* dloss,
                            int64_t dloss_stride, T scale, T* dlogits, int64_t N, int64_t C,
                            int64_t ignore_index) {
  parallel_for(0, N, rows_grain(2 * C), [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      T* __restrict d = dlogits + i * C;
      const T* __restrict p = probs + i * C;
      if (target[i] == ignore_index) {
        std::fill(d, d + C, T(0));
        continue;
      }
      const T g = scale * dloss[i * dloss_stride];
      for (int64_t c = 0; c < C; ++c) d[c] = g * p[c];
      d[target[i]] -= g;
    }
  });
}

template double cross_entropy_forward<float>(const float*, const int64_t*, float*, float*, float*,
                                             int64_t, int64_t, int64_t);
template double cross_entropy_forward<double>(const double*, const int64_t*, double*, double*,
                                              double*, int64_t, int64_t, int64_t);
template void cross_entropy_backward<float>(const float*, const int64_t*, const float*, int64_t,
                                            float, float*, int64_t, int64_t, int64_t);
template void cross_entropy_backward<double>(const double*, const int64_t*, const double*, int64_t,
                                             double, double*, int64_t, int64_t, int64_t);

}  // namespace tg::kernels
