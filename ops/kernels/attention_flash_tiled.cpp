// The f32 flash attention kernels on register-blocked tiles (see attention_flash_tiled.h).
#include "ops/kernels/attention_flash_tiled.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "ops/kernels/attention_tile.h"
#include "ops/kernels/attention_tile_span.h"
#include "ops/kernels/copy_rows.h"
#include "ops/kernels/parallel.h"
#include "ops/kernels/transpose_matrix.h"

namespace tg::kernels {
namespace {

constexpr int64_t kRows = kTiledRows, kCols = kTiledCols, kLanes = kTileLanes;
constexpr float kMinusInf = -std::numeric_limits<float>::infinity();
// Query tiles the one-pass backward takes together (query_group_pairs): 8 tiles' packed Qᵀ, dOᵀ
// and their Q, dO, dQ rows take 1.25 MiB at D = 128, inside a 2 MiB L2.
constexpr int64_t kQueryGroup = 8;
constexpr float kPlusInf = std::numeric_limits<float>::infinity();

constexpr int64_t kNarrowBand = 1024;  // TiledFlash::narrow_band

int64_t tiled_count(int64_t n, int64_t tile) { return (n + tile - 1) / tile; }

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
    return scores_masked_by_padding_and_band(b, t0, s0, cols, sT);
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
    return scores_masked_by_padding_and_band(b, t0, s0, cols, sT);
  }

  // The score_mod of flex's forward (blocks->score) on the tile's scores, one key column (its
  // `rows` queries, contiguous in the transposed tile) at a time.
  void modify_scores(int64_t b, int64_t h, int64_t t0, int64_t rows, int64_t s0, int64_t cols, float* sT) const {
    if (!blocks || !blocks->score) return;
    for (int64_t c = 0; c < cols; ++c)
      blocks->score->score_column(sT + c * kRows, b, h, blocks->q_offset + t0, s0 + c, rows);
  }

  // The key padding and the band of scores(), applied to a computed tile; returns true.
  bool scores_masked_by_padding_and_band(int64_t b, int64_t t0, int64_t s0, int64_t cols, float* sT) const {
    if (mask.key_padding) {
      const bool* kp = mask.key_padding + b * d.S + s0;
      for (int64_t c = 0; c < cols; ++c)
        if (kp[c]) std::fill_n(sT + c * kRows, kRows, kMinusInf);
    }
    // Query t0 + r sees key s0 + c when s0 + c - right <= t0 + r <= s0 + c + left: lanes below
    // the first and above the last are hidden (only in tiles that cross an edge of the band).
    if (s0 + cols - 1 > t0 + right || t0 + kRows - 1 > s0 + left) {
      for (int64_t c = 0; c < cols; ++c) {
        float* row = sT + c * kRows;
        const int64_t first = std::clamp<int64_t>(s0 + c - right - t0, 0, kRows);
        const int64_t end = std::clamp<int64_t>(s0 + c + left + 1 - t0, first, kRows);
        std::fill(row, row + first, kMinusInf);
        std::fill(row + end, row + kRows, kMinusInf);
      }
    }
    return true;
  }
};

