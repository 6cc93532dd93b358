#pragma once
// The flex attention kernel as a template on its mods (see attention_flex.h). `Mods` provides
//   bool has_score() const;
//   void mask_row(b, h, q, k0, n, bool* out) const;          // partial tiles only
//   void score_row(T* s, b, h, q, k0, n) const;              // s[c] = score_mod(s[c], ...)
//   void score_backward_row(const T* s, T* ds, b, h, q, k0, n, int64_t slot) const;
// where slot < 0 asks for ds only (no captured gradients). attention_flex.cpp instantiates it
// with the type-erased FlexMods; a caller may instantiate it with mods compiled in.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#include "ops/kernels/attention_dropout_keep.h"
#include "ops/kernels/attention_flex.h"
#include "ops/kernels/gemm.h"
#include "ops/kernels/online_softmax.h"
#include "ops/kernels/parallel.h"
#include "ops/kernels/reduce_row.h"

namespace tg::kernels::flex {

// Rows of a partial tile trimmed together to the key columns they see (see Ctx::spans).
inline constexpr int64_t kFlexSpanRows = 32;

// Rows [r0, r0 + nr) of a tile, which see keys only in its columns [lo, hi).
struct RowSpan {
  int64_t r0, nr, lo, hi;
};

// What every tile of one call shares.
template <class T, class Mods>
struct Ctx {
  const FlexDims& d;
  const FlexBlocks& m;
  const Mods& mods;
  T scale;
  const AttnDropout& dropout;
  const T *q, *k, *v;

  int64_t G() const { return d.H / d.Hkv; }  // query heads per kv head
  int64_t ldq() const { return d.H * d.D; }
  int64_t ldk() const { return d.Hkv * d.D; }
  int64_t ldv() const { return d.Hkv * d.Dv; }
  const T* qh(int64_t b, int64_t h, int64_t t) const { return q + ((b * d.T + t) * d.H + h) * d.D; }
  const T* kh(int64_t b, int64_t hk, int64_t s) const {
    return k + ((b * d.S + s) * d.Hkv + hk) * d.D;
  }
  const T* vh(int64_t b, int64_t hk, int64_t s) const {
    return v + ((b * d.S + s) * d.Hkv + hk) * d.Dv;
  }

  // The row groups of tile (query rows [t0, t0 + rows), keys [s0, s0 + cols)), into `out`
  // (returns how many). A full tile is one group: every row, every column. A partial tile's
  // mask_mod is evaluated row by row into vis [rows, bk], and its rows are split into groups of
  // kFlexSpanRows, each trimmed to the columns some row of it sees; a group that sees no key is
  // dropped. The products then run on the trimmed groups only: on a diagonal (causal) tile
  // that skips about 3/8 of the work, without changing which keys a row sees.
  int64_t spans(int64_t b, int64_t h, int64_t t0, int64_t rows, int64_t s0, int64_t cols,
                uint8_t kind, bool* vis, RowSpan* out) const {
    if (kind != kBlockPartial) {
      out[0] = {0, rows, 0, cols};
      return 1;
    }
    const int64_t ld = m.bk;
    int64_t n = 0;
    for (int64_t r0 = 0; r0 < rows; r0 += kFlexSpanRows) {
      const int64_t nr = std::min(kFlexSpanRows, rows - r0);
      int64_t lo = cols, hi = 0;
      for (int64_t r = r0; r < r0 + nr; ++r) {
        bool* vr = vis + r * ld;
        mods.mask_row(b, h, d.q_offset + t0 + r, s0, cols, vr);
        int64_t c = 0;
        while (c < lo && !vr[c]) ++c;
        lo = std::min(lo, c);
        c = cols;
        while (c > hi && !vr[c - 1]) --c;
        hi = std::max(hi, c);
      }
      if (lo < hi) out[n++] = {r0, nr, lo, hi};
    }
    return n;
  }

