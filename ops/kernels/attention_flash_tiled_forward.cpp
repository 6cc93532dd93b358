// The forward of the f32 tiled flash kernels (see attention_flash_tiled.h): the online softmax
// of each query tile over its key tiles, down the lanes, one tile at a time or in groups.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "ops/kernels/attention_flash_tiled_shared.h"
#include "ops/kernels/attention_tile_weights.h"
#include "ops/kernels/copy_rows.h"
#include "ops/kernels/parallel.h"
#include "ops/kernels/row_prefetch.h"
#include "ops/kernels/transpose_matrix.h"

namespace tg::kernels::flash_tiles {
namespace {

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

  // The lanes [r, r + kLanes) of oT times a (the online softmax's rescale when their maximum moved).
  void rescale(int64_t r, TileVec a, int64_t Dv) {
    float* const o = oT.get();
    for (int64_t e = 0; e < Dv; ++e) store_lanes(o + e * kRows + r, load_lanes(o + e * kRows + r) * a);
  }

  // out rows = oT / l, lane by lane, then transposed into `stage` [kRows, Dv] and copied into
  // place row by row, and the rows' lse; a row whose every key is masked gets zeros, as dense, and
  // lse -inf. Transposed straight into the rows of out, H·Dv floats apart, the finish took twice
  // its time with one head (3.5k cycles against 1.7k at D = 64). Staged, one thread, time before
  // ÷ after (median of 5 alternating runs): sliding window 256 at T = 8192 1.020 / 1.058 / 0.992
  // at D = 64 / 128 / 16, at T = 2048 1.040; flash at D = 64 1.025 (T = 2048), 0.996 (T = 4096).
  void finish(const TiledFlash& f, int64_t b, int64_t h, float* out, float* lse, float* stage) {
    const int64_t Dv = f.d.Dv;
    for (int64_t r = 0; r < kRows; r += kLanes) {
      const TileVec lr = load_lanes(l + r), inv = splat_value(1.0f) / lr;
      for (int64_t e = 0; e < Dv; ++e) {
        float* p = oT.get() + e * kRows + r;
        store_lanes(p, lr == 0.0f ? TileVec{} : load_lanes(p) * inv);
      }
    }
    transpose_matrix(oT.get(), Dv, rows, kRows, stage, Dv);
    copy_rows_to(stage, rows, Dv, out + f.orow(b, h, t0), f.ldo);
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
  std::vector<float> stage;      // [kRows, Dv]: ForwardTile::finish's output rows
  std::vector<std::vector<std::pair<int64_t, bool>>> todo;  // per query tile: its key tiles (j, partial)
  RowPrefetch ahead;                  // the next task's rows, asked for between this task's steps
  RowPrefetch next_tile;              // a long task's next key tile, asked for during this pair
  std::vector<int64_t> earlier_tiles;  // plan_prefetch's scratch
  ForwardScratch(const AttnDims& d, bool dropout, int64_t group)
      : sT(size_t(kCols * kRows)),
        keepT(dropout ? size_t(kCols * kRows) : 0),
        stage(size_t(kRows * d.Dv)),
        todo(size_t(group)) {
    tiles.reserve(size_t(group));
    for (int64_t x = 0; x < group; ++x) tiles.emplace_back(d);
  }
  void step_prefetches() {
    ahead.step();
    next_tile.step();
  }
};

// The calls of s.step_prefetches() in a pair (forward_pair): before and after its two products.
constexpr int64_t kPrefetchSteps = 4;

// Whether a pair may take tile_softmax_weights: a whole tile of kCols keys that no block mask,
// band edge, key padding, score_mod or dropout touches.
bool plain_tile(const TiledFlash& f, int64_t b, int64_t s0, int64_t cols, bool partial, const TileSpan& sp) {
  if (!sp.whole || partial || cols != kCols || f.dropout.active() || (f.blocks && f.blocks->score)) return false;
  if (!f.mask.key_padding) return true;
  const bool* kp = f.mask.key_padding + b * f.d.S + s0;
  return std::none_of(kp, kp + cols, [](bool x) { return x; });
}

// The online-softmax step of a tile whose scores sT holds (scores() or a masked tile's): each
// strip's maximum over the columns it sees, then its weights exp(s - m) in place of the scores,
// its normaliser, and its output accumulator rescaled where its maximum moved.
void softmax_step(const TiledFlash& f, int64_t b, int64_t h, ForwardTile& q, int64_t s0, int64_t cols,
                  const TileSpan& sp, ForwardScratch& s) {
  float *const sT = s.sT.data(), *const m = q.m, *const l = q.l;
  const bool drop = f.dropout.active();
  if (drop) f.dropout_scales(b, h, q.t0, q.rows, s0, cols, s.keepT.data());
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
    q.rescale(r, alpha, f.d.Dv);
  }
}

// One tile pair of the forward: query tile q with key tile j, one online-softmax step. A plain
// tile's scores become weights block by block in registers (tile_softmax_weights), other tiles'
// in a pass over the stored scores (softmax_step). The fused path and the base-2 softmax_exp
// together against the kernels before both, causal forward, 2 threads, time before ÷ after
// (median of 5 alternating runs), T = 4096 / 16384: flash 1.08 / 1.09 at
// D = 16, 1.02-1.05 at D ≥ 64; sliding window 256 1.07 / 1.08 at D = 16, 1.00-1.02 at D ≥ 64;
// sparse 1.05 / 1.11 at D = 16. Band-edge tiles through it as well (their scores masked in
// registers) gained nothing (0.94-1.03), so they keep softmax_step.
void forward_pair(const TiledFlash& f, int64_t b, int64_t h, ForwardTile& q, int64_t j, bool partial,
                  ForwardScratch& s) {
  const AttnDims& d = f.d;
  const int64_t t0 = q.t0, rows = q.rows, Dv = d.Dv;
  // The pointers held locally: the vector stores (memcpy) may alias anything, and through
  // references every store reloaded them.
  float *const sT = s.sT.data(), *const oT = q.oT.get();
  const int64_t s0 = j * kCols, cols = std::min(kCols, d.S - s0);
  const TileSpan sp = f.span(t0, s0, cols);
  s.step_prefetches();
  if (plain_tile(f, b, s0, cols, partial, sp)) {
    alignas(64) float alpha[kRows];
    const uint32_t moved = tile_softmax_weights(d.D, f.kh(b, h, s0), f.ldk, q.qT.get(), sT, q.m, q.l, alpha);
    s.step_prefetches();
    for (int64_t r = 0; r < kRows; r += kLanes)
      if (moved >> (r / kLanes) & 1) q.rescale(r, load_lanes(alpha + r), Dv);
  } else {
    if (f.all_padding(b, s0, cols) || !f.scores(b, h, t0, rows, s0, cols, partial, sp, q.qT.get(), sT)) return;
    s.step_prefetches();
    softmax_step(f, b, h, q, s0, cols, sp, s);
  }
  s.step_prefetches();
  // oT [Dv, kRows] += Vᵀ · Pᵀ: A(e, c) = V[s0 + c, e].
  span_values_product(sp, Dv, cols, f.vh(b, h, s0), f.ldv, sT, oT);
  s.step_prefetches();
}

// The most key tiles plan_prefetch takes: a sparse layout's global query tiles reach every key
// tile, and all their rows spread over one task came in bursts again (one thread, BigBird at
// T = 16384, D = 64: 160 GFLOP/s uncapped, 163-165 capped at 8, 151-152 with no key tile).
constexpr int64_t kMostFreshTiles = 8;

// The rows task (b, h, query tile i) of a narrow band reads from memory rather than from cache,
// into s.ahead: its query rows, its output rows (for writing), and the K and V rows of the key
// tiles the head's previous query tile did not reach (a band's newest tile, a sparse layout's
// random blocks), which no task has read yet. Its other key tiles were read by that query tile
// a few tasks before (the tasks step through a query tile's heads) and are still in cache.
// One thread, sliding window 256, causal, D = 64, T = 8192: the newest key tile's pair took
// 15.2k cycles against 10.1k for the mirror-image tile at the window's far edge (10.0k each at
// T = 2048, where every row stays in the L3), and the query tile's start 3.6k against 1.6k;
// prefetched, 10.7k and 1.6k. Where it pays: prefetch_next_task. At most kMostFreshTiles key
// tiles.
void plan_prefetch(const TiledFlash& f, int64_t b, int64_t h, int64_t i, float* out, ForwardScratch& s) {
  const AttnDims& d = f.d;
  const int64_t t0 = i * kRows, rows = std::min(kRows, d.T - t0);
  s.ahead.add(f.qh(b, h, t0), rows, f.ldq, d.D, false);
  s.ahead.add(out + f.orow(b, h, t0), rows, f.ldo, d.Dv, true);
  std::vector<int64_t>& earlier = s.earlier_tiles;
  earlier.clear();
  if (i > 0) f.for_key_tiles(b, h, i - 1, [&](int64_t j, bool) { earlier.push_back(j); });
  int64_t fresh = 0;
  f.for_key_tiles(b, h, i, [&](int64_t j, bool) {
    if (fresh == kMostFreshTiles || std::find(earlier.begin(), earlier.end(), j) != earlier.end()) return;
    ++fresh;
    f.add_key_tile(s.ahead, b, h, j);
  });
}

// Key tile j's K and V rows into s.next_tile, spread over one pair's steps. Sparse (BigBird)
// forward, bidirectional, 2 threads, time before ÷ after (median of 5 alternating runs) at
// T = 2048 / 8192 / 16384: D = 16 1.06 / 1.10 / 1.10, D = 32 1.08 / 1.13 / 1.11, D = 64 1.05 /
// 1.02 / 1.05, D = 128 1.02 / 0.99 / 1.01. For every task with more than kMostFreshTiles key
// tiles instead, sliding window 256 (10 tiles, all but one in cache) lost 10% at D = 16.
void plan_next_tile(const TiledFlash& f, int64_t b, int64_t h, int64_t j, ForwardScratch& s) {
  s.next_tile.clear();
  f.add_key_tile(s.next_tile, b, h, j);
  s.next_tile.spread_over(kPrefetchSteps);
}

// The forward of query tiles [i0, i1) of head (b, h) (at most kForwardGroup), key tile by key
// tile (for_pairs_by_key_tile).
void forward_query_group(const TiledFlash& f, int64_t b, int64_t h, int64_t i0, int64_t i1, float* out,
                         float* lse, ForwardScratch& s) {
  const size_t n = size_t(i1 - i0);
  int64_t pairs = 0;
  for (size_t x = 0; x < n; ++x) {
    s.tiles[x].start(f, b, h, i0 + int64_t(x));
    s.todo[x].clear();
    f.for_key_tiles(b, h, i0 + int64_t(x), [&](int64_t j, bool partial) { s.todo[x].emplace_back(j, partial); });
    pairs += int64_t(s.todo[x].size());
  }
  s.ahead.spread_over(kPrefetchSteps * pairs);
  // In a narrow band's tasks, a query tile that reaches more keys than the band holds (a sparse
  // layout's global rows: every key tile at T = 16384 after seven other heads' did the same)
  // reads them from memory: each of its pairs asks for the next pair's key tile.
  const std::vector<std::pair<int64_t, bool>>& listed = s.todo[0];
  const bool long_task = n == 1 && int64_t(listed.size()) * kCols > kNarrowBand && f.narrow_band();
  size_t next = 0;
  for_pairs_by_key_tile(s.todo, n, [&](size_t x, int64_t j, bool partial) {
    if (long_task && ++next < listed.size()) plan_next_tile(f, b, h, listed[next].first, s);
    forward_pair(f, b, h, s.tiles[x], j, partial, s);
  });
  for (size_t x = 0; x < n; ++x) s.tiles[x].finish(f, b, h, out, lse, s.stage.data());
}

// Whether a narrow band's tasks prefetch the next one's rows (plan_prefetch): only where they
// come from memory, long sequences, and at D <= 64, where a pair's arithmetic is short beside the
// misses. One thread, causal sliding window 256, the time before ÷ after (median of 5 alternating
// runs): T = 8192: 1.049, 1.092, 1.036 and 0.993 at D = 16, 32, 64, 128 (bidirectional D = 64
// 1.042, D = 128 0.985); D = 64: 0.952 at T = 2048 (the prefetches' own cost), 1.037 at 4096,
// 1.026 at 16384.
bool prefetch_next_task(const AttnDims& d) { return d.T >= 4096 && d.D <= 64; }

}  // namespace

