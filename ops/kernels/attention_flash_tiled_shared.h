#pragma once
// What the tiled flash kernels' forward (attention_flash_tiled_forward.cpp) and backward
// (attention_flash_tiled.cpp) share: the tile sizes, the walk over a query tile's key tiles (band,
// causal or a block mask), the scores of a tile pair with their masks, and the column maximum.
// Internal to those two files.
#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "ops/kernels/attention_flash_tiled.h"
#include "ops/kernels/attention_tile.h"
#include "ops/kernels/attention_tile_span.h"
#include "ops/kernels/row_prefetch.h"

namespace tg::kernels::flash_tiles {

inline constexpr int64_t kRows = kTiledRows, kCols = kTiledCols, kLanes = kTileLanes;
inline constexpr float kMinusInf = -std::numeric_limits<float>::infinity();
inline constexpr int64_t kNarrowBand = 1024;  // TiledFlash::narrow_band

inline int64_t tiled_count(int64_t n, int64_t tile) { return (n + tile - 1) / tile; }

// fn(x, false) for the tiles x in [first, end).
template <class F>
void for_tile_range(int64_t first, int64_t end, F&& fn) {
  for (int64_t x = first; x < end; ++x) fn(x, false);
}

// fn(x, partial) for the tiles x (below n, `per` to a block) of the blocks that CSR row `row`
// (start, index) lists, in order; kind(block) says whether a block is partial.
template <class Kind, class F>
void for_listed_tiles(const int64_t* start, const int32_t* index, int64_t row, int64_t per, int64_t n, Kind kind,
                      F&& fn) {
  for (int64_t e = start[row]; e < start[row + 1]; ++e) {
    const int64_t block = index[e];
    const bool partial = kind(block) == kBlockPartial;
    for (int64_t x = block * per, x1 = std::min(n, (block + 1) * per); x < x1; ++x) fn(x, partial);
  }
}

// What every tile of one call shares: sizes, masks and the head pointers.
struct TiledFlash {
  const AttnDims& d;
  float scale;
  const AttnMask<float>& mask;
  // The band (kNoBand: none) with causal folded in: query t sees keys [t - left, t + right].
  int64_t left, right;
  const AttnDropout& dropout;
  const float *q, *k, *v;
  // Row strides of q, k, v and their gradients (AttnDims: packed or contiguous); out and dout
  // are contiguous, rows of ldo = H * Dv.
  int64_t ldq, ldk, ldv, ldo;
  const TiledBlocks* blocks;  // flex's block mask, or null (then the band says which tiles run)

  const float* qh(int64_t b, int64_t h, int64_t t) const { return q + (b * d.T + t) * ldq + h * d.D; }
  // Query head h reads kv head d.kv_head(h) (grouped-query attention: the group's heads share it).
  const float* kh(int64_t b, int64_t h, int64_t s) const { return k + (b * d.S + s) * ldk + d.kv_head(h) * d.D; }
  const float* vh(int64_t b, int64_t h, int64_t s) const { return v + (b * d.S + s) * ldv + d.kv_head(h) * d.Dv; }
  // Key tile j's K and V rows of head (b, h), for reading, into a prefetch queue.
  void add_key_tile(RowPrefetch& ahead, int64_t b, int64_t h, int64_t j) const {
    const int64_t s0 = j * kCols, cols = std::min(kCols, d.S - s0);
    ahead.add(kh(b, h, s0), cols, ldk, d.D, false);
    ahead.add(vh(b, h, s0), cols, ldv, d.Dv, false);
  }
  int64_t orow(int64_t b, int64_t h, int64_t t) const { return (b * d.T + t) * ldo + h * d.Dv; }

