#pragma once
// The part of a tiled kernel's tile that a band edge (causal's diagonal, a sliding window's
// edges) leaves visible, and the tile products restricted to it (attention_flash_tiled.cpp).
//
// A tile is [kTiledCols keys, kTiledRows queries] held transposed, the queries along the vector
// lanes. Its key columns go in chunks of kSpanCols, each with the lanes (whole vectors) that see
// one of its keys, and its lanes in strips of kTileLanes, each with the columns (whole chunks) it
// sees. The products and the exp of a tile crossing an edge run only there: a triangle's 64 x 64
// tile takes 10 of its 16 chunk-strip blocks. Lanes outside a chunk's range see none of its keys,
// so their weights are 0 and the products they leave out add nothing.
#include <algorithm>
#include <cstdint>

#include "ops/kernels/attention_flash_tiled.h"
#include "ops/kernels/attention_tile.h"

namespace tg::kernels {

inline constexpr int64_t kSpanCols = 16;
inline constexpr int64_t kSpanChunks = kTiledCols / kSpanCols, kSpanStrips = kTiledRows / kTileLanes;

struct TileSpan {
  bool whole = true;  ///< the tile lies inside the band: every lane sees every column it computes
  int64_t lane_lo[kSpanChunks] = {}, lane_hi[kSpanChunks] = {};  ///< per column chunk; lo == hi: no lane
  int64_t col_lo[kSpanStrips] = {}, col_hi[kSpanStrips] = {};    ///< per lane strip; lo == hi: no column