// flash_tiled_forward's body, in this namespace so that its names are these kernels' own.
void run_forward(const AttnDims& d, float scale, const AttnMask<float>& mask, const AttnBand& band,
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
  const bool prefetch = heads_inner && prefetch_next_task(d);
  parallel_for(0, d.B * d.H * ng, 1, [&](int64_t lo, int64_t hi) {
    ForwardScratch s(d, dropout.active(), group);
    for (int64_t x = lo; x < hi; ++x) {
      s.ahead.clear();
      if (heads_inner) {  // x = (b, i, h); the next task's rows prefetched during this one
        if (prefetch && x + 1 < hi) plan_prefetch(f, (x + 1) / d.H / nt, (x + 1) % d.H, (x + 1) / d.H % nt, out, s);
        const int64_t h = x % d.H, bi = x / d.H, i = bi % nt;
        forward_query_group(f, bi / nt, h, i, i + 1, out, lse, s);
      } else {  // x = (b, h, group), the last groups first: causal, they have the most key tiles
        const int64_t bh = x / ng, i0 = (ng - 1 - x % ng) * group;
        forward_query_group(f, bh / d.H, bh % d.H, i0, std::min(nt, i0 + group), out, lse, s);
      }
    }
  });
}

}  // namespace tg::kernels::flash_tiles

namespace tg::kernels {

void flash_tiled_forward(const AttnDims& d, float scale, const AttnMask<float>& mask, const AttnBand& band,
                         const AttnDropout& dropout, const float* q, const float* k, const float* v, float* out,
                         float* lse, const TiledBlocks* blocks) {
  flash_tiles::run_forward(d, scale, mask, band, dropout, q, k, v, out, lse, blocks);
}

}  // namespace tg::kernels