  // fn(j, partial) for the key tiles j that query tile i of head (b, h) reaches, in order;
  // partial: a block mask's partial block, whose mask rows the tile evaluates. With a band:
  // keys t0 - left .. t1 - 1 + right of the tile's queries [t0, t1).
  template <class F>
  void for_key_tiles(int64_t b, int64_t h, int64_t i, F&& fn) const {
    const int64_t t0 = i * kRows, t1 = std::min(d.T, t0 + kRows), ns = tiled_count(d.S, kCols);
    if (!blocks)
      return for_tile_range(std::clamp<int64_t>(t0 - left, 0, d.S) / kCols,
                            tiled_count(std::clamp<int64_t>(t1 + right, 0, d.S), kCols), fn);
    const FlexBlocks& m = blocks->blocks;
    const int64_t qb = t0 / m.bq;
    for_listed_tiles(m.kv_start, m.kv_index, m.bh(b, h) * m.nq + qb, m.bk / kCols, ns,
                     [&](int64_t kb) { return m.kind_of(b, h, qb, kb); }, fn);
  }
  // fn(i, partial) for the query tiles i that reach key tile j of head (b, h), in order. With a
  // band: queries s0 - right .. s1 - 1 + left of the tile's keys [s0, s1).
  template <class F>
  void for_query_tiles(int64_t b, int64_t h, int64_t j, F&& fn) const {
    const int64_t s0 = j * kCols, s1 = std::min(d.S, s0 + kCols), nt = tiled_count(d.T, kRows);
    if (!blocks)
      return for_tile_range(std::clamp<int64_t>(s0 - right, 0, d.T) / kRows,
                            tiled_count(std::clamp<int64_t>(s1 + left, 0, d.T), kRows), fn);
    const FlexBlocks& m = blocks->blocks;
    const int64_t kb = s0 / m.bk;
    for_listed_tiles(m.q_start, m.q_index, m.bh(b, h) * m.nk + kb, m.bq / kRows, nt,
                     [&](int64_t qb) { return m.kind_of(b, h, qb, kb); }, fn);
  }
  // The span of the tile of queries [t0, t0 + kRows) and keys [s0, s0 + cols) under the band.
  TileSpan span(int64_t t0, int64_t s0, int64_t cols) const { return tile_span(t0, s0, cols, left, right); }

  // True when a query tile reaches few keys (a band of at most kNarrowBand keys, or blocks that
  // list as many on average): then the tasks run the heads of a query tile one after another, so
  // that the rows of q, k, v and out they read and write (each a head's D floats of a
  // [B, T, H, D] row) are read whole while in cache, where head by head each streamed from memory
  // in pieces H·D floats apart.
  bool narrow_band() const {
    if (!blocks) return left + right <= kNarrowBand;
    const FlexBlocks& m = blocks->blocks;
    const int64_t rows = m.mB * m.mH * m.nq;
    return rows > 0 && m.kv_start[rows] * m.bk <= kNarrowBand * rows;
  }

  // keepT [cols, kRows]: the dropout scales of the tile's (query, key) pairs, as dense draws them.
  void dropout_scales(int64_t b, int64_t h, int64_t t0, int64_t rows, int64_t s0, int64_t cols, float* keepT) const {
    const uint64_t index0 = uint64_t(((b * d.H + h) * d.T + t0) * d.S + s0);
    dropout_keep_tile(dropout.seed, dropout.offset, dropout.p, float(dropout.scale()), index0, uint64_t(d.S), rows,
                      cols, keepT, kRows);
  }

  bool all_padding(int64_t b, int64_t s0, int64_t cols) const {
    if (!mask.key_padding) return false;
    const bool* kp = mask.key_padding + b * d.S + s0;
    return std::all_of(kp, kp + cols, [](bool x) { return x; });
  }

