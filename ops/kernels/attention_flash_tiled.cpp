// The backward of the f32 tiled flash kernels (see attention_flash_tiled.h), and which problems
// the tiled kernels take.
#include "ops/kernels/attention_flash_tiled.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "ops/kernels/attention_flash_tiled_shared.h"
#include "ops/kernels/copy_rows.h"
#include "ops/kernels/parallel.h"
#include "ops/kernels/row_prefetch.h"
#include "ops/kernels/transpose_matrix.h"

namespace tg::kernels::flash_tiles {
namespace {

// Query tiles the one-pass backward takes together (query_group_pairs): 8 tiles' packed Qᵀ, dOᵀ
// and their Q, dO, dQ rows take 1.25 MiB at D = 128, inside a 2 MiB L2.
constexpr int64_t kQueryGroup = 8;
constexpr float kPlusInf = std::numeric_limits<float>::infinity();

// The products' B operands are packed with copy_rows: a head's rows in [B, T, H, D] lie H·D
// floats apart (4 KiB at H = 8, D = 128), so that the 64 rows of a tile fall in the same few L1
// sets and are read again from L2 by every register block; contiguous, dK's product ran
// 1.16-1.31x faster in a scratch harness (dQ's, D = 128: 136 -> 178 GFLOP/s on one core).

// delta_lanes [kRows] = the columns' sums of doT ∘ oT (both [Dv, kRows]): each lane's
// rowsum(dO ∘ O), summed in order e = 0, 1, ... as dot_in_order sums it, so rounded as the tiles'
// dP = dO Vᵀ is; the lanes' sums run side by side. One row at a time, each sum was a chain of Dv
// dependent FMAs that waited on their latency (10% of sliding window's fwd+bwd at W = 64).
void tile_deltas(const float* doT, const float* oT, int64_t Dv, float* delta_lanes) {
  constexpr int64_t kStrips = kRows / kLanes;
  TileVec sum[kStrips] = {};
  for (int64_t e = 0; e < Dv; ++e)
    for (int64_t v = 0; v < kStrips; ++v) {
      const int64_t at = e * kRows + v * kLanes;
      sum[v] = fma_lanes(load_lanes(doT + at), load_lanes(oT + at), sum[v]);
    }
  std::memcpy(delta_lanes, sum, sizeof sum);
}

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

  // delta from delta_all [B, H, T] (row_deltas), or when that is null from the tile's out rows
  // and the dOᵀ packed here (the dO rows transposed once for both), oT [Dv, kRows] its scratch.
  // The scratch is the task's, not each tile's: a group's packed tiles fill the L2 already, and
  // one more buffer per tile cost flash fwd+bwd 3% (T = 1024, 2 threads).
  void pack(const TiledFlash& f, int64_t b, int64_t h, int64_t i, const float* lse_all,
            const float* delta_all, const float* dout, const float* out, float* oT) {
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
    for (int64_t r = 0; r < kRows; ++r) lse[size_t(r)] = r < rows && lh[r] != kMinusInf ? lh[r] : kPlusInf;
    if (!delta_all) {  // padding lanes: 0 in both, so 0
      transpose_tile(out + f.orow(b, h, t0), f.ldo, rows, d.Dv, 1.0f, oT, kRows);
      return tile_deltas(doT.data(), oT, d.Dv, delta.data());
    }
    const float* dh = delta_all + (b * d.H + h) * d.T + t0;
    for (int64_t r = 0; r < kRows; ++r) delta[size_t(r)] = r < rows ? dh[r] : 0.0f;
  }
};

// The calls of PairScratch::next_tile.step() in a pair (TiledGrad::pair): after each product but dQ.
constexpr int64_t kPrefetchSteps = 4;

struct PairScratch {
  std::vector<float> pT, dsT, keepT, kr;  // kr [kCols, D]: the key tile's rows, contiguous (dQ's B)
  std::vector<float> oT;                   // [Dv, kRows]: QueryTile::pack's scratch
  RowPrefetch next_tile;                   // the next key tile's rows, asked for during this pair
  PairScratch(const AttnDims& d, bool dropout)
      : pT(size_t(kCols * kRows)),
        dsT(size_t(kCols * kRows)),
        keepT(dropout ? size_t(kCols * kRows) : 0),
        kr(size_t(kCols * d.D)),
        oT(size_t(d.Dv * kRows)) {}
};

struct TiledGrad {
  const TiledFlash& f;
  // lse and delta [B, H, T] (delta null: each query tile's from out and dout), out and dout rows of ldo
  const float *lse, *delta, *out, *dout;
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
  void for_key_tiles_to_pair(int64_t b, int64_t h, int64_t i, QueryTile& qt, PairScratch& s, F&& fn) const {
    bool packed = false;
    f.for_key_tiles(b, h, i, [&](int64_t j, bool partial) {
      if (f.all_padding(b, j * kCols, std::min(kCols, f.d.S - j * kCols))) return;
      if (!packed) qt.pack(f, b, h, i, lse, delta, dout, out, s.oT.data()), packed = true;
      if (qt.any_dout) fn(j, partial);
    });
  }