  // sc [rows, bk] of group g = scale · Q Kᵀ for its rows and columns (query rows t0 + g.r0...
  // of head h, keys s0 + g.lo...), then the score_mod, then -inf where a partial tile's vis
  // hides the key. raw (when not null) keeps the scores before the score_mod.
  void scores(int64_t b, int64_t h, int64_t t0, int64_t s0, uint8_t kind, const RowSpan& g, T* sc,
              T* raw, const bool* vis) const {
    const int64_t ld = m.bk, n = g.hi - g.lo;
    gemm<T>(false, true, g.nr, n, d.D, scale, qh(b, h, t0 + g.r0), ldq(), kh(b, h / G(), s0 + g.lo),
            ldk(), T(0), sc + g.r0 * ld + g.lo, ld);
    constexpr T kNegInf = -std::numeric_limits<T>::infinity();
    for (int64_t r = g.r0; r < g.r0 + g.nr; ++r) {
      T* row = sc + r * ld + g.lo;
      if (raw) std::copy(row, row + n, raw + r * ld + g.lo);
      if (mods.has_score()) mods.score_row(row, b, h, d.q_offset + t0 + r, s0 + g.lo, n);
      if (kind == kBlockPartial) {
        const bool* vr = vis + r * ld + g.lo;
        for (int64_t c = 0; c < n; ++c) row[c] = vr[c] ? row[c] : kNegInf;
      }
    }
  }
};

template <class T>
struct FwdScratch {
  std::vector<T> sc, acc, m, l;
  std::unique_ptr<bool[]> vis;  // [bq, bk]: a partial tile's mask
  std::vector<RowSpan> spans;
  std::vector<uint8_t> keep;    // [bk]: a row's dropout draws
  FwdScratch(const FlexBlocks& b, int64_t Dv)
      : sc(size_t(b.bq * b.bk)), acc(size_t(b.bq * Dv)), m(size_t(b.bq)), l(size_t(b.bq)),
        vis(new bool[size_t(b.bq * b.bk)]), spans(size_t((b.bq + kFlexSpanRows - 1) / kFlexSpanRows)),
        keep(size_t(b.bk)) {}
};

// Forward of query block i of head (b, h): online softmax over its non-empty key blocks.
template <class T, class Mods>
void forward_block(const Ctx<T, Mods>& f, int64_t b, int64_t h, int64_t i, T* out, T* lse,
                   FwdScratch<T>& s) {
  const FlexDims& d = f.d;
  const FlexBlocks& mb = f.m;
  constexpr T kNegInf = -std::numeric_limits<T>::infinity();
  const int64_t t0 = i * mb.bq, rows = std::min(mb.bq, d.T - t0), ld = mb.bk;
  T *acc = s.acc.data(), *m = s.m.data(), *l = s.l.data(), *sc = s.sc.data();
  std::fill(acc, acc + rows * d.Dv, T(0));
  std::fill(m, m + rows, kNegInf);
  std::fill(l, l + rows, T(0));
  const T dsc = static_cast<T>(f.dropout.scale());
  const int64_t row_id = mb.bh(b, h) * mb.nq + i;
  for (int64_t x = mb.kv_start[row_id]; x < mb.kv_start[row_id + 1]; ++x) {
    const int64_t j = mb.kv_index[x], s0 = j * mb.bk, cols = std::min(mb.bk, d.S - s0);
    const uint8_t kind = mb.kind_of(b, h, i, j);
    const int64_t groups = f.spans(b, h, t0, rows, s0, cols, kind, s.vis.get(), s.spans.data());
    for (int64_t gi = 0; gi < groups; ++gi) {
      const RowSpan& g = s.spans[size_t(gi)];
      const int64_t n = g.hi - g.lo;
      f.scores(b, h, t0, s0, kind, g, sc, nullptr, s.vis.get());
      for (int64_t r = g.r0; r < g.r0 + g.nr; ++r) {
        T* row = sc + r * ld + g.lo;
        if (!online_softmax_row(row, n, m[r], l[r], acc + r * d.Dv, d.Dv)) continue;  // nothing visible yet
        if (f.dropout.active()) {  // after the softmax: l keeps the un-dropped weights
          dropout_keep_run(d.attn(), f.dropout, b, h, t0 + r, s0 + g.lo, n, s.keep.data());
          for (int64_t c = 0; c < n; ++c) row[c] = s.keep[size_t(c)] ? row[c] * dsc : T(0);
        }
      }
      gemm<T>(false, false, g.nr, d.Dv, n, T(1), sc + g.r0 * ld + g.lo, ld,
              f.vh(b, h / f.G(), s0 + g.lo), f.ldv(), T(1), acc + g.r0 * d.Dv, d.Dv);
    }
  }
  T* lh = lse + (b * d.H + h) * d.T;
  for (int64_t r = 0; r < rows; ++r)  // no visible key: zeros, never NaN
    finish_softmax_row(acc + r * d.Dv, m[r], l[r], d.Dv, out + ((b * d.T + t0 + r) * d.H + h) * d.Dv, lh[t0 + r]);
}

template <class T, class Mods>
void forward(const FlexDims& d, const FlexBlocks& blocks, const Mods& mods, T scale,
             const AttnDropout& dropout, const T* q, const T* k, const T* v, T* out, T* lse) {
  Ctx<T, Mods> f{d, blocks, mods, scale, dropout, q, k, v};
  const int64_t tasks = d.B * d.H * blocks.nq;
  parallel_for(0, tasks, 1, [&](int64_t lo, int64_t hi) {
    FwdScratch<T> s(blocks, d.Dv);
    for (int64_t x = lo; x < hi; ++x) {
      int64_t bh = x / blocks.nq;
      forward_block(f, bh / d.H, bh % d.H, x % blocks.nq, out, lse, s);
    }
  });
}

// A weight below 2^-100 (f32) counts as 0 in the backward. ALiBi's far keys get weights of
// e^-87..e^-104, subnormal floats, and every product of the backward then took a microcode assist
// per multiply: ALiBi's forward + backward ran 2.5x causal's at T = 1024. What is dropped is
// below 1e-30 of the row's weights; f64 keeps every weight.
template <class T>
inline T flush_tiny_weight(T w) {
  if constexpr (std::is_same_v<T, float>) return w < 0x1p-100f ? 0.0f : w;
  else return w;
}

template <class T>
struct BwdScratch {
  std::vector<T> p, raw, w, ds;  // P, scores before the score_mod, P∘Z, dS: [bq, bk] each
  std::unique_ptr<bool[]> vis;   // [bq, bk]: a partial tile's mask
  std::vector<RowSpan> spans;
  std::vector<uint8_t> keep;     // [bk]: a row's dropout draws
  BwdScratch(const FlexBlocks& b, bool dropout, bool score)
      : p(size_t(b.bq * b.bk)), raw(score ? size_t(b.bq * b.bk) : 0),
        w(dropout ? size_t(b.bq * b.bk) : 0), ds(size_t(b.bq * b.bk)),
        vis(new bool[size_t(b.bq * b.bk)]),
        spans(size_t((b.bq + kFlexSpanRows - 1) / kFlexSpanRows)), keep(dropout ? size_t(b.bk) : 0) {}
};

// The gradient tiles of row group g of (query block at t0, key block at s0) of head h, in the
// group's rows and columns of the [bq, bk] scratch: s.p = P, s.ds = dS (the gradient of the
// scores before the score_mod; captured gradients go to `slot` when >= 0). Returns the tile
// holding P∘Z, to multiply by dO for dV.
template <class T, class Mods>
const T* grad_span(const Ctx<T, Mods>& f, int64_t b, int64_t h, int64_t t0, int64_t s0,
                   uint8_t kind, const RowSpan& g, const T* lse, const T* delta, const T* dout,
                   int64_t slot, BwdScratch<T>& s) {
  const FlexDims& d = f.d;
  const int64_t ld = f.m.bk, n = g.hi - g.lo, off = g.r0 * ld + g.lo;
  const bool score = f.mods.has_score();
  f.scores(b, h, t0, s0, kind, g, s.p.data(), score ? s.raw.data() : nullptr, s.vis.get());
  for (int64_t r = g.r0; r < g.r0 + g.nr; ++r) {  // P = exp(s' - lse); 0 for a row that sees no key
    T* row = s.p.data() + r * ld + g.lo;
    T l = lse[t0 + r];
    if (l == -std::numeric_limits<T>::infinity()) {
      std::fill(row, row + n, T(0));
      continue;
    }
    for (int64_t c = 0; c < n; ++c) row[c] = flush_tiny_weight(fast_exp(row[c] - l));
  }
  const T* pz = s.p.data();
  const T* doh = dout + ((b * d.T + t0 + g.r0) * d.H + h) * d.Dv;
  // dP = dO Vᵀ [nr, n]
  gemm<T>(false, true, g.nr, n, d.Dv, T(1), doh, d.H * d.Dv, f.vh(b, h / f.G(), s0 + g.lo), f.ldv(),
          T(0), s.ds.data() + off, ld);
  if (f.dropout.active()) {
    T dsc = static_cast<T>(f.dropout.scale());
    for (int64_t r = g.r0; r < g.r0 + g.nr; ++r) {
      dropout_keep_run(d.attn(), f.dropout, b, h, t0 + r, s0 + g.lo, n, s.keep.data());
      for (int64_t c = g.lo; c < g.hi; ++c) {
        T z = s.keep[size_t(c - g.lo)] ? dsc : T(0);
        s.w[size_t(r * ld + c)] = s.p[size_t(r * ld + c)] * z;
        s.ds[size_t(r * ld + c)] *= z;
      }
    }
    pz = s.w.data();
  }
  for (int64_t r = g.r0; r < g.r0 + g.nr; ++r) {
    const T* pr = s.p.data() + r * ld + g.lo;
    T* gr = s.ds.data() + r * ld + g.lo;
    T di = delta[t0 + r];
    for (int64_t c = 0; c < n; ++c) gr[c] = pr[c] * (gr[c] - di);
    if (score)  // through the score_mod: dS = dS' · ∂s'/∂s (and the captured tensors' share)
      f.mods.score_backward_row(s.raw.data() + r * ld + g.lo, gr, b, h, d.q_offset + t0 + r,
                                s0 + g.lo, n, slot);
  }
  return pz;
}

// Backward pass 1, one unit = key block j of kv head hk in batch b: dK_j, dV_j summed over the
// group's query heads, their non-empty query blocks and those blocks' row groups, in that order;
// captured gradients into `slot`. Pass 2, one unit = query block i of head h: dQ_i over its
// non-empty key blocks.
template <class T, class Mods>
struct Grad {
  const Ctx<T, Mods>& f;
  const T *lse, *delta, *dout;
  T *dq, *dk, *dv;

