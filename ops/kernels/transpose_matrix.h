#pragma once
// A matrix transposed into another buffer, for the attention kernels' small operands (linear
// attention's chunk states, the tiled kernels' packed query tiles).
#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace tg::kernels {

#if defined(__AVX2__)
namespace transpose_detail {

// out[c, r] = in[r, c] for r in [r0, r0 + 8), c in [c0, c0 + 8): an 8 x 8 block in AVX registers.
inline void block8(const float* in, int64_t ld, float* out, int64_t ldo, int64_t r0, int64_t c0) {
  __m256 r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(in + (r0 + i) * ld + c0);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    float* lo = out + (c0 + i) * ldo + r0;
    _mm256_storeu_ps(lo, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
    _mm256_storeu_ps(lo + 4 * ldo, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
  }
}

#if defined(__AVX512F__)
// The same for a 16 x 16 block in AVX-512 registers: 4 x 4 transposes inside each 128-bit lane
// (unpack, shuffle), then the lanes as a 4 x 4 matrix of blocks (two rounds of block shuffles):
// 0.25 shuffles per element against the 8 x 8 block's 0.375. Written with GCC's vector types and
// __builtin_shufflevector: GCC 12's AVX-512 shuffle intrinsics warn of an uninitialised operand.
using V16 = float __attribute__((vector_size(64)));
inline V16 unpack_lo(V16 a, V16 b) { return __builtin_shufflevector(a, b, 0, 16, 1, 17, 4, 20, 5, 21, 8, 24, 9, 25, 12, 28, 13, 29); }
inline V16 unpack_hi(V16 a, V16 b) { return __builtin_shufflevector(a, b, 2, 18, 3, 19, 6, 22, 7, 23, 10, 26, 11, 27, 14, 30, 15, 31); }
inline V16 pairs_lo(V16 a, V16 b) { return __builtin_shufflevector(a, b, 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29); }
inline V16 pairs_hi(V16 a, V16 b) { return __builtin_shufflevector(a, b, 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31); }
// 128-bit lanes (a0, a2, b0, b2) and (a1, a3, b1, b3).
inline V16 lanes_even(V16 a, V16 b) { return __builtin_shufflevector(a, b, 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27); }
inline V16 lanes_odd(V16 a, V16 b) { return __builtin_shufflevector(a, b, 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31); }

inline void block16(const float* in, int64_t ld, float* out, int64_t ldo, int64_t r0, int64_t c0) {
  V16 r[16], t[16];
  for (int i = 0; i < 16; ++i) std::memcpy(&r[i], in + (r0 + i) * ld + c0, sizeof(V16));
  for (int i = 0; i < 16; i += 2) {
    t[i] = unpack_lo(r[i], r[i + 1]);
    t[i + 1] = unpack_hi(r[i], r[i + 1]);
  }
  // r[4g + j], lane L: rows 4g .. 4g + 3 of column 4L + j.
  for (int g = 0; g < 16; g += 4) {
    r[g] = pairs_lo(t[g], t[g + 2]);
    r[g + 1] = pairs_hi(t[g], t[g + 2]);
    r[g + 2] = pairs_lo(t[g + 1], t[g + 3]);
    r[g + 3] = pairs_hi(t[g + 1], t[g + 3]);
  }
  for (int j = 0; j < 4; ++j) {
    const V16 u0 = lanes_even(r[j], r[4 + j]), u1 = lanes_odd(r[j], r[4 + j]);
    const V16 u2 = lanes_even(r[8 + j], r[12 + j]), u3 = lanes_odd(r[8 + j], r[12 + j]);
    const V16 col[4] = {lanes_even(u0, u2), lanes_even(u1, u3), lanes_odd(u0, u2), lanes_odd(u1, u3)};
    for (int L = 0; L < 4; ++L) std::memcpy(out + (c0 + 4 * L + j) * ldo + r0, &col[L], sizeof(V16));
  }
}
#endif

}  // namespace transpose_detail
#endif

/// out [cols, rows] (row stride ldo) = in [rows, cols] (row stride ld) transposed; for float in
/// 16 x 16 blocks of AVX-512 registers, then 8 x 8 ones of AVX, where it can.
template <class T>
void transpose_matrix(const T* in, int64_t rows, int64_t cols, int64_t ld, T* out, int64_t ldo) {
  int64_t r0 = 0;
#if defined(__AVX2__)
  if constexpr (std::is_same_v<T, float>) {
    namespace td = transpose_detail;
    for (; r0 + 8 <= rows;) {
      int64_t c0 = 0, band = 8;
#if defined(__AVX512F__)
      if (r0 + 16 <= rows) {
        band = 16;
        for (; c0 + 16 <= cols; c0 += 16) td::block16(in, ld, out, ldo, r0, c0);
      }
#endif
      for (; c0 + 8 <= cols; c0 += 8)
        for (int64_t h = 0; h < band; h += 8) td::block8(in, ld, out, ldo, r0 + h, c0);
      for (int64_t r = r0; r < r0 + band; ++r)
        for (int64_t c = c0; c < cols; ++c) out[c * ldo + r] = in[r * ld + c];
      r0 += band;
    }
  }
#endif
  for (int64_t r = r0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) out[c * ldo + r] = in[r * ld + c];
}

}  // namespace tg::kernels
