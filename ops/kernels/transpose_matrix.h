#pragma once
// A matrix transposed into another buffer, for the attention kernels' small operands (linear
// attention's chunk states, the tiled kernels' packed query tiles).
#include <cstdint>
#include <type_traits>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace tg::kernels {

/// out [cols, rows] (row stride ldo) = in [rows, cols] (row stride ld) transposed; for float in
/// 8 x 8 blocks of AVX registers where it can.
template <class T>
void transpose_matrix(const T* in, int64_t rows, int64_t cols, int64_t ld, T* out, int64_t ldo) {
  int64_t r0 = 0;
#if defined(__AVX2__)
  if constexpr (std::is_same_v<T, float>) {
    for (; r0 + 8 <= rows; r0 += 8) {
      int64_t c0 = 0;
      for (; c0 + 8 <= cols; c0 += 8) {
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
      for (int64_t r = r0; r < r0 + 8; ++r)
        for (int64_t c = c0; c < cols; ++c) out[c * ldo + r] = in[r * ld + c];
    }
  }
#endif
  for (int64_t r = r0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) out[c * ldo + r] = in[r * ld + c];
}

}  // namespace tg::kernels
