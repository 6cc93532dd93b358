#pragma once
// The flex attention kernel as a template on its mods (see attention_flex.h). `Mods` provides
//   bool has_score() const;
//   void mask_row(b, h, q, k0, n, bool* out) const;          // partial tiles only
//   void score_row(T* s, b, h, q, k0, n) const;              // s[c] = score_mod(s[c], ...)
//   void score_backward_row(const T* s, T* ds, b, h, q, k0, n, int64_t slot) const;
// where slot < 0 asks for ds only (no captured gradients). attention_flex.cpp instantiates it
// with the type-erased FlexMods; a caller may instantiate it with mods compiled in.
#include <algorithm>
#include <limits>
#include <memory>
#include <vector>

#include "ops/kernels/attention_flex.h"
#include "ops/kernels/gemm.h"
#include "ops/kernels/online_softmax.h"
#include "ops/kernels/parallel.h"
#include "ops/kernels/reduce_row.h"

namespace tg::kernels::flex {

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

  // sc [rows, bk] = scale · Q Kᵀ for query rows [t0, t0 + rows) of head h and keys [s0, s0 +
  // cols), then the score_mod, then -inf where a partial tile's mask_mod hides the key. raw
  // (when not null) keeps the scores before the score_mod; vis [bk] is scratch.
  void scores(int64_t b, int64_t h, int64_t t0, int64_t rows, int64_t s0, int64_t cols,
              uint8_t kind, T* sc, T* raw, bool* vis) const {
    const int64_t ld = m.bk;
    gemm<T>(false, true, rows, cols, d.D, scale, qh(b, h, t0), ldq(), kh(b, h / G(), s0), ldk(),
            T(0), sc, ld);
    constexpr T kNegInf = -std::numeric_limits<T>::infinity();
    for (int64_t r = 0; r < rows; ++r) {
      T* row = sc + r * ld;
      int64_t pos = d.q_offset + t0 + r;
      if (raw) std::copy(row, row + cols, raw + r * ld);
      if (mods.has_score()) mods.score_row(row, b, h, pos, s0, cols);
      if (kind == kBlockPartial) {
        mods.mask_row(b, h, pos, s0, cols, vis);
        for (int64_t c = 0; c < cols; ++c)
          if (!vis[c]) row[c] = kNegInf;
      }
    }
  }
};

template <class T>
struct FwdScratch {
  std::vector<T> sc, acc, m, l;
  std::unique_ptr<bool[]> vis;  // a partial tile row's mask
  FwdScratch(const FlexBlocks& b, int64_t Dv)
      : sc(size_t(b.bq * b.bk)), acc(size_t(b.bq * Dv)), m(size_t(b.bq)), l(size_t(b.bq)),
        vis(new bool[size_t(b.bk)]) {}
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
    f.scores(b, h, t0, rows, s0, cols, mb.kind_of(b, h, i, j), sc, nullptr,
             s.vis.get());
    for (int64_t r = 0; r < rows; ++r) {
      T* row = sc + r * ld;
      if (!online_softmax_row(row, cols, m[r], l[r], acc + r * d.Dv, d.Dv)) continue;  // nothing visible yet
      if (f.dropout.active())  // after the softmax: l keeps the un-dropped weights
        for (int64_t c = 0; c < cols; ++c)
          row[c] = f.dropout.keep(d.attn(), b, h, t0 + r, s0 + c) ? row[c] * dsc : T(0);
    }
    gemm<T>(false, false, rows, d.Dv, cols, T(1), sc, ld, f.vh(b, h / f.G(), s0), f.ldv(), T(1),
            acc, d.Dv);
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

template <class T>
struct BwdScratch {
  std::vector<T> p, raw, w, ds;  // P, scores before the score_mod, P∘Z, dS
  std::unique_ptr<bool[]> vis;
  BwdScratch(const FlexBlocks& b, bool dropout, bool score)
      : p(size_t(b.bq * b.bk)), raw(score ? size_t(b.bq * b.bk) : 0),
        w(dropout ? size_t(b.bq * b.bk) : 0),
        ds(size_t(b.bq * b.bk)), vis(new bool[size_t(b.bk)]) {}
};

// The gradient tiles of (query block at t0, key block at s0) of head h: s.p = P, s.ds = dS
// (the gradient of the scores before the score_mod; captured gradients go to `slot` when >= 0).
// Returns P∘Z, the tile to multiply by dO for dV.
template <class T, class Mods>
const T* grad_tile(const Ctx<T, Mods>& f, int64_t b, int64_t h, int64_t t0, int64_t rows,
                   int64_t s0, int64_t cols, uint8_t kind, const T* lse, const T* delta,
                   const T* dout, int64_t slot, BwdScratch<T>& s) {
  const FlexDims& d = f.d;
  const int64_t ld = f.m.bk;
  const bool score = f.mods.has_score();
  f.scores(b, h, t0, rows, s0, cols, kind, s.p.data(), score ? s.raw.data() : nullptr,
           s.vis.get());
  for (int64_t r = 0; r < rows; ++r) {  // P = exp(s' - lse); 0 for a row that sees no key
    T* row = s.p.data() + r * ld;
    T l = lse[t0 + r];
    if (l == -std::numeric_limits<T>::infinity()) {
      std::fill(row, row + cols, T(0));
      continue;
    }
    for (int64_t c = 0; c < cols; ++c) row[c] = fast_exp(row[c] - l);
  }
  const T* pz = s.p.data();
  const T* doh = dout + ((b * d.T + t0) * d.H + h) * d.Dv;
  // dP = dO Vᵀ [rows, cols]
  gemm<T>(false, true, rows, cols, d.Dv, T(1), doh, d.H * d.Dv, f.vh(b, h / f.G(), s0), f.ldv(),
          T(0), s.ds.data(), ld);
  if (f.dropout.active()) {
    T dsc = static_cast<T>(f.dropout.scale());
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) {
        T z = f.dropout.keep(d.attn(), b, h, t0 + r, s0 + c) ? dsc : T(0);
        s.w[size_t(r * ld + c)] = s.p[size_t(r * ld + c)] * z;
        s.ds[size_t(r * ld + c)] *= z;
      }
    pz = s.w.data();
  }
  for (int64_t r = 0; r < rows; ++r) {
    const T* pr = s.p.data() + r * ld;
    T* g = s.ds.data() + r * ld;
    T di = delta[t0 + r];
    for (int64_t c = 0; c < cols; ++c) g[c] = pr[c] * (g[c] - di);
    if (score)  // through the score_mod: dS = dS' · ∂s'/∂s (and the captured tensors' share)
      f.mods.score_backward_row(s.raw.data() + r * ld, g, b, h, d.q_offset + t0 + r, s0, cols,
                                slot);
  }
  return pz;
}