  // sT [cols, kRows] = K_j · qT (qT [D, kRows] holds scale · Qᵀ), then -inf where a key is
  // padding, outside the band (causal: after the query), or (partial: a block mask's partial
  // block) where the mask hides it from one of the tile's `rows` queries. Returns false, having
  // computed nothing, when the mask hides every key of the tile from every query: its weights
  // are all zero, so the tile adds nothing anywhere.
  // Only the span's chunks and lanes are computed (sp: span() of the tile).
  bool scores(int64_t b, int64_t h, int64_t t0, int64_t rows, int64_t s0, int64_t cols, bool partial,
              const TileSpan& sp, const float* qT, float* sT) const {
    if (partial && blocks->mask) {
      if (const int32_t* runs = blocks->blocks.runs_from(b, h, t0, s0 / blocks->blocks.bk))
        return scores_in_runs(b, h, t0, rows, s0, cols, runs, qT, sT);
    }
    const bool masked = partial && blocks->mask;
    bool allowed[kRows * kCols];  // [rows, cols] of the mask, row stride kCols
    if (masked) {
      bool any = false;
      for (int64_t r = 0; r < rows; ++r) {
        bool* row = allowed + r * kCols;
        (*blocks->mask)(b, h, blocks->q_offset + t0 + r, s0, cols, row);
        any = any || std::any_of(row, row + cols, [](bool x) { return x; });
      }
      if (!any) return false;
    }
    span_product(sp, cols, d.D, kh(b, h, s0), ldk, qT, sT);
    modify_scores(b, h, t0, rows, s0, cols, sT);
    if (masked)
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c)
          if (!allowed[r * kCols + c]) sT[c * kRows + r] = kMinusInf;
    return scores_masked_by_padding_and_band(b, t0, s0, cols, sp, sT);
  }

  // scores() on a partial block's tile whose rows each see one run of keys, runs [first, end)
  // per row (the block mask's): the mask_mod is not evaluated. Returns false when no row sees a
  // key of the tile; a tile every row sees whole takes no masking.
  bool scores_in_runs(int64_t b, int64_t h, int64_t t0, int64_t rows, int64_t s0, int64_t cols, const int32_t* runs,
                      const float* qT, float* sT) const {
    alignas(64) int32_t first[kRows], end[kRows];  // the runs in tile columns, [0, cols]
    bool any = false, whole = true;
    for (int64_t r = 0; r < kRows; ++r) {
      if (r < rows) {
        first[r] = int32_t(std::clamp<int64_t>(runs[2 * r] - s0, 0, cols));
        end[r] = int32_t(std::clamp<int64_t>(runs[2 * r + 1] - s0, first[r], cols));
      } else {
        first[r] = 0, end[r] = int32_t(cols);  // lanes past the last query: ignored
      }
      any = any || first[r] < end[r];
      whole = whole && first[r] == 0 && end[r] == cols;
    }
    if (!any) return false;
    tile_gemm(false, cols, kRows, d.D, kh(b, h, s0), ldk, 1, qT, kRows, sT, kRows);
    modify_scores(b, h, t0, rows, s0, cols, sT);
    if (!whole)
      for (int64_t c = 0; c < cols; ++c)
        for (int64_t r = 0; r < kRows; r += kLanes) {
          const TileInt column = TileInt{} + int32_t(c);
          TileInt lo, hi;
          std::memcpy(&lo, first + r, sizeof lo);
          std::memcpy(&hi, end + r, sizeof hi);
          float* p = sT + c * kRows + r;
          store_lanes(p, (column >= lo) & (column < hi) ? load_lanes(p) : splat_value(kMinusInf));
        }
    return scores_masked_by_padding_and_band(b, t0, s0, cols, span(t0, s0, cols), sT);
  }

  // The score_mod of flex's forward (blocks->score) on the tile's scores, one key column (its
  // `rows` queries, contiguous in the transposed tile) at a time.
  void modify_scores(int64_t b, int64_t h, int64_t t0, int64_t rows, int64_t s0, int64_t cols, float* sT) const {
    if (!blocks || !blocks->score) return;
    for (int64_t c = 0; c < cols; ++c)
      blocks->score->score_column(sT + c * kRows, b, h, blocks->q_offset + t0, s0 + c, rows);
  }

  // The key padding and the band of scores(), applied to a computed tile (sp: its span); returns
  // true.
  bool scores_masked_by_padding_and_band(int64_t b, int64_t t0, int64_t s0, int64_t cols, const TileSpan& sp,
                                         float* sT) const {
    if (mask.key_padding) {
      const bool* kp = mask.key_padding + b * d.S + s0;
      for (int64_t c = 0; c < cols; ++c)
        if (kp[c]) std::fill_n(sT + c * kRows, kRows, kMinusInf);
    }
    if (!sp.whole) hide_outside_band(t0, s0, cols, sp, sT);
    return true;
  }