// max(init, column 0, ..., column cols - 1) lane by lane, the columns kRows floats apart. Four
// running maxima, so that the loop waits on a max's latency (4 cycles) once per four columns,
// not once per column: with one, this pass took as long as the exp at D = 16. NaN scores are
// never taken, as with one.
TileVec column_max(const float* first, int64_t cols, TileVec init) {
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

// The forward's state of one query tile: scale · Qᵀ, the output accumulator oT [Dv, kRows] and
// the lanes' running maximum and normaliser (the online softmax, down the lanes).
// Its buffers are left unwritten until start(): a task's scratch is made anew for every chunk of
// tasks a thread takes, and zeroing eight tiles' buffers each time cost a fifth of T = 1024.
struct ForwardTile {
  std::unique_ptr<float[]> qT, oT;  // [D, kRows], [Dv, kRows]
  float m[kRows], l[kRows];
  int64_t t0 = 0, rows = 0;
  explicit ForwardTile(const AttnDims& d)
      : qT(std::make_unique_for_overwrite<float[]>(size_t(d.D * kRows))),
        oT(std::make_unique_for_overwrite<float[]>(size_t(d.Dv * kRows))) {}

  void start(const TiledFlash& f, int64_t b, int64_t h, int64_t i) {
    t0 = i * kRows;
    rows = std::min(kRows, f.d.T - t0);
    transpose_tile(f.qh(b, h, t0), f.ldq, rows, f.d.D, f.scale, qT.get(), kRows);
    std::fill_n(oT.get(), f.d.Dv * kRows, 0.0f);
    std::fill_n(m, kRows, kMinusInf);
    std::fill_n(l, kRows, 0.0f);
  }

  // out rows = oT / l, lane by lane, then transposed into place, and the rows' lse; a row whose
  // every key is masked gets zeros, as dense, and lse -inf.
  void finish(const TiledFlash& f, int64_t b, int64_t h, float* out, float* lse) {
    const int64_t Dv = f.d.Dv;
    for (int64_t r = 0; r < kRows; r += kLanes) {
      const TileVec lr = load_lanes(l + r), inv = splat_value(1.0f) / lr;
      for (int64_t e = 0; e < Dv; ++e) {
        float* p = oT.get() + e * kRows + r;
        store_lanes(p, lr == 0.0f ? TileVec{} : load_lanes(p) * inv);
      }
    }
    transpose_matrix(oT.get(), Dv, rows, kRows, out + f.orow(b, h, t0), f.ldo);
    float* lh = lse + (b * f.d.H + h) * f.d.T + t0;
    for (int64_t r = 0; r < rows; ++r) lh[r] = l[r] == 0.0f ? kMinusInf : m[r] + std::log(l[r]);
  }
};

// Query tiles the forward takes together over a wide band: each key tile's K and V rows are
// read once for the group instead of once per query tile (a head's rows lie H·D floats apart, so
// that they use 1/H of the cache's sets: at T = 16384 a head's K and V no longer stayed in it).
// One thread, causal, T = 16384: 1728 -> 1428 ms at D = 64, 3441 -> 2704 ms at D = 128 (groups
// of 4: 1452 and 2836); T = 4096 within noise. At most this many (flash_tiled_forward).
constexpr int64_t kForwardGroup = 8;

// A task's scratch for groups of up to `group` query tiles.
struct ForwardScratch {
  std::vector<ForwardTile> tiles;
  std::vector<float> sT, keepT;  // [kCols, kRows]: a pair's scores, then weights; dropout scales
  std::vector<std::vector<std::pair<int64_t, bool>>> todo;  // per query tile: its key tiles (j, partial)
  ForwardScratch(const AttnDims& d, bool dropout, int64_t group)
      : sT(size_t(kCols * kRows)), keepT(dropout ? size_t(kCols * kRows) : 0), todo(size_t(group)) {
    tiles.reserve(size_t(group));
    for (int64_t x = 0; x < group; ++x) tiles.emplace_back(d);
  }
};

// One tile pair of the forward: query tile q with key tile j, one online-softmax step.
void forward_pair(const TiledFlash& f, int64_t b, int64_t h, ForwardTile& q, int64_t j, bool partial,
                  ForwardScratch& s) {
  const AttnDims& d = f.d;
  const int64_t t0 = q.t0, rows = q.rows, Dv = d.Dv;
  // The pointers held locally: the vector stores (memcpy) may alias anything, and through
  // references every store reloaded them.
  float *const sT = s.sT.data(), *const oT = q.oT.get(), *const m = q.m, *const l = q.l;
  const int64_t s0 = j * kCols, cols = std::min(kCols, d.S - s0);
  const TileSpan sp = f.span(t0, s0, cols);
  if (f.all_padding(b, s0, cols) || !f.scores(b, h, t0, rows, s0, cols, partial, sp, q.qT.get(), sT)) return;
  const bool drop = f.dropout.active();
  if (drop) f.dropout_scales(b, h, t0, rows, s0, cols, s.keepT.data());
  for (int64_t r = 0; r < kRows; r += kLanes) {
    // The strip's columns (all of them unless the tile crosses a band edge).
    const int64_t c_lo = sp.cols_from(r / kLanes), c_hi = sp.cols_to(r / kLanes, cols);
    if (c_lo == c_hi) continue;
    const TileVec m_old = load_lanes(m + r);
    const TileVec mx = column_max(sT + c_lo * kRows + r, c_hi - c_lo, m_old);
    // A lane that has seen no visible key keeps m = -inf; exp(x - 0) of its -inf scores is 0.
    TileVec shift = mx == kMinusInf ? TileVec{} : mx;
    TileVec alpha = softmax_exp(m_old - shift);  // 0 while m_old is -inf (acc and l are 0 then)
    TileVec sum{};
    for (int64_t c = c_lo; c < c_hi; ++c) {
      float* p = sT + c * kRows + r;
      TileVec e = softmax_exp(load_lanes(p) - shift);
      // Dropout after the softmax: the normaliser keeps the un-dropped weights.
      store_lanes(p, drop ? e * load_lanes(s.keepT.data() + c * kRows + r) : e);
      sum += e;
    }
    store_lanes(l + r, fma_lanes(load_lanes(l + r), alpha, sum));
    store_lanes(m + r, mx);
    // alpha is exactly 1 (or 0 on a lane whose oT is still 0) where no lane's maximum moved:
    // then the rescale changes nothing, and past the first few key tiles it is the rule.
    if (std::memcmp(&mx, &m_old, sizeof mx) == 0) continue;
    for (int64_t e = 0; e < Dv; ++e) store_lanes(oT + e * kRows + r, load_lanes(oT + e * kRows + r) * alpha);
  }
  // oT [Dv, kRows] += Vᵀ · Pᵀ: A(e, c) = V[s0 + c, e].
  span_values_product(sp, Dv, cols, f.vh(b, h, s0), f.ldv, sT, oT);
}

// The forward of query tiles [i0, i1) of head (b, h) (at most kForwardGroup), key tile by key
// tile: each query tile meets its key tiles in increasing order, as it would alone.
void forward_query_group(const TiledFlash& f, int64_t b, int64_t h, int64_t i0, int64_t i1, float* out,
                         float* lse, ForwardScratch& s) {
  const size_t n = size_t(i1 - i0);
  for (size_t x = 0; x < n; ++x) {
    s.tiles[x].start(f, b, h, i0 + int64_t(x));
    s.todo[x].clear();
    f.for_key_tiles(b, h, i0 + int64_t(x), [&](int64_t j, bool partial) { s.todo[x].emplace_back(j, partial); });
  }
  size_t next[kForwardGroup] = {};  // per query tile: its next key tile in todo
  for (;;) {
    int64_t j = std::numeric_limits<int64_t>::max();  // the smallest key tile still pending
    for (size_t x = 0; x < n; ++x)
      if (next[x] < s.todo[x].size()) j = std::min(j, s.todo[x][next[x]].first);
    if (j == std::numeric_limits<int64_t>::max()) break;
    for (size_t x = 0; x < n; ++x)
      if (next[x] < s.todo[x].size() && s.todo[x][next[x]].first == j)
        forward_pair(f, b, h, s.tiles[x], j, s.todo[x][next[x]++].second, s);
  }
  for (size_t x = 0; x < n; ++x) s.tiles[x].finish(f, b, h, out, lse);
}

// The products' B operands are packed with copy_rows: a head's rows in [B, T, H, D] lie H·D
// floats apart (4 KiB at H = 8, D = 128), so that the 64 rows of a tile fall in the same few L1
// sets and are read again from L2 by every register block; contiguous, dK's product ran
// 1.16-1.31x faster in a scratch harness (dQ's, D = 128: 136 -> 178 GFLOP/s on one core).

// The backward's per-query-tile operands, packed once per query tile: scale · Qᵀ, dOᵀ, the Q and
// dO rows contiguous (qr, dor: the right operands of dK and dV), and the lanes' lse (+inf for a
// row that saw no key and for padding lanes, so their weights are 0) and delta (0 on padding
// lanes).
struct QueryTile {
  std::vector<float> qT, doT, qr, dor, lse, delta;
  int64_t t0 = 0, rows = 0;
  // False when every dO row of the tile is zero (padded positions, which a masked loss or pooling
  // ignores): then dP, delta and dS are zero and the tile adds nothing to dQ, dK or dV, so its
  // pairs are skipped. Adding those zeros could change only the sign of a zero sum.
  bool any_dout = true;
  explicit QueryTile(const AttnDims& d)
      : qT(size_t(d.D * kRows)),
        doT(size_t(d.Dv * kRows)),
        qr(size_t(kRows * d.D)),
        dor(size_t(kRows * d.Dv)),
        lse(kRows),
        delta(kRows) {}

  void pack(const TiledFlash& f, int64_t b, int64_t h, int64_t i, const float* lse_all,
            const float* delta_all, const float* dout) {
    const AttnDims& d = f.d;
    t0 = i * kRows;
    rows = std::min(kRows, d.T - t0);
    transpose_tile(f.qh(b, h, t0), f.ldq, rows, d.D, f.scale, qT.data(), kRows);
    transpose_tile(dout + f.orow(b, h, t0), f.ldo, rows, d.Dv, 1.0f, doT.data(), kRows);
    copy_rows(f.qh(b, h, t0), f.ldq, rows, d.D, qr.data());
    copy_rows(dout + f.orow(b, h, t0), f.ldo, rows, d.Dv, dor.data());
    any_dout = false;
    for (int64_t x = 0; x < d.Dv * kRows && !any_dout; ++x) any_dout = doT[size_t(x)] != 0.0f;
    const float* lh = lse_all + (b * d.H + h) * d.T + t0;
    const float* dh = delta_all + (b * d.H + h) * d.T + t0;
    for (int64_t r = 0; r < kRows; ++r) {
      lse[size_t(r)] = r < rows && lh[r] != kMinusInf ? lh[r] : kPlusInf;
      delta[size_t(r)] = r < rows ? dh[r] : 0.0f;
    }
  }
};

struct PairScratch {
  std::vector<float> pT, dsT, keepT, kr;  // kr [kCols, D]: the key tile's rows, contiguous (dQ's B)
  PairScratch(const AttnDims& d, bool dropout)
      : pT(size_t(kCols * kRows)),
        dsT(size_t(kCols * kRows)),
        keepT(dropout ? size_t(kCols * kRows) : 0),
        kr(size_t(kCols * d.D)) {}
};

struct TiledGrad {
  const TiledFlash& f;
  const float *lse, *delta, *dout;  // [B, H, T], [B, H, T], rows of ldo
  float *dq, *dk, *dv;  // rows of the strides of q, k, v; a null one is not wanted

  float* dq_rows(int64_t b, int64_t h, int64_t t) const { return dq + (b * f.d.T + t) * f.ldq + h * f.d.D; }
  // dK and dV of the kv head query head h reads: a group's query heads add into the same rows.
  float* dk_rows(int64_t b, int64_t h, int64_t s) const { return dk + (b * f.d.S + s) * f.ldk + f.d.kv_head(h) * f.d.D; }
  float* dv_rows(int64_t b, int64_t h, int64_t s) const { return dv + (b * f.d.S + s) * f.ldv + f.d.kv_head(h) * f.d.Dv; }

  // A gradient tile's first pair writes it (tile_gemm without accumulate: the same bits as adding
  // to zeros) instead of its rows being zeroed first; a tile no pair reached is zeroed after
  // (zero_query_tile, zero_key_tile). Zeroing every tile first was 4% of sliding window's time.
  void zero_query_tile(int64_t b, int64_t h, int64_t i) const {
    if (!dq) return;
    for (int64_t t = i * kRows, t1 = std::min(f.d.T, t + kRows); t < t1; ++t) std::fill_n(dq_rows(b, h, t), f.d.D, 0.0f);
  }
  void zero_key_tile(int64_t b, int64_t h, int64_t j) const {
    for (int64_t s = j * kCols, s1 = std::min(f.d.S, s + kCols); s < s1; ++s) {
      if (dk) std::fill_n(dk_rows(b, h, s), f.d.D, 0.0f);
      if (dv) std::fill_n(dv_rows(b, h, s), f.d.Dv, 0.0f);
    }
  }

  // fn(j, partial) for the key tiles j of query tile i that are not all padding, in order, qt
  // packed before the first of them; none when qt's dO rows are all zero (it adds nothing).
  template <class F>
  void for_key_tiles_to_pair(int64_t b, int64_t h, int64_t i, QueryTile& qt, F&& fn) const {
    bool packed = false;
    f.for_key_tiles(b, h, i, [&](int64_t j, bool partial) {
      if (f.all_padding(b, j * kCols, std::min(kCols, f.d.S - j * kCols))) return;
      if (!packed) qt.pack(f, b, h, i, lse, delta, dout), packed = true;
      if (qt.any_dout) fn(j, partial);
    });
  }

  // dQ_i: the pairs of query tile i with its key tiles, summed in order (zeros if none).
  void query_tile_dq(int64_t b, int64_t h, int64_t i, QueryTile& qt, PairScratch& s) const {
    bool written = false;
    for_key_tiles_to_pair(b, h, i, qt, [&](int64_t j, bool partial) { pair(b, h, qt, j, partial, nullptr, &written, s); });
    if (!written) zero_query_tile(b, h, i);
  }

  // The pairs of query tiles [i0, i1) (qts[i - i0] their packing) with their key tiles, key tile
  // by key tile: each key tile's K, V rows are read and its dK, dV rows updated once for the group
  // (the group's packed tiles and Q, dO, dQ rows stay in L2) instead of once per query tile. Each
  // key tile gets the group's query tiles in increasing order, each query tile its key tiles in
  // increasing order: the sums of pairing each query tile with its key tiles in turn.
  // kv_written[j]: whether key tile j's dK, dV rows hold a sum yet (across the group's query
  // heads); the group's dQ tiles are written whole here.
  void query_group_pairs(int64_t b, int64_t h, int64_t i0, int64_t i1, std::vector<QueryTile>& qts,
                         std::vector<char>& kv_written, PairScratch& s) const {
    struct Pending {
      int64_t j;
      bool partial;
    };
    std::vector<std::vector<Pending>> todo(size_t(i1 - i0));  // per query tile, increasing j
    for (int64_t i = i0; i < i1; ++i)
      for_key_tiles_to_pair(b, h, i, qts[size_t(i - i0)],
                            [&](int64_t j, bool partial) { todo[size_t(i - i0)].push_back({j, partial}); });
    std::vector<size_t> next(todo.size(), 0);
    bool q_written[kQueryGroup] = {};
    for (;;) {
      int64_t j = std::numeric_limits<int64_t>::max();  // the smallest key tile still pending
      for (size_t x = 0; x < todo.size(); ++x)
        if (next[x] < todo[x].size()) j = std::min(j, todo[x][next[x]].j);
      if (j == std::numeric_limits<int64_t>::max()) break;
      for (size_t x = 0; x < todo.size(); ++x)
        if (next[x] < todo[x].size() && todo[x][next[x]].j == j) {
          bool kv = kv_written[size_t(j)];
          pair(b, h, qts[x], j, todo[x][next[x]++].partial, &kv, &q_written[x], s);
          kv_written[size_t(j)] = kv;
        }
    }
    for (int64_t i = i0; i < i1; ++i)
      if (!q_written[i - i0]) zero_query_tile(b, h, i);
  }

  // One tile pair (query tile qt, key tile j): Pᵀ = exp(Sᵀ - lse), dPᵀ = (V dOᵀ) ∘ Z,
  // dSᵀ = scale · Pᵀ ∘ (dPᵀ - delta) with Z the dropout scales (1 without); then
  // dV_j += (P ∘ Z)ᵀ dO, dK_j += dSᵀ Q (kv_written non-null) and dQ_i += dS K (q_written
  // non-null), each written instead where its flag says the rows hold no sum yet, and flagged.
  // A pair the mask hides whole changes nothing.
  void pair(int64_t b, int64_t h, const QueryTile& qt, int64_t j, bool partial, bool* kv_written, bool* q_written,
            PairScratch& s) const {
    const AttnDims& d = f.d;
    const int64_t s0 = j * kCols, cols = std::min(kCols, d.S - s0);
    float *pT = s.pT.data(), *dsT = s.dsT.data();
    const TileSpan sp = f.span(qt.t0, s0, cols);
    if (!f.scores(b, h, qt.t0, qt.rows, s0, cols, partial, sp, qt.qT.data(), pT)) return;
    span_product(sp, cols, d.Dv, f.vh(b, h, s0), f.ldv, qt.doT.data(), dsT);
    const TileVec sc = splat_value(f.scale);
    const bool drop = f.dropout.active();
    if (drop) f.dropout_scales(b, h, qt.t0, qt.rows, s0, cols, s.keepT.data());
    for (int64_t r = 0; r < kRows; r += kLanes) {
      const TileVec l = load_lanes(qt.lse.data() + r), dl = load_lanes(qt.delta.data() + r);
      for (int64_t c = sp.cols_from(r / kLanes), c_hi = sp.cols_to(r / kLanes, cols); c < c_hi; ++c) {
        float* p = pT + c * kRows + r;
        float* g = dsT + c * kRows + r;
        TileVec w = softmax_exp(load_lanes(p) - l);
        if (drop) {
          const TileVec z = load_lanes(s.keepT.data() + c * kRows + r);
          store_lanes(p, w * z);
          store_lanes(g, sc * w * (load_lanes(g) * z - dl));
        } else {
          store_lanes(p, w);
          store_lanes(g, sc * w * (load_lanes(g) - dl));
        }
      }
    }
    if (kv_written) {
      if (dv)  // dV_j [cols, Dv] += Pᵀ [cols, rows] · dO_i [rows, Dv]
        span_key_product(sp, *kv_written, cols, qt.rows, d.Dv, pT, qt.dor.data(), dv_rows(b, h, s0), f.ldv);
      if (dk)  // dK_j [cols, D] += dSᵀ [cols, rows] · Q_i [rows, D]
        span_key_product(sp, *kv_written, cols, qt.rows, d.D, dsT, qt.qr.data(), dk_rows(b, h, s0), f.ldk);
      *kv_written = true;
    }
    if (q_written && dq) {  // dQ_i [rows, D] += dS [rows, cols] · K_j [cols, D]
      // K_j packed per pair pays at D >= 32; at D = 16 (rows of one cache line, 8 to a 4 KiB
      // page at H = 8) the copy cost more than the product gained (one thread, T = 2048).
      const float* k_rows = f.kh(b, h, s0);
      int64_t ldk = f.ldk;
      if (d.D >= 32) {
        copy_rows(k_rows, ldk, cols, d.D, s.kr.data());
        k_rows = s.kr.data(), ldk = d.D;
      }
      span_query_product(sp, *q_written, qt.rows, cols, d.D, dsT, k_rows, ldk, dq_rows(b, h, qt.t0), f.ldq);
      *q_written = true;
    }
  }
};

// delta [B, H, T] = rowsum(dO ∘ O), each row summed in order as dot_in_order sums it (so rounded
// as the tiles' dP = dO Vᵀ is), a tile of rows at a time: transposed, its rows' sums run side by
// side down the lanes. One row at a time, each sum was a chain of Dv dependent FMAs that waited
// on their latency (10% of sliding window's fwd+bwd at W = 64).
void row_deltas(const TiledFlash& f, const float* out, const float* dout, float* delta) {
  const AttnDims& d = f.d;
  const int64_t nt = tiled_count(d.T, kRows);
  constexpr int64_t kStrips = kRows / kLanes;
  parallel_for(0, d.B * d.H * nt, 1, [&](int64_t lo, int64_t hi) {
    std::vector<float> oT(size_t(d.Dv * kRows)), doT(oT.size());  // [Dv, kRows]
    for (int64_t x = lo; x < hi; ++x) {
      const int64_t bh = x / nt, t0 = x % nt * kRows, rows = std::min(kRows, d.T - t0);
      const int64_t row0 = f.orow(bh / d.H, bh % d.H, t0);
      transpose_matrix(out + row0, rows, d.Dv, f.ldo, oT.data(), kRows);
      transpose_matrix(dout + row0, rows, d.Dv, f.ldo, doT.data(), kRows);
      TileVec sum[kStrips] = {};
      for (int64_t e = 0; e < d.Dv; ++e)
        for (int64_t v = 0; v < kStrips; ++v) {
          const int64_t at = e * kRows + v * kLanes;
          sum[v] = fma_lanes(load_lanes(doT.data() + at), load_lanes(oT.data() + at), sum[v]);
        }
      float all[kRows];
      std::memcpy(all, sum, sizeof all);
      std::copy_n(all, rows, delta + bh * d.T + t0);
    }
  });
}

// The call's shared state; causal folds into the band's right edge (keys up to t + offset).
TiledFlash tiled_flash(const AttnDims& d, float scale, const AttnMask<float>& mask, const AttnBand& band,
                       const AttnDropout& dropout, const float* q, const float* k, const float* v,
                       const TiledBlocks* blocks) {
  const int64_t right = mask.causal ? std::min(band.right, mask.offset) : band.right;
  return TiledFlash{d, scale, mask, band.left, right, dropout, q, k, v, d.ldq(), d.ldk(), d.ldv(), d.H * d.Dv, blocks};
}

}  // namespace

