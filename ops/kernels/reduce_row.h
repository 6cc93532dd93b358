#pragma once
// Building blocks of the row kernels (softmax, cross_entropy, layer_norm): sums and maxima over
// a contiguous row split across kRowLanes independent accumulators, so the compiler keeps them
// in vector registers (a single accumulator would be a serial dependency chain that it may not
// reorder); and an exp the compiler can vectorise. The lanes are combined in a fixed order:
// results depend on the row only, never on how rows are spread over threads.
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include "ops/kernels/fast_math.h"

namespace tg::kernels {

inline constexpr int kRowLanes = 16;

/// Sum of term(i) for i in [0, n), lane-split. term may also store (e.g. y[i] = e).
template <class T, class F>
inline T lane_sum(int64_t n, const F& term) {
  T acc[kRowLanes] = {};
  int64_t i = 0;
  for (; i + kRowLanes <= n; i += kRowLanes)
    for (int l = 0; l < kRowLanes; ++l) acc[l] += term(i + l);
  for (int l = 0; i < n; ++i, ++l) acc[l] += term(i);
  T s = 0;
  for (int l = 0; l < kRowLanes; ++l) s += acc[l];
  return s;
}

/// Max of x[0, n) (-inf when n is 0), lane-split. NaNs are skipped here; callers that go on to
/// exp(x - max) still propagate them.
template <class T>
inline T row_max(const T* x, int64_t n) {
  T acc[kRowLanes];
  for (int l = 0; l < kRowLanes; ++l) acc[l] = -std::numeric_limits<T>::infinity();
  int64_t i = 0;
  for (; i + kRowLanes <= n; i += kRowLanes)
    for (int l = 0; l < kRowLanes; ++l) acc[l] = x[i + l] > acc[l] ? x[i + l] : acc[l];
  for (int l = 0; i < n; ++i, ++l) acc[l] = x[i] > acc[l] ? x[i] : acc[l];
  T m = acc[0];
  for (int l = 1; l < kRowLanes; ++l) m = acc[l] > m ? acc[l] : m;
  return m;
}

}  // namespace tg::kernels
