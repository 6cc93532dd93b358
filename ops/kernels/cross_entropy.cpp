#include "ops/kernels/cross_entropy.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "ops/kernels/parallel.h"
#include "ops/kernels/reduce_row.h"

namespace tg::kernels {
namespace {

template <class T>
T row_logsumexp(const T* x, int64_t C) {
  T m = row_max(x, C);
  if (std::isinf(m)) m = 0;  // all -inf (or a +inf): x - m would be NaN
  return m + std::log(lane_sum<T>(C, [&](int64_t c) { return fast_exp(x[c] - m); }));
}

}  // namespace

template <class T>
double cross_entropy_forward(const T* logits, const int64_t* target, T* lse, T* loss, int64_t N,
                             int64_t C, int64_t ignore_index) {
  parallel_for(0, N, rows_grain(4 * C), [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) lse[i] = row_logsumexp(logits + i * C, C);
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
void cross_entropy_backward(const T* logits, const int64_t* target, const T* lse, const T* dloss,
                            int64_t dloss_stride, T scale, T* dlogits, int64_t N, int64_t C,
                            int64_t ignore_index) {
  parallel_for(0, N, rows_grain(4 * C), [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      T* d = dlogits + i * C;
      if (target[i] == ignore_index) {
        std::fill(d, d + C, T(0));
        continue;
      }
      const T* x = logits + i * C;
      T g = scale * dloss[i * dloss_stride], l = lse[i];
      for (int64_t c = 0; c < C; ++c) d[c] = g * fast_exp(x[c] - l);
      d[target[i]] -= g;
    }
  });
}

template double cross_entropy_forward<float>(const float*, const int64_t*, float*, float*, int64_t,
                                             int64_t, int64_t);
template double cross_entropy_forward<double>(const double*, const int64_t*, double*, double*,
                                              int64_t, int64_t, int64_t);
template void cross_entropy_backward<float>(const float*, const int64_t*, const float*,
                                            const float*, int64_t, float, float*, int64_t,
                                            int64_t, int64_t);
template void cross_entropy_backward<double>(const double*, const int64_t*, const double*,
                                             const double*, int64_t, double, double*, int64_t,
                                             int64_t, int64_t);

}  // namespace tg::kernels
