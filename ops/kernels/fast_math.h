#pragma once
// exp and erf for float in plain arithmetic, so the loops that call them vectorise (glibc's expf
// and erff do not without -ffast-math). Used by the elementwise, softmax, cross-entropy and
// attention kernels; their accuracy is tested in tests/ops/test_unary.cpp.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>

#include "ops/kernels/float8.h"

namespace tg::kernels {

namespace detail {
// The integer type of the same shape: int32_t for float, Int8 for Float8.
template <class V> struct IntOf { using type = int32_t; };
template <> struct IntOf<Float8> { using type = Int8; };

// e^x on a float or on every lane of a Float8, the same operations either way. The clamps are
// written as ternaries (std::min/max take no vectors); like std::max/min they keep NaN.
template <class V>
inline V exp_lanes(V x) {
  using I = typename IntOf<V>::type;
  constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  V lo = x < -104.0f ? V{} - 104.0f : x;
  V xc = 88.8f < lo ? V{} + 88.8f : lo;
  V t = xc * 1.44269504088896341f + kMagic;
  V n = t - kMagic;
  V r = xc - n * 0.693359375f;  // ln2 in two parts: n * hi is exact
  r = r - n * -2.12194440e-4f;
  V p = V{} + 1.0f / 5040;
  p = p * r + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  I ni = std::bit_cast<I>(t) - std::bit_cast<int32_t>(kMagic);  // n, in [-150, 128]
  I half = ni >> 1;
  V s1 = std::bit_cast<V>((half + 127) << 23);
  V s2 = std::bit_cast<V>((ni - half + 127) << 23);
  return p * s1 * s2;
}
}  // namespace detail

/// e^x for float without a library call, so loops over it vectorise (glibc's expf does not):
// Cody-Waite reduction x = n ln2 + r, |r| <= ln2 / 2, Taylor polynomial of degree 7 for e^r
// (truncation error < 6e-9), scaled by 2^n in two halves so results near overflow and in the
// subnormal range come out right. Within 1 ulp over the range (tests/ops/test_unary.cpp);
// inf -> inf, -inf -> 0, NaN -> NaN.
inline float fast_exp(float x) { return detail::exp_lanes(x); }
/// fast_exp on each of eight lanes.
inline Float8 fast_exp(Float8 x) { return detail::exp_lanes(x); }

/// erf for float given e = e^(-z^2), vectorisable: Abramowitz & Stegun formula 7.1.26, absolute
// error below 1.5e-7 (about 1 ulp of GELU's output for x > 0). Odd; NaN -> NaN. The formula
// needs that exponential, and so does GELU's derivative (its normal density): passing it in lets
// the derivative compute it once.
inline float fast_erf_given_exp(float z, float e) {
  float a = std::fabs(z);
  float t = 1.0f / (1.0f + 0.3275911f * a);
  float p = 1.061405429f;
  p = p * t - 1.453152027f;
  p = p * t + 1.421413741f;
  p = p * t - 0.284496736f;
  p = p * t + 0.254829592f;
  float y = 1.0f - p * t * e;
  return std::copysign(y, z);
}

/// erf for float, vectorisable (fast_erf_given_exp with its exponential).
inline float fast_erf(float z) { return fast_erf_given_exp(z, fast_exp(-z * z)); }

/// double keeps std::exp: f64 serves gradient checks, where accuracy matters more than speed.
inline double fast_exp(double x) { return std::exp(x); }

}  // namespace tg::kernels