bool flash_tiled_applies(const AttnDims& d, const AttnMask<float>& mask) {
  return !mask.has_general() && d.Dv == d.D && d.D > 0 && d.D % kTileMinN == 0;
}

bool flex_tiled_applies(const FlexDims& d, const FlexBlocks& blocks) {
  return d.Dv == d.D && d.D > 0 && d.D % kTileMinN == 0 && blocks.bq % kRows == 0 && blocks.bk % kCols == 0;
}

void flash_tiled_forward(const AttnDims& d, float scale, const AttnMask<float>& mask, const AttnBand& band,
                         const AttnDropout& dropout, const float* q, const float* k, const float* v, float* out,
                         float* lse, const TiledBlocks* blocks) {
  const TiledFlash f = tiled_flash(d, scale, mask, band, dropout, q, k, v, blocks);
  const int64_t nt = tiled_count(d.T, kRows);
  // A narrow band: the tasks run a query tile's heads one after another (narrow_band). A long
  // one (T >= 4096): query tiles in groups whose Qᵀ and output tiles take at most 256 KiB (8 at
  // D = 64, 4 at D = 128). Groups at T = 1024 and 2048 ran at up to 0.9x the time on 2 threads
  // (the same on one), where a head's K and V stay in cache anyway.
  const bool heads_inner = f.narrow_band();
  const int64_t fit = std::clamp<int64_t>(int64_t(256 << 10) / ((d.D + d.Dv) * kRows * 4), 1, kForwardGroup);
  const int64_t group = !heads_inner && d.T >= 4096 ? fit : 1;
  const int64_t ng = tiled_count(nt, group);
  parallel_for(0, d.B * d.H * ng, 1, [&](int64_t lo, int64_t hi) {
    ForwardScratch s(d, dropout.active(), group);
    for (int64_t x = lo; x < hi; ++x) {
      if (heads_inner) {  // x = (b, i, h)
        const int64_t h = x % d.H, bi = x / d.H, i = bi % nt;
        forward_query_group(f, bi / nt, h, i, i + 1, out, lse, s);
      } else {  // x = (b, h, group), the last groups first: causal, they have the most key tiles
        const int64_t bh = x / ng, i0 = (ng - 1 - x % ng) * group;
        forward_query_group(f, bh / d.H, bh % d.H, i0, std::min(nt, i0 + group), out, lse, s);
      }
    }
  });
}

