#pragma once
// The online softmax of the flash-style kernels (flash, flex): the scores of a query arrive one
// key tile at a time; each tile's row is folded into the running max m and normaliser l, and the
// running output accumulator is rescaled when the max grows, so the weights never exist whole.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "ops/kernels/fast_math.h"
#include "ops/kernels/reduce_row.h"

namespace tg::kernels {

/// Folds the scores row[0, cols) of one query into its running (m, l) and rescales its output
/// accumulator acc[0, Dv) by exp(m_old - m_new). row becomes exp(score - m_new), the weights the
/// caller multiplies by v. Returns false (row zeroed, nothing changed) when no key is visible yet.
template <class T>
inline bool online_softmax_row(T* row, int64_t cols, T& m, T& l, T* acc, int64_t Dv) {
  constexpr T kNegInfinity = -std::numeric_limits<T>::infinity();
  const T mx = std::max(m, row_max(row, cols));
  if (mx == kNegInfinity) {
    std::fill(row, row + cols, T(0));
    return false;
  }
  const T alpha = fast_exp(m - mx);  // 0 when m was -inf
  const T sum = lane_sum<T>(cols, [&](int64_t c) {
    const T e = fast_exp(row[c] - mx);
    row[c] = e;
    return e;
  });
  l = l * alpha + sum;
  m = mx;
  if (alpha != T(1))
    for (int64_t e = 0; e < Dv; ++e) acc[e] *= alpha;
  return true;
}

/// The output row of a query whose keys are all folded in: out[0, Dv) = acc / l, and its
/// log-sum-exp m + log l; a query that saw no key (l = 0) gets zeros and -inf, never NaN.
template <class T>
inline void finish_softmax_row(const T* acc, T m, T l, int64_t Dv, T* out, T& lse) {
  if (l == T(0)) {
    std::fill(out, out + Dv, T(0));
    lse = -std::numeric_limits<T>::infinity();
    return;
  }
  const T inv = T(1) / l;
  for (int64_t e = 0; e < Dv; ++e) out[e] = acc[e] * inv;
  lse = m + std::log(l);
}

}  // namespace tg::kernels
