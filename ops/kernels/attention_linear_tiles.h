#pragma once
// Register-tiled products for the chunks of linear attention (ops/kernels/attention_linear.cpp):
// C[m, n] (+)= A[m, k] · B[k, n] with m, n, k around one chunk (64), on operands that sit in L1/L2.
// A BLAS call on such sizes spends more on packing and dispatch than on arithmetic; here each
// MR x (NV vectors) tile of C is summed in registers over k, A's elements broadcast (any strides,
// so a transposed A is read in place) and B's rows loaded as vectors (B row-major, rows of
// stride ldb). Triangular operands (the causal mask inside a chunk) skip the k or column ranges
// that are known to be zero. Every element of C is a sum in k order, so results do not depend
// on the tiling or on threads.
#include <cstdint>

#include "ops/kernels/row_prefetch.h"
#include "ops/kernels/unroll.h"

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

namespace tg::kernels::linear_tiles {

// One SIMD register of T: load, store, broadcast and fused multiply-add.
template <class T>
struct Simd;

#if defined(__AVX512F__)
template <>
struct Simd<float> {
  using V = __m512;
  static constexpr int W = 16;
  static V zero() { return _mm512_setzero_ps(); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V bcast(float x) { return _mm512_set1_ps(x); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
};
template <>
struct Simd<double> {
  using V = __m512d;
  static constexpr int W = 8;
  static V zero() { return _mm512_setzero_pd(); }
  static V load(const double* p) { return _mm512_loadu_pd(p); }
  static void store(double* p, V v) { _mm512_storeu_pd(p, v); }
  static V bcast(double x) { return _mm512_set1_pd(x); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static V add(V a, V b) { return _mm512_add_pd(a, b); }
};
inline constexpr int kTileRows = 6, kTileVectors = 4;  // 24 accumulators of 32 registers
// The triangular products of the causal chunks (Shape other than full) in tiles of 8 rows by 2
// vectors: a 64-row product takes eight of them with no 4-row remainder, and c_lower's columns
// round up to a row tile's last row with less waste. B = 1, H = 8, D = 64, 2 threads, causal,
// time with 6 x 4 ÷ with 8 x 2 (median of 5 alternating runs): forward 1.035 / 1.015 / 1.008 at
// T = 2K / 4K / 16K, fwd+bwd 1.006 / 1.009 / 1.017. (8 x 2 for every product made the
// non-causal forward 4% slower.)
inline constexpr int kTriRows = 8, kTriVectors = 2;
#elif defined(__AVX2__) && defined(__FMA__)
template <>
struct Simd<float> {
  using V = __m256;
  static constexpr int W = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V bcast(float x) { return _mm256_set1_ps(x); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
};
template <>
struct Simd<double> {
  using V = __m256d;
  static constexpr int W = 4;
  static V zero() { return _mm256_setzero_pd(); }
  static V load(const double* p) { return _mm256_loadu_pd(p); }
  static void store(double* p, V v) { _mm256_storeu_pd(p, v); }
  static V bcast(double x) { return _mm256_set1_pd(x); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static V add(V a, V b) { return _mm256_add_pd(a, b); }
};
inline constexpr int kTileRows = 6, kTileVectors = 2;  // 12 accumulators of 16 registers
inline constexpr int kTriRows = kTileRows, kTriVectors = kTileVectors;
#else
template <class T>
struct Simd {
  using V = T;
  static constexpr int W = 1;
  static V zero() { return T(0); }
  static V load(const T* p) { return *p; }
  static void store(T* p, V v) { *p = v; }
  static V bcast(T x) { return x; }
  static V fma(V a, V b, V c) { return a * b + c; }
  static V add(V a, V b) { return a + b; }
};
inline constexpr int kTileRows = 4, kTileVectors = 4;
inline constexpr int kTriRows = kTileRows, kTriVectors = kTileVectors;
#endif

/// Which part of a product is known to be nonzero, so that a tile skips the rest.
enum class Shape {
  full,
  a_lower,    ///< A[i, p] = 0 for p > i: row tile [i0, i1) sums k in [0, i1)
  a_upper,    ///< A[i, p] = 0 for p < i: row tile [i0, i1) sums k in [i0, k)
  c_lower,    ///< only C[i, j] for j <= i is wanted: row tile [i0, i1) computes columns [0, i1)
};

/// A in place: element (i, p) at a[i * rs + p * cs].
template <class T>
struct Strided {
  const T* a;
  int64_t rs, cs;
};

namespace detail {

// C[MR, NV * W] (+)= A[MR, k0:k1] · B[k0:k1, NV * W].
// The loops over the block's rows and vectors are unrolled whole (TG_UNROLL_WHOLE) so that acc
// stays in registers.
template <class T, int MR, int NV>
inline void tile(int64_t k0, int64_t k1, Strided<T> a, const T* b, int64_t ldb, T* c, int64_t ldc,
                 bool accumulate) {
  using S = Simd<T>;
  typename S::V acc[MR][NV];
  TG_UNROLL_WHOLE
  for (int i = 0; i < MR; ++i)
    TG_UNROLL_WHOLE
    for (int j = 0; j < NV; ++j) acc[i][j] = S::zero();
  for (int64_t p = k0; p < k1; ++p) {
    typename S::V bv[NV];
    TG_UNROLL_WHOLE
    for (int j = 0; j < NV; ++j) bv[j] = S::load(b + p * ldb + j * S::W);
    TG_UNROLL_WHOLE
    for (int i = 0; i < MR; ++i) {
      typename S::V ai = S::bcast(a.a[i * a.rs + p * a.cs]);
      TG_UNROLL_WHOLE
      for (int j = 0; j < NV; ++j) acc[i][j] = S::fma(ai, bv[j], acc[i][j]);
    }
  }
  TG_UNROLL_WHOLE
  for (int i = 0; i < MR; ++i)
    TG_UNROLL_WHOLE
    for (int j = 0; j < NV; ++j) {
      T* ci = c + i * ldc + j * S::W;
      S::store(ci, accumulate ? S::add(S::load(ci), acc[i][j]) : acc[i][j]);
    }
}

// Columns [j0, j0 + w) of rows [0, mr) one by one (w < one vector), in the same k order.
template <class T>
inline void tail(int mr, int64_t w, int64_t k0, int64_t k1, Strided<T> a, const T* b, int64_t ldb,
                 T* c, int64_t ldc, bool accumulate) {
  for (int i = 0; i < mr; ++i)
    for (int64_t j = 0; j < w; ++j) {
      T s = 0;
      for (int64_t p = k0; p < k1; ++p) s += a.a[i * a.rs + p * a.cs] * b[p * ldb + j];
      c[i * ldc + j] = accumulate ? c[i * ldc + j] + s : s;
    }
}

// The tiles of MR rows across n columns: NV vectors at a time, then fewer, then the tail.
template <class T, int MR, int NV>
inline void row_tile(int64_t n, int64_t k0, int64_t k1, Strided<T> a, const T* b, int64_t ldb, T* c,
                     int64_t ldc, bool accumulate) {
  constexpr int W = Simd<T>::W;
  int64_t j = 0;
  for (; j + NV * W <= n; j += NV * W)
    tile<T, MR, NV>(k0, k1, a, b + j, ldb, c + j, ldc, accumulate);
  int64_t left = (n - j) / W;
  if constexpr (NV > 1) {
    if (left >= 2) {
      if constexpr (NV > 3)
        if (left == 3) {
          tile<T, MR, 3>(k0, k1, a, b + j, ldb, c + j, ldc, accumulate);
          j += 3 * W, left = 0;
        }
      if (left >= 2) {
        tile<T, MR, 2>(k0, k1, a, b + j, ldb, c + j, ldc, accumulate);
        j += 2 * W, left -= 2;
      }
    }
  }
  if (left == 1) {
    tile<T, MR, 1>(k0, k1, a, b + j, ldb, c + j, ldc, accumulate);
    j += W;
  }
  if (j < n) tail<T>(MR, n - j, k0, k1, a, b + j, ldb, c + j, ldc, accumulate);
}

template <class T, int MR, int NV>
inline void rows(int mr, int64_t n, int64_t k0, int64_t k1, Strided<T> a, const T* b, int64_t ldb,
                 T* c, int64_t ldc, bool accumulate) {
  if constexpr (MR > 1) {
    if (mr < MR) return rows<T, MR - 1, NV>(mr, n, k0, k1, a, b, ldb, c, ldc, accumulate);
  }
  row_tile<T, MR, NV>(n, k0, k1, a, b, ldb, c, ldc, accumulate);
}

// C's rows [0, m) in tiles of MR rows by NV vectors, each skipping what `shape` says is zero.
template <class T, int MR, int NV>
void shaped_rows(Shape shape, int64_t m, int64_t n, int64_t k, Strided<T> a, const T* b, int64_t ldb, T* c,
                 int64_t ldc, bool accumulate, RowPrefetch* ahead) {
  constexpr int W = Simd<T>::W;
  for (int64_t i0 = 0; i0 < m; i0 += MR) {
    if (ahead) ahead->step();
    const int mr = static_cast<int>(m - i0 < MR ? m - i0 : MR);
    const int64_t i1 = i0 + mr;
    int64_t k0 = 0, k1 = k, cols = n;
    if (shape == Shape::a_lower) k1 = i1 < k ? i1 : k;
    if (shape == Shape::a_upper) k0 = i0 < k ? i0 : k;
    if (shape == Shape::c_lower) {
      int64_t want = (i1 + W - 1) / W * W;  // whole vectors where possible
      cols = want < n ? want : n;
    }
    Strided<T> ai{a.a + i0 * a.rs, a.rs, a.cs};
    rows<T, MR, NV>(mr, cols, k0, k1, ai, b, ldb, c + i0 * ldc, ldc, accumulate);
  }
}

}  // namespace detail

/// C[m, n] = A[m, k] · B[k, n] (+ C when `accumulate`), skipping what `shape` says is zero; with
/// Shape::c_lower, C's columns past a row tile's last row are left as they were (the caller
/// masks them). B is row-major (row stride ldb), C too (row stride ldc). Before each row tile,
/// `ahead` (when given) asks the caches for a few more of the rows it holds.
template <class T>
void gemm_tiles(Shape shape, int64_t m, int64_t n, int64_t k, Strided<T> a, const T* b,
                int64_t ldb, T* c, int64_t ldc, bool accumulate, RowPrefetch* ahead = nullptr) {
  if (shape != Shape::full)
    return detail::shaped_rows<T, kTriRows, kTriVectors>(shape, m, n, k, a, b, ldb, c, ldc, accumulate, ahead);
  detail::shaped_rows<T, kTileRows, kTileVectors>(shape, m, n, k, a, b, ldb, c, ldc, accumulate, ahead);
}

/// Σ a[i] b[i] over n, in vector lanes, then the lanes in a fixed order.
template <class T>
T dot(const T* a, const T* b, int64_t n) {
  using S = Simd<T>;
  typename S::V acc = S::zero();
  int64_t i = 0;
  for (; i + S::W <= n; i += S::W) acc = S::fma(S::load(a + i), S::load(b + i), acc);
  T lanes[S::W];
  S::store(lanes, acc);
  T s = 0;
  for (int l = 0; l < S::W; ++l) s += lanes[l];
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

/// Σ a[i] over n, as dot().
template <class T>
T sum(const T* a, int64_t n) {
  using S = Simd<T>;
  typename S::V acc = S::zero();
  int64_t i = 0;
  for (; i + S::W <= n; i += S::W) acc = S::add(acc, S::load(a + i));
  T lanes[S::W];
  S::store(lanes, acc);
  T s = 0;
  for (int l = 0; l < S::W; ++l) s += lanes[l];
  for (; i < n; ++i) s += a[i];
  return s;
}

}  // namespace tg::kernels::linear_tiles