  // with_dq: also dQ_i += scale · dS K_j (the one-pass backward; dq zeroed beforehand).
  void key_block(int64_t b, int64_t hk, int64_t j, int64_t slot, bool with_dq, BwdScratch<T>& s) const {
    const FlexDims& d = f.d;
    const FlexBlocks& mb = f.m;
    const int64_t s0 = j * mb.bk, cols = std::min(mb.bk, d.S - s0), ld = mb.bk;
    T* dkj = dk + ((b * d.S + s0) * d.Hkv + hk) * d.D;
    T* dvj = dv + ((b * d.S + s0) * d.Hkv + hk) * d.Dv;
    for (int64_t x = 0; x < cols; ++x) {
      std::fill_n(dkj + x * f.ldk(), d.D, T(0));
      std::fill_n(dvj + x * f.ldv(), d.Dv, T(0));
    }
    for (int64_t h = hk * f.G(); h < (hk + 1) * f.G(); ++h) {
      const T* lh = lse + (b * d.H + h) * d.T;
      const T* dh = delta + (b * d.H + h) * d.T;
      const int64_t col_id = mb.bh(b, h) * mb.nk + j;
      for (int64_t x = mb.q_start[col_id]; x < mb.q_start[col_id + 1]; ++x) {
        const int64_t i = mb.q_index[x], t0 = i * mb.bq, rows = std::min(mb.bq, d.T - t0);
        const uint8_t kind = mb.kind_of(b, h, i, j);
        const int64_t groups = f.spans(b, h, t0, rows, s0, cols, kind, s.vis.get(), s.spans.data());
        for (int64_t gi = 0; gi < groups; ++gi) {
          const RowSpan& g = s.spans[size_t(gi)];
          const int64_t n = g.hi - g.lo, off = g.r0 * ld + g.lo, t = t0 + g.r0;
          const T* pz = grad_span(f, b, h, t0, s0, kind, g, lh, dh, dout, slot, s);
          const T* doh = dout + ((b * d.T + t) * d.H + h) * d.Dv;
          gemm<T>(true, false, n, d.Dv, g.nr, T(1), pz + off, ld, doh, d.H * d.Dv, T(1),
                  dvj + g.lo * f.ldv(), f.ldv());
          gemm<T>(true, false, n, d.D, g.nr, f.scale, s.ds.data() + off, ld, f.qh(b, h, t), f.ldq(),
                  T(1), dkj + g.lo * f.ldk(), f.ldk());
          if (with_dq)
            gemm<T>(false, false, g.nr, d.D, n, f.scale, s.ds.data() + off, ld, f.kh(b, hk, s0 + g.lo),
                    f.ldk(), T(1), dq + ((b * d.T + t) * d.H + h) * d.D, f.ldq());
        }
      }
    }
  }