void flash_tiled_backward(const AttnDims& d, float scale, const AttnMask<float>& mask, const AttnBand& band,
                          const AttnDropout& dropout, const float* q, const float* k, const float* v, const float* out,
                          const float* lse, const float* dout, float* delta, float* dq, float* dk, float* dv,
                          const TiledBlocks* blocks) {
  const TiledFlash f = tiled_flash(d, scale, mask, band, dropout, q, k, v, blocks);
  row_deltas(f, out, dout, delta);
  const int64_t nt = tiled_count(d.T, kRows), ns = tiled_count(d.S, kCols);
  // A kv head and the group of query heads that read it: dK and dV of the kv head are summed
  // over the group's heads in order, then over the query tiles in order.
  const int64_t group = d.H / d.kv_heads(), kv_heads = d.B * d.kv_heads();
  TiledGrad g{f, lse, delta, dout, dq, dk, dv};
  // Enough kv heads: one task per kv head, its query heads one after another, query tiles outer
  // (each packed once); dQ summed over the key tiles in order.
  if (kv_heads >= get_num_threads()) {
    // A narrow band: each thread takes a run of kv heads and steps them through the query tiles
    // together (f.narrow_band, as the forward does); else one kv head at a time. Either way each
    // kv head sums over its query heads in order, then its query tiles in order.
    const bool together = f.narrow_band();
    const int64_t per_task = together ? tiled_count(kv_heads, get_num_threads()) : 1;
    parallel_for(0, tiled_count(kv_heads, per_task), 1, [&](int64_t lo, int64_t hi) {
      std::vector<QueryTile> qts(static_cast<size_t>(kQueryGroup), QueryTile(d));
      PairScratch s(d, dropout.active());
      for (int64_t task = lo; task < hi; ++task) {
        const int64_t bg0 = task * per_task, bg1 = std::min(kv_heads, bg0 + per_task);
        std::vector<std::vector<char>> kv_written(size_t(bg1 - bg0), std::vector<char>(size_t(ns)));
        for (int64_t hg = 0; hg < group; ++hg)
          for (int64_t i0 = 0; i0 < nt; i0 += kQueryGroup)
            for (int64_t bg = bg0; bg < bg1; ++bg) {
              const int64_t b = bg / d.kv_heads(), h = bg % d.kv_heads() * group + hg;
              g.query_group_pairs(b, h, i0, std::min(nt, i0 + kQueryGroup), qts, kv_written[size_t(bg - bg0)], s);
            }
        for (int64_t bg = bg0; bg < bg1; ++bg)
          for (int64_t j = 0; j < ns; ++j)
            if (!kv_written[size_t(bg - bg0)][size_t(j)]) g.zero_key_tile(bg / d.kv_heads(), bg % d.kv_heads() * group, j);
      }
    });
    return;
  }
  // Fewer kv heads than threads: (kv head, key tile) tasks for dK and dV, then (head, query tile)
  // tasks for dQ, which recompute the pair's tiles but use every thread. The same sums in the
  // same order as above.
  if (dk || dv) {
    parallel_for(0, kv_heads * ns, 1, [&](int64_t lo, int64_t hi) {
      QueryTile qt(d);
      PairScratch s(d, dropout.active());
      for (int64_t x = lo; x < hi; ++x) {
        const int64_t b = x / ns / d.kv_heads(), h0 = x / ns % d.kv_heads() * group, j = x % ns;
        bool written = false;
        if (!f.all_padding(b, j * kCols, std::min(kCols, d.S - j * kCols)))
          for (int64_t h = h0; h < h0 + group; ++h)
            f.for_query_tiles(b, h, j, [&](int64_t i, bool partial) {
              qt.pack(f, b, h, i, lse, delta, dout);
              if (qt.any_dout) g.pair(b, h, qt, j, partial, &written, nullptr, s);
            });
        if (!written) g.zero_key_tile(b, h0, j);
      }
    });
  }
  if (!dq) return;
  const int64_t heads = d.B * d.H;
  parallel_for(0, heads * nt, 1, [&](int64_t lo, int64_t hi) {
    QueryTile qt(d);
    PairScratch s(d, dropout.active());
    for (int64_t x = lo; x < hi; ++x) {
      const int64_t b = x / nt / d.H, h = x / nt % d.H, i = x % nt;
      g.query_tile_dq(b, h, i, qt, s);
    }
  });
}

}  // namespace tg::kernels
