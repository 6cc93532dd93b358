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

/// exp for float in plain arithmetic, so loops calling it vectorise (std::exp does not without
/// -ffast-math): exp(x) = 2^k exp(r), k = round(x / ln 2), |r| <= ln(2)/2, exp(r) by its Taylor
/// series to r^7 (truncation < 1e-8). Within 2 ulp of std::exp; 0 below -87 (where std::exp
/// gives denormals), inf above 88, NaN for NaN.
inline float fast_exp(float x) {
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;  // ln 2 = hi + lo, k * hi exact
  constexpr float kShift = 12582912.0f;  // 1.5 * 2^23: t = y + kShift rounds y to an integer
  float xc = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  float t = xc * kLog2e + kShift;
  float k = t - kShift;
  int32_t ki = std::bit_cast<int32_t>(t) - std::bit_cast<int32_t>(kShift);  // k as an integer
  float r = (xc - k * kLn2Hi) - k * kLn2Lo;
  float p = 1.0f / 5040;
  p = p * r + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  float y = p * std::bit_cast<float>((ki + 127) << 23);  // p * 2^k
  return x < -87.0f ? 0.0f : (x > 88.0f ? std::numeric_limits<float>::infinity() : y);
}

/// double keeps std::exp: f64 serves gradient checks, where accuracy matters more than speed.
inline double fast_exp(double x) { return std::exp(x); }

}  // namespace tg::kernels