  void query_block(int64_t b, int64_t h, int64_t i, BwdScratch<T>& s) const {
    const FlexDims& d = f.d;
    const FlexBlocks& mb = f.m;
    const int64_t t0 = i * mb.bq, rows = std::min(mb.bq, d.T - t0), ld = mb.bk;
    T* dqi = dq + ((b * d.T + t0) * d.H + h) * d.D;
    for (int64_t r = 0; r < rows; ++r) std::fill_n(dqi + r * f.ldq(), d.D, T(0));
    const T* lh = lse + (b * d.H + h) * d.T;
    const T* dh = delta + (b * d.H + h) * d.T;
    const int64_t row_id = mb.bh(b, h) * mb.nq + i;
    for (int64_t x = mb.kv_start[row_id]; x < mb.kv_start[row_id + 1]; ++x) {
      const int64_t j = mb.kv_index[x], s0 = j * mb.bk, cols = std::min(mb.bk, d.S - s0);
      const uint8_t kind = mb.kind_of(b, h, i, j);
      const int64_t groups = f.spans(b, h, t0, rows, s0, cols, kind, s.vis.get(), s.spans.data());
      for (int64_t gi = 0; gi < groups; ++gi) {
        const RowSpan& g = s.spans[size_t(gi)];
        grad_span(f, b, h, t0, s0, kind, g, lh, dh, dout, -1, s);
        gemm<T>(false, false, g.nr, d.D, g.hi - g.lo, f.scale, s.ds.data() + g.r0 * ld + g.lo, ld,
                f.kh(b, h / f.G(), s0 + g.lo), f.ldk(), T(1), dqi + g.r0 * f.ldq(), f.ldq());
      }
    }
  }
};

/// Work units of pass 1 split into this many fixed groups when captured gradients are wanted.
inline int64_t grad_slots(const FlexDims& d, const FlexBlocks& blocks) {
  return std::max<int64_t>(1, std::min(kFlexGradSlots, d.B * d.Hkv * blocks.nk));
}

template <class T, class Mods>
void backward(const FlexDims& d, const FlexBlocks& blocks, const Mods& mods, T scale,
              const AttnDropout& dropout, const T* q, const T* k, const T* v, const T* out,
              const T* lse, const T* dout, T* delta, T* dq, T* dk, T* dv, bool captured_grads) {
  Ctx<T, Mods> f{d, blocks, mods, scale, dropout, q, k, v};
  // delta = rowsum(dO ∘ O), which equals rowsum(dP ∘ P) (with dropout too).
  parallel_for(0, d.B * d.H * d.T, rows_grain(2 * d.Dv), [&](int64_t lo, int64_t hi) {
    for (int64_t x = lo; x < hi; ++x) {
      int64_t t = x % d.T, bh = x / d.T;
      int64_t off = ((bh / d.H * d.T + t) * d.H + bh % d.H) * d.Dv;
      delta[x] = lane_sum<T>(d.Dv, [&](int64_t e) { return dout[off + e] * out[off + e]; });
    }
  });
  Grad<T, Mods> g{f, lse, delta, dout, dq, dk, dv};
  const bool score = mods.has_score();
  // With a kv head per thread or more (and no captured gradients, whose slots follow the
  // two-pass split): one task per (b, kv head) does dK, dV and dQ, 5 GEMMs per block pair.
  // Otherwise two passes (7 GEMMs per pair, every thread busy). Each element of dq, dk, dv is
  // summed over the same blocks in the same order either way: the same bits.
  if (!captured_grads && d.B * d.Hkv >= get_num_threads()) {
    parallel_for(0, d.B * d.Hkv, 1, [&](int64_t lo, int64_t hi) {
      BwdScratch<T> s(blocks, dropout.active(), score);
      for (int64_t x = lo; x < hi; ++x) {
        const int64_t b = x / d.Hkv, hk = x % d.Hkv;
        for (int64_t h = hk * f.G(); h < (hk + 1) * f.G(); ++h)
          for (int64_t t = 0; t < d.T; ++t) std::fill_n(dq + ((b * d.T + t) * d.H + h) * d.D, d.D, T(0));
        for (int64_t j = 0; j < blocks.nk; ++j) g.key_block(b, hk, j, -1, true, s);
      }
    });
    return;
  }
  const int64_t units = d.B * d.Hkv * blocks.nk;
  auto unit = [&](int64_t u, int64_t slot, BwdScratch<T>& s) {
    g.key_block(u / blocks.nk / d.Hkv, u / blocks.nk % d.Hkv, u % blocks.nk, slot, false, s);
  };
  if (captured_grads) {  // fixed groups of units, each on one task, into its own slot
    const int64_t slots = grad_slots(d, blocks);
    parallel_for(0, slots, 1, [&](int64_t lo, int64_t hi) {
      BwdScratch<T> s(blocks, dropout.active(), score);
      for (int64_t slot = lo; slot < hi; ++slot)
        for (int64_t u = slot * units / slots; u < (slot + 1) * units / slots; ++u) unit(u, slot, s);
    });
  } else {
    parallel_for(0, units, 1, [&](int64_t lo, int64_t hi) {
      BwdScratch<T> s(blocks, dropout.active(), score);
      for (int64_t u = lo; u < hi; ++u) unit(u, -1, s);
    });
  }
  const int64_t qunits = d.B * d.H * blocks.nq;
  parallel_for(0, qunits, 1, [&](int64_t lo, int64_t hi) {
    BwdScratch<T> s(blocks, dropout.active(), score);
    for (int64_t x = lo; x < hi; ++x)
      g.query_block(x / blocks.nq / d.H, x / blocks.nq % d.H, x % blocks.nq, s);
  });
}

}  // namespace tg::kernels::flex