  // dQ_i: the pairs of query tile i with its key tiles, summed in order (zeros if none).
  void query_tile_dq(int64_t b, int64_t h, int64_t i, QueryTile& qt, PairScratch& s) const {
    bool written = false;
    for_key_tiles_to_pair(b, h, i, qt, s, [&](int64_t j, bool partial) { pair(b, h, qt, j, partial, nullptr, &written, s); });
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
    std::vector<std::vector<std::pair<int64_t, bool>>> todo(size_t(i1 - i0));  // per query tile, increasing j
    for (int64_t i = i0; i < i1; ++i)
      for_key_tiles_to_pair(b, h, i, qts[size_t(i - i0)], s,
                            [&](int64_t j, bool partial) { todo[size_t(i - i0)].emplace_back(j, partial); });
    bool q_written[kQueryGroup] = {};
    // A narrow block layout's key tiles in the order the group takes them: each one's first pair
    // asks for the next one's rows (plan_next_tile).
    std::vector<int64_t> key_tiles;
    if (f.blocks && f.narrow_band()) {
      for (const auto& listed : todo)
        for (const auto& [j, partial] : listed) key_tiles.push_back(j);
      std::sort(key_tiles.begin(), key_tiles.end());
      key_tiles.erase(std::unique(key_tiles.begin(), key_tiles.end()), key_tiles.end());
    }
    int64_t current = -1;
    size_t at = 0;  // key_tiles[at] == current
    for_pairs_by_key_tile(todo, todo.size(), [&](size_t x, int64_t j, bool partial) {
      if (!key_tiles.empty() && j != current) {
        current = j;
        while (key_tiles[at] != j) ++at;
        if (at + 1 < key_tiles.size()) plan_next_tile(b, h, key_tiles[at + 1], s);
      }
      bool kv = kv_written[size_t(j)];
      pair(b, h, qts[x], j, partial, &kv, &q_written[x], s);
      kv_written[size_t(j)] = kv;
    });
    for (int64_t i = i0; i < i1; ++i)
      if (!q_written[i - i0]) zero_query_tile(b, h, i);
  }

