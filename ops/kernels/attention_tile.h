#pragma once
// The register-blocked pieces of the f32 flash-style kernels: one small product kernel for every
// product of a tile pair, a softmax exp for scores below their running maximum, and the
// transposed copies that put queries along the vector lanes.
//
// Why queries along the lanes: with the score tile held transposed, Sᵀ [keys, queries], the
// softmax statistics of a query (running max, normaliser, log-sum-exp) are one lane each, so
// the max, exp and sum over keys are vertical vector operations with no horizontal reduction,
// and the same tile is an operand of every product of the backward without a transpose.
// Every product of a tile pair (QKᵀ, PV, dO Vᵀ, dV, dK, dQ) is one call of tile_gemm: C [M, N]
// (+)= A [M, K] · B [K, N], B's rows contiguous along the lanes, A read one scalar at a time at
// any strides (broadcast to the lanes), so thin head widths (D = 16) need no BLAS call on a
// thin panel and no packing of K or V.
#include <bit>
#include <cstdint>
#include <cstring>

#include "ops/kernels/float8.h"

#if defined(__AVX__)
#include <immintrin.h>
#endif

namespace tg::kernels {

/// Lanes of one vector register: sixteen floats where the build targets AVX-512 (32 registers,
/// twice AVX2's FMA width), else eight (AVX2's width, 16 registers).
#if defined(__AVX512F__)
inline constexpr int64_t kTileLanes = 16;
using TileVec = float __attribute__((vector_size(64)));
using TileInt = int32_t __attribute__((vector_size(64)));
#else
inline constexpr int64_t kTileLanes = 8;
using TileVec = Float8;
using TileInt = Int8;
#endif

/// The products' N (and so the tiled kernels' head widths) must be a multiple of this: eight
/// lanes (AVX2's vector; on AVX-512 a strip of 8 after the 16-lane ones).
inline constexpr int64_t kTileMinN = 8;

/// C[m, n] (+)= Σ_k A(m, k) · B[k, n] for m < M, n < N, k < K (accumulate: add to C; else
/// overwrite it). A(m, k) = a[m * a_ms + k * a_ks] (any strides: a row-major matrix, its
/// transpose, or a strided head of q/k/v); B [K, N] rows of stride ldb; C [M, N] rows of stride
/// ldc. N must be a multiple of kTileMinN. Each C element sums its K terms in order k = 0, 1, ...
/// starting from C (or 0): the same bits whatever the blocking of M and N.
void tile_gemm(bool accumulate, int64_t M, int64_t N, int64_t K, const float* a, int64_t a_ms,
               int64_t a_ks, const float* b, int64_t ldb, float* c, int64_t ldc);

/// The dropout scales of a tile held transposed: keepT[c * ld + r] = scale where AttnDropout::keep
/// keeps element index0 + r * row_step + c of the [B, H, T, S] draw (query r, key c of the tile),
/// else 0, for r < rows, c < cols; rows..ld are 0. The same draws as keep() (Philox4x32-10,
/// uniform in 53 bits against p), eight blocks at a time so the rounds vectorise.
void dropout_keep_tile(uint64_t seed, uint64_t offset, double p, float scale, uint64_t index0,
                       uint64_t row_step, int64_t rows, int64_t cols, float* keepT, int64_t ld);

/// dst [cols, rows_pad] = scale · src [rows, cols]ᵀ, src rows of stride lds; the columns
/// rows..rows_pad of dst are zero (rows padded to the lanes).
void transpose_tile(const float* src, int64_t lds, int64_t rows, int64_t cols, float scale,
                    float* dst, int64_t rows_pad);

/// x in every lane (a broadcast, not `TileVec{} + x`, which costs an add: 0 + x is not x for -0).
inline TileVec splat_value(float x) {
#if defined(__AVX512F__)
  return _mm512_set1_ps(x);
#else
  return TileVec{x, x, x, x, x, x, x, x};
#endif
}

/// a * b + c, fused where the target has FMA (the build's -std=c++20 does not contract a * b + c).
inline TileVec fma_lanes(TileVec a, TileVec b, TileVec c) {
#if defined(__AVX512F__)
  return _mm512_fmadd_ps(a, b, c);
#elif defined(__FMA__)
  return _mm256_fmadd_ps(a, b, c);
#else
  return a * b + c;
#endif
}

/// e^x on every lane for softmax weights, x <= 88 (or NaN): exact 0 for -inf and for x below
/// about -87.7 (where 2^n is below float's smallest normal: negligible beside the row's largest
/// weight, e^0), exact 1 for 0; elsewhere within 2 ulp plus the rounding of y = x · log2(e),
/// at most |x| · 2^-23 relative (measured: 1.1e-7 at x = -1, 1.8e-7 at -20, 3.8e-6 at worst
/// over [-87, 10]; the x - max it is called on carries an error of that order already;
/// tests/ops/test_attention_tile.cpp).
/// Cheaper than fast_exp (one scaling, FMAs), which matters where the exp costs as much as the
/// products (D = 16): 12 vector operations, 7 of them on the FMA units that the tile products
/// keep busy. In base 2, y = n + r with n an integer and |r| <= 1/2 by two adds and a subtraction,
/// all exact, then 2^r by the polynomial 1 + c1 r + ... + c5 r^5 (the coefficients of least
/// relative error for e^u on |u| <= ln2 / 2, 8.4e-8, fitted by linear programming on 4,001
/// points, times ln2^k). The Cody-Waite reduction in base e it replaces (x = n ln2 + r) took two
/// FMAs more: sliding window 256, causal forward, one thread, T = 8192, D = 16, 2-3% less time.
inline TileVec softmax_exp(TileVec x) {
  // Adding 1.5 * 2^23 rounds to an integer in the low bits; the 127 rides along, so that t's low
  // bits are n + 127, 2^n's exponent field.
  constexpr float kShift = 12582912.0f + 127.0f;
  // -127 > y ? -127 : y is one vmaxps, and NaN stays NaN. Written with vector operators because
  // GCC 12's _mm512_max_ps warns of an uninitialised operand wherever it is inlined.
  const TileVec lowest = splat_value(-127.0f);
  TileVec y = x * splat_value(1.44269504088896341f);
  y = lowest > y ? lowest : y;
  const TileVec t = y + kShift;
  const TileVec r = y - (t - kShift);
  TileVec p = fma_lanes(splat_value(1.3221133645539567e-3f), r, splat_value(9.67025219534531e-3f));
  p = fma_lanes(p, r, splat_value(5.5508318473850654e-2f));
  p = fma_lanes(p, r, splat_value(2.4022264094587892e-1f));
  p = fma_lanes(p, r, splat_value(6.931469326905135e-1f));
  p = fma_lanes(p, r, splat_value(1.0f));
  // 2^n from t's low bits (n + 127 shifted into the exponent field); n = -127 (y <= -126.5)
  // gives the bits of 0.
  return p * std::bit_cast<TileVec>(std::bit_cast<TileInt>(t) << 23);
}

/// Σ a[e] · b[e] accumulated in order e = 0, 1, ... with fma_lanes's operation: the rounding of
/// one lane of tile_gemm's products. The backward's delta = rowsum(dO ∘ O) uses it so that a row
/// whose weight is all on one key gets dP - delta = 0 exactly, as dense does.
inline float dot_in_order(const float* a, const float* b, int64_t n) {
  float acc = 0.0f;
  for (int64_t e = 0; e < n; ++e) {
#if defined(__FMA__)
    acc = __builtin_fmaf(a[e], b[e], acc);
#else
    acc = a[e] * b[e] + acc;
#endif
  }
  return acc;
}

/// Whether p can take stream_lanes (aligned to a whole vector, as the non-temporal stores need).
inline bool streamable(const float* p) { return reinterpret_cast<uintptr_t>(p) % sizeof(TileVec) == 0; }

/// Stores v at p (streamable) past the caches, without reading its line first, where the target
/// has non-temporal stores; call stream_fence() before other threads read what was written.
inline void stream_lanes(float* p, TileVec v) {
#if defined(__AVX512F__)
  _mm512_stream_ps(p, v);
#elif defined(__AVX__)
  _mm256_stream_ps(p, v);
#else
  std::memcpy(p, &v, sizeof v);
#endif
}

/// Orders the stream_lanes stores before later stores.
inline void stream_fence() {
#if defined(__AVX__)
  _mm_sfence();
#endif
}

inline TileVec load_lanes(const float* p) {
  TileVec v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store_lanes(float* p, TileVec v) { std::memcpy(p, &v, sizeof v); }

}  // namespace tg::kernels
