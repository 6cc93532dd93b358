#pragma once
// Strided rows copied into a contiguous buffer: the attention kernels' packing of a tile's rows
// (a head's rows lie H·D floats apart in [B, T, H, D]) before products read them many times; and
// back, a tile's rows written into place (streamed past the caches where they are not read again).
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "ops/kernels/attention_tile.h"

namespace tg::kernels {

/// Rows [0, rows) of dst (`ldd` elements apart) = those of src (`lds` apart), `cols` elements
/// each. In fixed 64-byte pieces, which the compiler moves through a vector register: one memcpy
/// call per row cost as much as copying 16 floats (12% of linear attention's fwd+bwd at D = 64
/// went to memmove).
template <class T>
void copy_row_block(const T* src, int64_t lds, int64_t rows, int64_t cols, T* dst, int64_t ldd) {
  constexpr int64_t kPiece = int64_t(64 / sizeof(T));
  for (int64_t r = 0; r < rows; ++r) {
    const T* from = src + r * lds;
    T* to = dst + r * ldd;
    int64_t e = 0;
    for (; e + kPiece <= cols; e += kPiece) std::memcpy(to + e, from + e, 64);
    for (; e < cols; ++e) to[e] = from[e];
  }
}

/// dst [rows, cols] (contiguous) = rows [0, rows) of src, `lds` elements apart.
template <class T>
void copy_rows(const T* src, int64_t lds, int64_t rows, int64_t cols, T* dst) {
  copy_row_block(src, lds, rows, cols, dst, cols);
}

/// The reverse: rows [0, rows) of dst, `ldd` elements apart, = src [rows, cols] (contiguous).
template <class T>
void copy_rows_to(const T* src, int64_t rows, int64_t cols, T* dst, int64_t ldd) {
  copy_row_block(src, cols, rows, cols, dst, ldd);
}

/// copy_rows_to with the floats of each row that are aligned for it stored past the caches
/// (stream_lanes), then stream_fence(): for rows written once and not read again soon, whose
/// lines would otherwise be read from memory before being overwritten.
template <class T>
void stream_rows_to(const T* src, int64_t rows, int64_t cols, T* dst, int64_t ldd) {
  if constexpr (!std::is_same_v<T, float>) {
    copy_rows_to(src, rows, cols, dst, ldd);
  } else {
    for (int64_t r = 0; r < rows; ++r) {
      const float* s = src + r * cols;
      float* d = dst + r * ldd;
      int64_t j = 0;
      for (; j + kTileLanes <= cols && streamable(d); j += kTileLanes) stream_lanes(d + j, load_lanes(s + j));
      copy_row_block(s + j, cols, 1, cols - j, d + j, ldd);
    }
    stream_fence();
  }
}

}  // namespace tg::kernels