// Backward pass 1, one unit = key block j of kv head hk in batch b: dK_j, dV_j summed over the
// group's query heads and their non-empty query blocks, in that order; captured gradients into
// `slot`. Pass 2, one unit = query block i of head h: dQ_i over its non-empty key blocks.
template <class T, class Mods>
struct Grad {
  const Ctx<T, Mods>& f;
  const T *lse, *delta, *dout;
  T *dq, *dk, *dv;

  // with_dq: also dQ_i += scale · dS K_j (the one-pass backward; dq zeroed beforehand).
  void key_block(int64_t b, int64_t hk, int64_t j, int64_t slot, bool with_dq, BwdScratch<T>& s) const {
    const FlexDims& d = f.d;
    const FlexBlocks& mb = f.m;
    const int64_t s0 = j * mb.bk, cols = std::min(mb.bk, d.S - s0);
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
        const T* pz = grad_tile(f, b, h, t0, rows, s0, cols, mb.kind_of(b, h, i, j), lh, dh, dout,
                                slot, s);
        const T* doh = dout + ((b * d.T + t0) * d.H + h) * d.Dv;
        gemm<T>(true, false, cols, d.Dv, rows, T(1), pz, mb.bk, doh, d.H * d.Dv, T(1), dvj,
                f.ldv());
        gemm<T>(true, false, cols, d.D, rows, f.scale, s.ds.data(), mb.bk, f.qh(b, h, t0), f.ldq(),
                T(1), dkj, f.ldk());
        if (with_dq)
          gemm<T>(false, false, rows, d.D, cols, f.scale, s.ds.data(), mb.bk, f.kh(b, hk, s0), f.ldk(),
                  T(1), dq + ((b * d.T + t0) * d.H + h) * d.D, f.ldq());
      }
    }
  }

  void query_block(int64_t b, int64_t h, int64_t i, BwdScratch<T>& s) const {
    const FlexDims& d = f.d;
    const FlexBlocks& mb = f.m;
    const int64_t t0 = i * mb.bq, rows = std::min(mb.bq, d.T - t0);
    T* dqi = dq + ((b * d.T + t0) * d.H + h) * d.D;
    for (int64_t r = 0; r < rows; ++r) std::fill_n(dqi + r * f.ldq(), d.D, T(0));
    const T* lh = lse + (b * d.H + h) * d.T;
    const T* dh = delta + (b * d.H + h) * d.T;
    const int64_t row_id = mb.bh(b, h) * mb.nq + i;
    for (int64_t x = mb.kv_start[row_id]; x < mb.kv_start[row_id + 1]; ++x) {
      const int64_t j = mb.kv_index[x], s0 = j * mb.bk, cols = std::min(mb.bk, d.S - s0);
      grad_tile(f, b, h, t0, rows, s0, cols, mb.kind_of(b, h, i, j), lh, dh, dout, -1, s);
      gemm<T>(false, false, rows, d.D, cols, f.scale, s.ds.data(), mb.bk, f.kh(b, h / f.G(), s0),
              f.ldk(), T(1), dqi, f.ldq());
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
