#pragma once
// Float8: eight floats in one AVX register (a GCC vector type), for row kernels whose rows the
// auto-vectoriser handles poorly (short rows, reductions it keeps on the stack). Loads and
// stores by memcpy (any alignment), and the reductions of one register in a fixed order, so a
// row's result never depends on how rows are spread over threads.
#include <cstdint>
#include <cstring>
#include <limits>

namespace tg::kernels {

/// -inf as a float: what a row's last partial group of lanes is padded with for a max (and whose
/// exp is 0).
inline constexpr float kNegInf = -std::numeric_limits<float>::infinity();

using Float8 = float __attribute__((vector_size(32)));
using Int8 = int32_t __attribute__((vector_size(32)));

inline Float8 load8(const float* p) {
  Float8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline void store8(float* p, Float8 v) { std::memcpy(p, &v, sizeof v); }

/// x[c0, C) in lanes 0.., the remaining lanes `fill` (C - c0 < 8).
inline Float8 load_tail(const float* x, int64_t c0, int64_t C, float fill) {
  Float8 v = Float8{} + fill;
  for (int64_t l = 0; c0 + l < C; ++l) v[l] = x[c0 + l];
  return v;
}

/// The largest lane (NaN lanes skipped, as row_max).
inline float lanes_max(Float8 v) {
  float m = v[0];
  for (int l = 1; l < 8; ++l) m = v[l] > m ? v[l] : m;
  return m;
}

/// The sum of the lanes, pairwise in a fixed order.
inline float lanes_sum(Float8 v) {
  return ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7]));
}

}  // namespace tg::kernels