  // -inf where a tile crossing an edge of the band hides a key from a query: query t0 + r sees
  // key s0 + c when s0 + c - right <= t0 + r <= s0 + c + left, so lanes [first, end) of column c.
  // Only the span's lanes are read after, and of those only the vectors an edge crosses change:
  // a blend each. Filling every hidden lane cost 0.6k cycles a tile (a triangle's tile at D = 64
  // took 10k in all), most of it in the fills' scalar ends.
  void hide_outside_band(int64_t t0, int64_t s0, int64_t cols, const TileSpan& sp, float* sT) const {
    TileInt lane;
    for (int64_t x = 0; x < kLanes; ++x) lane[x] = int32_t(x);
    for (int64_t u = 0; u < kSpanChunks && u * kSpanCols < cols; ++u)
      for (int64_t c = u * kSpanCols, c1 = std::min(cols, c + kSpanCols); c < c1; ++c) {
        const int64_t first = std::clamp<int64_t>(s0 + c - right - t0, 0, kRows);
        const int64_t end = std::clamp<int64_t>(s0 + c + left + 1 - t0, first, kRows);
        for (int64_t r = sp.lane_lo[u]; r < sp.lane_hi[u]; r += kLanes) {
          if (r >= first && r + kLanes <= end) continue;
          const TileInt at = lane + int32_t(r);
          float* p = sT + c * kRows + r;
          store_lanes(p, (at >= int32_t(first)) & (at < int32_t(end)) ? load_lanes(p) : splat_value(kMinusInf));
        }
      }
  }
};

// max(init, column 0, ..., column cols - 1) lane by lane, the columns kRows floats apart. Four
// running maxima, so that the loop waits on a max's latency (4 cycles) once per four columns,
// not once per column: with one, this pass took as long as the exp at D = 16. NaN scores are
// never taken, as with one.
inline TileVec column_max(const float* first, int64_t cols, TileVec init) {
  TileVec mx[4] = {init, init, init, init};
  int64_t c = 0;
  for (; c + 4 <= cols; c += 4)
    for (int u = 0; u < 4; ++u) {
      const TileVec x = load_lanes(first + (c + u) * kRows);
      mx[u] = x > mx[u] ? x : mx[u];
    }
  for (; c < cols; ++c) {
    const TileVec x = load_lanes(first + c * kRows);
    mx[0] = x > mx[0] ? x : mx[0];
  }
  for (int u = 1; u < 4; ++u) mx[0] = mx[u] > mx[0] ? mx[u] : mx[0];
  return mx[0];
}

// A group of query tiles' key tiles, todo[x] = (j, partial) of query tile x in increasing j, for
// x < n: fn(x, j, partial) key tile by key tile, smallest j first, each key tile's query tiles in
// order. Each query tile still meets its key tiles in increasing order, as it would alone, while
// a key tile's K and V rows are read once for the group.
template <class F>
void for_pairs_by_key_tile(const std::vector<std::vector<std::pair<int64_t, bool>>>& todo, size_t n, F&& fn) {
  std::vector<size_t> next(n, 0);
  for (;;) {
    int64_t j = std::numeric_limits<int64_t>::max();  // the smallest key tile still pending
    for (size_t x = 0; x < n; ++x)
      if (next[x] < todo[x].size()) j = std::min(j, todo[x][next[x]].first);
    if (j == std::numeric_limits<int64_t>::max()) return;
    for (size_t x = 0; x < n; ++x)
      if (next[x] < todo[x].size() && todo[x][next[x]].first == j) fn(x, j, todo[x][next[x]++].second);
  }
}

// The call's shared state; causal folds into the band's right edge (keys up to t + offset).
inline TiledFlash tiled_flash(const AttnDims& d, float scale, const AttnMask<float>& mask, const AttnBand& band,
                       const AttnDropout& dropout, const float* q, const float* k, const float* v,
                       const TiledBlocks* blocks) {
  const int64_t right = mask.causal ? std::min(band.right, mask.offset) : band.right;
  return TiledFlash{d, scale, mask, band.left, right, dropout, q, k, v, d.ldq(), d.ldk(), d.ldv(), d.H * d.Dv, blocks};
}

}  // namespace tg::kernels::flash_tiles