  /// [lo, hi) of the columns strip v sees (all `cols` when whole).
  int64_t cols_from(int64_t v) const { return whole ? 0 : col_lo[v]; }
  int64_t cols_to(int64_t v, int64_t cols) const { return whole ? cols : col_hi[v]; }
};

/// The span of the tile of queries [t0, t0 + kTiledRows) and keys [s0, s0 + cols) when query t sees
/// key s only if t - left <= s <= t + right.
inline TileSpan tile_span(int64_t t0, int64_t s0, int64_t cols, int64_t left, int64_t right) {
  constexpr int64_t kRows = kTiledRows, kLanes = kTileLanes;
  TileSpan sp;
  sp.whole = !(s0 + cols - 1 > t0 + right || t0 + kRows - 1 > s0 + left);
  if (sp.whole) return sp;
  for (int64_t u = 0; u < kSpanChunks && u * kSpanCols < cols; ++u) {
    const int64_t c0 = u * kSpanCols, c1 = std::min(cols, c0 + kSpanCols);
    const int64_t first = std::clamp<int64_t>(s0 + c0 - right - t0, 0, kRows);
    const int64_t end = std::clamp<int64_t>(s0 + c1 + left - t0, first, kRows);
    if (first == end) continue;
    sp.lane_lo[u] = first / kLanes * kLanes;
    sp.lane_hi[u] = (end + kLanes - 1) / kLanes * kLanes;
  }
  // The chunks a strip is in are consecutive: both edges of a column's lanes rise with it.
  for (int64_t v = 0; v < kSpanStrips; ++v) {
    const int64_t r = v * kLanes;
    for (int64_t u = 0; u < kSpanChunks; ++u) {
      if (sp.lane_lo[u] > r || sp.lane_hi[u] <= r) continue;
      if (sp.col_lo[v] == sp.col_hi[v]) sp.col_lo[v] = u * kSpanCols;
      sp.col_hi[v] = std::min(cols, (u + 1) * kSpanCols);
    }
  }
  return sp;
}

/// sT [cols, kTiledRows] = A · bT on the span's chunks and lanes (the rest of sT is left as it
/// was): A's rows a (stride lda, K wide) are the tile's keys (or values), bT [K, kTiledRows].
inline void span_product(const TileSpan& sp, int64_t cols, int64_t K, const float* a, int64_t lda, const float* bT,
                         float* sT) {
  constexpr int64_t kRows = kTiledRows;
  if (sp.whole) return tile_gemm(false, cols, kRows, K, a, lda, 1, bT, kRows, sT, kRows);
  for (int64_t u = 0; u < kSpanChunks && u * kSpanCols < cols; ++u) {
    const int64_t c0 = u * kSpanCols, lo = sp.lane_lo[u], hi = sp.lane_hi[u];
    if (lo < hi)
      tile_gemm(false, std::min(kSpanCols, cols - c0), hi - lo, K, a + c0 * lda, lda, 1, bT + lo, kRows,
                sT + c0 * kRows + lo, kRows);
  }
}

/// oT [M, kTiledRows] += A · Pᵀ on the span: A(m, c) = a[m + c * lda] (a key tile's values, column
/// c its key), pT [cols, kTiledRows] the tile's weights; chunk by chunk.
inline void span_values_product(const TileSpan& sp, int64_t M, int64_t cols, const float* a, int64_t lda,
                                const float* pT, float* oT) {
  constexpr int64_t kRows = kTiledRows;
  if (sp.whole) return tile_gemm(true, M, kRows, cols, a, 1, lda, pT, kRows, oT, kRows);
  for (int64_t u = 0; u < kSpanChunks && u * kSpanCols < cols; ++u) {
    const int64_t c0 = u * kSpanCols, lo = sp.lane_lo[u], hi = sp.lane_hi[u];
    if (lo < hi)
      tile_gemm(true, M, hi - lo, std::min(kSpanCols, cols - c0), a + c0 * lda, 1, lda, pT + c0 * kRows + lo, kRows,
                oT + lo, kRows);
  }
}

/// C [cols, N] (+)= Xᵀ [cols, rows] · Y [rows, N] on the span (a key tile's dV or dK: X the
/// transposed weights or dS, Y the query tile's packed dO or Q rows, C the key rows, stride
/// ldc); a chunk no lane sees is zeroed when not accumulating.
inline void span_key_product(const TileSpan& sp, bool accumulate, int64_t cols, int64_t rows, int64_t N,
                             const float* xT, const float* y, float* c, int64_t ldc) {
  constexpr int64_t kRows = kTiledRows;
  if (sp.whole) return tile_gemm(accumulate, cols, N, rows, xT, kRows, 1, y, N, c, ldc);
  for (int64_t u = 0; u < kSpanChunks && u * kSpanCols < cols; ++u) {
    const int64_t c0 = u * kSpanCols, n = std::min(kSpanCols, cols - c0);
    const int64_t lo = sp.lane_lo[u], hi = std::min(sp.lane_hi[u], rows);
    if (lo < hi)
      tile_gemm(accumulate, n, N, hi - lo, xT + c0 * kRows + lo, kRows, 1, y + lo * N, N, c + c0 * ldc, ldc);
    else if (!accumulate)
      for (int64_t x = 0; x < n; ++x) std::fill_n(c + (c0 + x) * ldc, N, 0.0f);
  }
}

/// dQ [rows, N] (+)= dS [rows, cols] · K [cols, N] on the span, strip by strip over each strip's
/// columns: dsT [cols, kTiledRows] (transposed), K's rows k (stride ldk), dQ's rows dq (stride
/// ldq); a strip that sees no column is zeroed when not accumulating.
inline void span_query_product(const TileSpan& sp, bool accumulate, int64_t rows, int64_t cols, int64_t N,
                               const float* dsT, const float* k, int64_t ldk, float* dq, int64_t ldq) {
  constexpr int64_t kRows = kTiledRows, kLanes = kTileLanes;
  if (sp.whole) return tile_gemm(accumulate, rows, N, cols, dsT, 1, kRows, k, ldk, dq, ldq);
  for (int64_t v = 0; v < kSpanStrips && v * kLanes < rows; ++v) {
    const int64_t r0 = v * kLanes, n = std::min(kLanes, rows - r0), c0 = sp.col_lo[v], c1 = sp.col_hi[v];
    if (c0 < c1)
      tile_gemm(accumulate, n, N, c1 - c0, dsT + c0 * kRows + r0, 1, kRows, k + c0 * ldk, ldk, dq + r0 * ldq, ldq);
    else if (!accumulate)
      for (int64_t x = 0; x < n; ++x) std::fill_n(dq + (r0 + x) * ldq, N, 0.0f);
  }
}

}  // namespace tg::kernels