  // Key tile j's K, V, dK and dV rows into s.next_tile, spread over one pair's products. For a
  // narrow block layout's query groups only (query_group_pairs): a sparse layout's random key tiles are
  // read by no other group, so they come from memory, and a head's rows lie H·D floats apart, too
  // far apart for the hardware prefetcher. Sparse (BigBird) fwd+bwd, 2 threads, time before ÷
  // after (median of 5 alternating runs), bidirectional: D = 16 1.11 / 1.14 / 1.23 at
  // T = 4096 / 8192 / 16384 (0.98 at 2048); D = 32 1.00 / 1.04 at T = 4096 / 8192; D = 64
  // 1.10 / 1.05 at T = 2048 / 16384; D = 128 1.05 / 1.06 / 1.02 / 1.03 at T = 2048 / 4096 /
  // 8192 / 16384. Causal: 1.03-1.11 at T >= 8192 and D <= 64, 0.98-1.02 below that and at
  // D = 128. A sliding window's key tiles (a band, each shared by the group's neighbouring
  // tiles) gained nothing: 0.95-1.05.
  void plan_next_tile(int64_t b, int64_t h, int64_t j, PairScratch& s) const {
    const AttnDims& d = f.d;
    const int64_t s0 = j * kCols, cols = std::min(kCols, d.S - s0);
    s.next_tile.clear();
    f.add_key_tile(s.next_tile, b, h, j);
    if (dk) s.next_tile.add(dk_rows(b, h, s0), cols, f.ldk, d.D, true);
    if (dv) s.next_tile.add(dv_rows(b, h, s0), cols, f.ldv, d.Dv, true);
    s.next_tile.spread_over(kPrefetchSteps);
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
    s.next_tile.step();
    span_product(sp, cols, d.Dv, f.vh(b, h, s0), f.ldv, qt.doT.data(), dsT);
    s.next_tile.step();
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
      s.next_tile.step();
      if (dk)  // dK_j [cols, D] += dSᵀ [cols, rows] · Q_i [rows, D]
        span_key_product(sp, *kv_written, cols, qt.rows, d.D, dsT, qt.qr.data(), dk_rows(b, h, s0), f.ldk);
      s.next_tile.step();
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

// delta [B, H, T] = rowsum(dO ∘ O) (tile_deltas), a tile of rows at a time: for the tasks that
// pack a query tile once per key tile.
void row_deltas(const TiledFlash& f, const float* out, const float* dout, float* delta) {
  const AttnDims& d = f.d;
  const int64_t nt = tiled_count(d.T, kRows);
  parallel_for(0, d.B * d.H * nt, 1, [&](int64_t lo, int64_t hi) {
    std::vector<float> oT(size_t(d.Dv * kRows)), doT(oT.size());  // [Dv, kRows]
    for (int64_t x = lo; x < hi; ++x) {
      const int64_t bh = x / nt, t0 = x % nt * kRows, rows = std::min(kRows, d.T - t0);
      const int64_t row0 = f.orow(bh / d.H, bh % d.H, t0);
      transpose_matrix(out + row0, rows, d.Dv, f.ldo, oT.data(), kRows);
      transpose_matrix(dout + row0, rows, d.Dv, f.ldo, doT.data(), kRows);
      float all[kRows];
      tile_deltas(doT.data(), oT.data(), d.Dv, all);
      std::copy_n(all, rows, delta + bh * d.T + t0);
    }
  });
}

}  // namespace

// flash_tiled_backward's body, in this namespace so that its names are these kernels' own.
void run_backward(const AttnDims& d, float scale, const AttnMask<float>& mask, const AttnBand& band,
                          const AttnDropout& dropout, const float* q, const float* k, const float* v, const float* out,
                          const float* lse, const float* dout, float* delta, float* dq, float* dk, float* dv,
                          const TiledBlocks* blocks) {
  const TiledFlash f = tiled_flash(d, scale, mask, band, dropout, q, k, v, blocks);
  const int64_t nt = tiled_count(d.T, kRows), ns = tiled_count(d.S, kCols);
  // A kv head and the group of query heads that read it: dK and dV of the kv head are summed
  // over the group's heads in order, then over the query tiles in order.
  const int64_t group = d.H / d.kv_heads(), kv_heads = d.B * d.kv_heads();
  // Enough kv heads: one task per kv head, its query heads one after another, query tiles outer
  // (each packed once, with its delta); dQ summed over the key tiles in order.
  if (kv_heads >= get_num_threads()) {
    const TiledGrad g{f, lse, nullptr, out, dout, dq, dk, dv};
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
  // same order as above; delta once for all (row_deltas), as a query tile is packed many times.
  row_deltas(f, out, dout, delta);
  const TiledGrad g{f, lse, delta, out, dout, dq, dk, dv};
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
              qt.pack(f, b, h, i, g.lse, g.delta, dout, out, s.oT.data());
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

}  // namespace tg::kernels::flash_tiles

namespace tg::kernels {

bool flash_tiled_applies(const AttnDims& d, const AttnMask<float>& mask) {
  return !mask.has_general() && d.Dv == d.D && d.D > 0 && d.D % kTileMinN == 0;
}

bool flex_tiled_applies(const FlexDims& d, const FlexBlocks& blocks) {
  return d.Dv == d.D && d.D > 0 && d.D % kTileMinN == 0 && blocks.bq % kTiledRows == 0 && blocks.bk % kTiledCols == 0;
}

void flash_tiled_backward(const AttnDims& d, float scale, const AttnMask<float>& mask, const AttnBand& band,
                          const AttnDropout& dropout, const float* q, const float* k, const float* v, const float* out,
                          const float* lse, const float* dout, float* delta, float* dq, float* dk, float* dv,
                          const TiledBlocks* blocks) {
  flash_tiles::run_backward(d, scale, mask, band, dropout, q, k, v, out, lse, dout, delta, dq, dk, dv, blocks);
}

}  // namespace tg::kernels
